"""Bad input to preprocess.py (every subcommand of `preprocess.py --help`: synth, mesh, xyz, parts, dfaust): exit
code 2, one line on stderr naming the flag / file and what was expected, no traceback, no new file anywhere (the
case's folders, the working directory where the default data/ outputs would go, the repository's top level).

Generated tables: every numeric flag of every subcommand (declared with `flag_type(spec)`) x values outside its
spec, nan, inf, huge; every output flag x a file, a folder under a file, a read-only place; every input flag x
missing / empty folder / folder without inputs. Plus batches with one corrupt mesh (mesh, xyz): named, the
others written, a non-zero exit code.
"""
import os

import pytest
import trimesh

import preprocess
from modules.utils import EXIT_PARTIAL
from bad_input import NOT_WRITABLE, READ_ONLY_SYS, bad_flag_values, run_bad, top_level



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("pre_inputs")
    (d / "meshes").mkdir()
    trimesh.creation.box().export(d / "meshes" / "a.off")
    trimesh.creation.icosphere(1).export(d / "meshes" / "b.obj")
    (d / "a_file").write_text("x")
    (d / "empty_dir").mkdir()
    (d / "no_meshes").mkdir()
    (d / "no_meshes" / "note.txt").write_text("x")
    (d / "binary.hdf5").write_bytes(bytes(range(256)) * 4)
    (d / "empty.hdf5").write_bytes(b"")
    (d / "splits.csv").write_text("id,split\n50002_jumping_jacks/00000,train\n")
    files = {"dir": str(d), "meshes": str(d / "meshes"), "mesh": str(d / "meshes" / "a.off")}
    for name in ("a_file", "empty_dir", "no_meshes", "binary.hdf5", "empty.hdf5", "splits.csv"):
        files[name] = str(d / name)
    files["missing"] = str(d / "missing")
    return files


BAD_OUTPUTS = [("a file", "<a_file>", "a_file"), ("under a file", "<a_file>/sub", "a_file")]
if READ_ONLY_SYS:
    BAD_OUTPUTS.append(("not writable", NOT_WRITABLE, "not writable"))

BASES = {   # argv that would run (and write under <tmp>/out); each case changes one thing
    "synth": ["synth", "--out", "<tmp>/out", "--categories", "chair", "--per-category", "1", "--views", "0",
              "--resolution", "16", "-j", "1", "--no-progress"],
    "mesh": ["mesh", "--in", "<meshes>", "--out", "<tmp>/out", "-j", "1", "--views", "0", "--no-progress"],
    "xyz": ["xyz", "--in", "<mesh>", "--out", "<tmp>/out/a.xyz"],
    "parts": ["parts", "--category", "lamp"],
    "dfaust": ["dfaust", "--hdf5", "<binary.hdf5>", "--splits", "<splits.csv>", "--out", "<tmp>/out", "-j", "1",
               "--no-progress"],
}


def numeric_specs():
    """{subcommand: {flag: spec}} of every flag declared with a flag_type."""
    parser = preprocess.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    out = {}
    for name, p in sub.choices.items():
        out[name] = {a.option_strings[-1]: a.type.__name__ for a in p._actions
                     if a.option_strings and any(op in getattr(a.type, "__name__", "") for op in ("<", ">", " in "))}
    return out


def with_flag(argv, flag, value, aliases=()):
    argv = list(argv)
    for f in (flag, *aliases):
        if f in argv:
            argv[argv.index(f) + 1] = value
            return argv
    return argv + [flag, value]


def cases():
    out = []
    for cmd, specs in sorted(numeric_specs().items()):
        for flag, text in sorted(specs.items()):
            for v in bad_flag_values(text):
                out.append((f"{cmd} {flag}={v}", with_flag(BASES[cmd], flag, v, ("-j",) if flag == "--jobs" else ()),
                            f"{flag}: expected"))
    out += [
        ("no subcommand", [], "command"),
        ("unknown subcommand", ["convert"], "invalid choice: 'convert'"),
        ("synth --formats unknown", BASES["synth"] + ["--formats", "obj"], "--formats"),
        ("synth --categories unknown", with_flag(BASES["synth"], "--categories", "sofa_x"), "sofa_x"),
        ("synth --variety unknown", BASES["synth"] + ["--variety", "huge"], "--variety: invalid choice"),
        ("synth --shard 2/2", BASES["synth"] + ["--shard", "2/2"], "--shard"),
        ("synth --shard x", BASES["synth"] + ["--shard", "x"], "--shard"),
        ("synth --shard 0/0", BASES["synth"] + ["--shard", "0/0"], "--shard"),
        ("mesh without --in", ["mesh", "--out", "<tmp>/out"], "--in"),
        ("mesh --in missing", with_flag(BASES["mesh"], "--in", "<missing>"), "missing"),
        ("mesh --in empty folder", with_flag(BASES["mesh"], "--in", "<empty_dir>"), "empty_dir"),
        ("mesh --in folder without meshes", with_flag(BASES["mesh"], "--in", "<no_meshes>"), "no_meshes"),
        ("mesh --formats shapenet_part", BASES["mesh"] + ["--formats", "shapenet_part"], "--formats"),
        ("mesh --formats unknown", BASES["mesh"] + ["--formats", "obj"], "--formats"),
        ("xyz --in missing", with_flag(BASES["xyz"], "--in", "<missing>"), "missing"),
        ("xyz --in folder without meshes", with_flag(BASES["xyz"], "--in", "<no_meshes>"), "no_meshes|no .obj"),
        ("xyz --format xyzw", BASES["xyz"] + ["--format", "xyzw"], "--format: invalid choice"),
        ("xyz --exp_name ../x", ["xyz", "--in", "<mesh>", "--exp_name", "../x"], "--exp_name '../x'"),
        ("xyz --exp_name a/b", ["xyz", "--in", "<mesh>", "--exp_name", "a/b"], "--exp_name 'a/b'"),
        ("xyz --exp_name ..", ["xyz", "--in", "<mesh>", "--exp_name", ".."], "--exp_name '..'"),
        ("seed's --data_path missing", ["--data_path", "<missing>"], "missing"),
        ("parts --category unknown", with_flag(BASES["parts"], "--category", "sofa_x"), "sofa_x"),
        ("dfaust without --hdf5", ["dfaust"], "--hdf5"),
        ("dfaust --hdf5 missing", with_flag(BASES["dfaust"], "--hdf5", "<missing>"), "missing"),
        ("dfaust --hdf5 folder without hdf5", with_flag(BASES["dfaust"], "--hdf5", "<no_meshes>"), "no .hdf5"),
        ("dfaust --hdf5 binary", BASES["dfaust"], "binary.hdf5"),
        ("dfaust --hdf5 empty", with_flag(BASES["dfaust"], "--hdf5", "<empty.hdf5>"), "empty.hdf5"),
        ("--bogus flag", BASES["synth"] + ["--bogus"], "--bogus"),
    ]
    for name, path, needle in BAD_OUTPUTS:
        for cmd in ("synth", "mesh", "dfaust"):
            out.append((f"{cmd} --out {name}", with_flag(BASES[cmd], "--out", path), f"--out .*{needle}"))
        out.append((f"xyz --out {name}", with_flag(BASES["xyz"], "--out", path + "/a.xyz"), needle))
    return out


CASES = cases()


def _sub(arg, world, tmp_path):
    for key, value in world.items():
        arg = arg.replace(f"<{key}>", value)
    return arg.replace("<tmp>", str(tmp_path))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_preprocess_bad_input(index, world, tmp_path, monkeypatch, capsys):
    _, argv, needle = CASES[index]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)          # default outputs (data/...) would land here
    top = top_level()
    run_bad(preprocess.main, [_sub(a, world, tmp_path) for a in argv], capsys, needle, [str(work), world["dir"],
                                                                                       str(tmp_path)])
    assert top_level() == top


def test_every_subcommand_is_covered():
    parser = preprocess.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(BASES)
    assert {c[0].split()[0] for c in CASES} >= set(BASES)
    assert len(CASES) >= 80, len(CASES)


def _corrupt_folder(tmp_path, world):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.off", "b.obj"):
        (folder / name).write_bytes(open(os.path.join(world["meshes"], name), "rb").read())
    (folder / "c.off").write_text("OFF\n8 12 0\n0 0 0\n")        # header promises more than the file has
    return folder


def test_mesh_batch_names_the_corrupt_mesh_and_writes_the_others(world, tmp_path, capsys):
    """EXIT_PARTIAL with one stderr line; the table names the unreadable mesh; the good ones are written."""
    folder = _corrupt_folder(tmp_path, world)
    with pytest.raises(SystemExit) as exit_info:
        preprocess.main(["mesh", "--in", str(folder), "--out", str(tmp_path / "out"), "-j", "1", "--views", "0",
                         "--formats", "onet", "--no-progress"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == EXIT_PARTIAL
    assert len(err.strip().splitlines()) == 1 and "1 of 3 meshes not written" in err
    assert "c.off" in out and "header promises" in out
    assert {"a", "b"} <= set(os.listdir(tmp_path / "out" / "onet" / "mesh"))


def test_xyz_batch_names_the_corrupt_mesh_and_writes_the_others(world, tmp_path, capsys):
    folder = _corrupt_folder(tmp_path, world)
    with pytest.raises(SystemExit) as exit_info:
        preprocess.main(["xyz", "--in", str(folder), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert exit_info.value.code == EXIT_PARTIAL
    assert len(err.strip().splitlines()) == 1 and "1 of 3 meshes could not be converted" in err and "c.off" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["a.xyz", "b.xyz"]
