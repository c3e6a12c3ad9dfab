"""Bad input to the genren scripts (genren_train.py, genren_loadtest.py): every case exits with code 2, one line on
stderr naming the flag / key / file and what was expected, no traceback, and no new file anywhere (the case's
folders, the working directory and the repository's top level). In-process: main(argv), SystemExit caught.

Generated tables: every config key the genren family declares (model, data, task and each named optimizer's
settings) x values outside its spec, as genren_train.py overrides; every numeric flag of genren_loadtest.py x
values outside its spec, nan, inf, huge; each input flag x missing / empty / binary / truncated / folder files;
each output location x a file, a folder under a file, a read-only place. Plus batches with one corrupt image or
shape: reported by name, skipped, the rest written, exit code 1.
"""
import os
import re
import shutil

import numpy as np
import pytest
import torch

import genren_loadtest
import genren_train
from bad_input import NOT_WRITABLE, READ_ONLY_SYS, bad_flag_values, bad_values, flag_specs, run_bad, top_level
from modules.config import engine_defaults, section_specs
from modules.data import genren as genren_io
from modules.engine.checkpoint import save_checkpoint
from modules.registry import DATASETS, MODELS, TASKS
from modules.utils import ROOT
from test_genren import tiny_model, write_dataset

pytestmark = pytest.mark.usefixtures("single_thread")



@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """{name: path}: a 3-shape genren data folder, a tiny model's state dict, and broken files."""
    d = tmp_path_factory.mktemp("genren_inputs")
    write_dataset(str(d / "data"), n_shapes=3, views=1, size=32)
    files = {"dir": str(d), "data": str(d / "data"), "images": str(d / "data" / "toy" / "images"),
             "shapes": str(d / "data" / "toy" / "shapes")}
    files["state"] = str(d / "model.pt")
    torch.save(tiny_model().state_dict(), files["state"])
    files["svr_ckpt"] = str(d / "svr.pt")
    save_checkpoint(files["svr_ckpt"], {"model": {}, "model_name": "svr_point",
                                        "config": {"model": {"name": "svr_point"}}})
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.pt").write_bytes(b"not a checkpoint" * 10)
    with open(files["state"], "rb") as f:
        (d / "truncated.pt").write_bytes(f.read(2048))
    (d / "a_file").write_text("x")
    (d / "empty_dir").mkdir()
    (d / "no_png").mkdir()
    (d / "no_png" / "note.txt").write_text("x")
    (d / "bad_override.yaml").write_bytes(bytes(range(256)) * 4)
    for name in ("empty.pt", "garbage.pt", "truncated.pt", "a_file", "empty_dir", "no_png"):
        files[name] = str(d / name)
    files["missing"] = str(d / "missing")
    return files


BAD_OUTPUTS = [("a file", "<a_file>", "is a file"), ("under a file", "<a_file>/sub", "is a file")]
if READ_ONLY_SYS:
    BAD_OUTPUTS.append(("not writable", NOT_WRITABLE, "not writable"))


def _sub(value, world):
    """'<name>' anywhere in an argument -> world[name] ('data.root=<data>', '<a_file>/sub')."""
    return re.sub(r"<(\w[\w.]*)>", lambda m: world.get(m.group(1), m.group(0)), value) if isinstance(value, str) else value


def check(main, argv, needle, world, tmp_path, monkeypatch, capsys, code=2):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    top = top_level()
    line = run_bad(main, [_sub(a, world) for a in argv], capsys, needle, [str(work), world["dir"]], code)
    assert top_level() == top
    return line


# ----------------------------------------------------------------------------------------------- genren_train.py

def schema_cases():
    """Every declared spec of the genren sections (and the engine's optimizer settings per named optimizer)."""
    _, engine = engine_defaults()
    cases = []
    for section, registry in (("model", MODELS), ("data", DATASETS), ("task", TASKS)):
        name = {"model": "genren", "data": "genren_unpaired", "task": "genren"}[section]
        defaults = {"name": name, **registry.defaults(name)}
        for key, text in sorted(section_specs(section, name, defaults, engine).items()):
            for v in bad_values(text):
                cases.append((f"{section}.{key}={v}", f"{section}.{key}"))
    return cases


SCHEMA_CASES = schema_cases()


def test_schema_table_covers_every_section():
    keys = {k for _, k in SCHEMA_CASES}
    assert {"model.image_size", "data.held_out", "task.mode_1_iters", "task.optimizers.generator.lr"} <= keys
    assert len(SCHEMA_CASES) >= 60


@pytest.mark.parametrize("override, key", SCHEMA_CASES, ids=[c[0] for c in SCHEMA_CASES])
def test_genren_train_out_of_range_config_keys(override, key, world, tmp_path, monkeypatch, capsys):
    argv = ["tiny", str(tmp_path / "run"), "data.root=<data>", override]
    check(genren_train.main, argv, f"'{key}' must be", world, tmp_path, monkeypatch, capsys)


def train_cases(tmp):
    run = os.path.join(tmp, "run")
    cases = [
        ("no arguments", [], "option"),
        ("only the option", ["tiny"], "output_dir"),
        ("option unknown", ["tinyy", run], "options 'tinyy' do not exist; valid option sets"),
        ("option ../tiny", ["../tiny", run], "options '../tiny' do not exist"),
        ("option a path", [os.path.join(ROOT, "configs", "genren", "tiny"), run], "do not exist"),
        ("--allow_overwrite maybe", ["tiny", run, "--allow_overwrite", "maybe"], "--allow_overwrite: expected True or False"),
        ("--resume_config both", ["tiny", run, "--resume_config", "both"], "--resume_config: invalid choice"),
        ("--device tpu", ["tiny", run, "--device", "tpu", "data.root=<data>"], "experiment.device"),
        ("unknown key", ["tiny", run, "data.img_root=x"], "unknown config key 'data.img_root'"),
        ("override without =", ["tiny", run, "data.root"], "expected key.sub=value"),
        ("data.root missing", ["tiny", run, "data.root=<missing>"], "data.root .*missing"),
        ("data.root a file", ["tiny", run, "data.root=<a_file>"], "data.root"),
        ("data.root empty", ["tiny", run, "data.root=<empty_dir>"], "empty_dir"),
        ("img_data_dir missing", ["tiny", run, "data.root=null", "data.img_data_dir=<missing>",
                                  "data.shape_data_dir=<shapes>"], "img_data_dir"),
        ("shape_data_dir without pngs", ["tiny", run, "data.root=null", "data.img_data_dir=<images>",
                                         "data.shape_data_dir=<no_png>"], "shape_data_dir|no_png"),
        ("categories not there", ["tiny", run, "data.root=<data>", "data.categories=[sofa]"], "sofa"),
        ("--bogus flag", ["tiny", run, "--bogus"], "--bogus"),
    ]
    for name, path, needle in BAD_OUTPUTS:
        cases.append((f"OUTPUT_DIR {name}", ["tiny", path, "data.root=<data>"], f"OUTPUT_DIR .*{needle}"))
    return cases


TRAIN_CASES = train_cases("<tmp>")


def _with_tmp(argv, tmp_path):
    return [a.replace("<tmp>", str(tmp_path)) for a in argv]


@pytest.mark.parametrize("index", range(len(TRAIN_CASES)), ids=[c[0] for c in TRAIN_CASES])
def test_genren_train_bad_input(index, world, tmp_path, monkeypatch, capsys):
    _, argv, needle = TRAIN_CASES[index]
    check(genren_train.main, _with_tmp(argv, tmp_path), needle, world, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("content, needle", [(b"", "latest.pt: is empty"), (b"junk", "cannot be loaded")],
                         ids=["empty latest.pt", "garbage latest.pt"])
def test_genren_train_broken_checkpoint_to_resume(content, needle, world, tmp_path, monkeypatch, capsys):
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    (ckpts / "latest.pt").write_bytes(content)
    check(genren_train.main, ["tiny", str(tmp_path / "run"), "data.root=<data>"], needle, world, tmp_path,
          monkeypatch, capsys)


# -------------------------------------------------------------------------------------------- genren_loadtest.py

def lt(mode="img_recon", out="<tmp>/out", **kw):
    args = {"--options_choice": "tiny", "--imgs_dir": "<images>" if mode == "img_recon" else None,
            "--shapes_dir": "<shapes>" if mode == "shape_recon" else None, "--device": "cpu"}
    args.update(kw)
    model = args.pop("model", "<state>")
    return [model, out, mode] + [x for k, v in args.items() if v is not None for x in (k, v)]


def loadtest_cases():
    cases = []
    for flag, text in sorted(flag_specs(genren_loadtest.parse_args).items()):
        for v in bad_flag_values(text):
            cases.append((f"{flag}={v}", lt(**{flag: v}), f"{flag}: expected"))
    cases += [
        ("no arguments", [], "model"),
        ("mode unknown", lt(mode="recon"), "mode: invalid choice"),
        ("--options_choice unknown", lt(**{"--options_choice": "tinyy"}), "options 'tinyy' do not exist"),
        ("--no_alpha unknown", lt(**{"--no_alpha": "black"}), "--no_alpha: invalid choice"),
        ("--bn_mode unknown", lt(**{"--bn_mode": "frozen"}), "--bn_mode: invalid choice"),
        ("--allow_overwrite maybe", lt(**{"--allow_overwrite": "maybe"}), "--allow_overwrite: expected True or False"),
        ("--device tpu", lt(**{"--device": "tpu"}), "--device tpu"),
        ("img_recon without --imgs_dir", lt(**{"--imgs_dir": None}), "needs --imgs_dir"),
        ("shape_recon without --shapes_dir", lt(mode="shape_recon", **{"--shapes_dir": None}), "needs --shapes_dir"),
        ("--imgs_dir missing", lt(**{"--imgs_dir": "<missing>"}), "--imgs_dir .*missing"),
        ("--imgs_dir a file", lt(**{"--imgs_dir": "<a_file>"}), "--imgs_dir .*a_file"),
        ("--imgs_dir without pngs", lt(**{"--imgs_dir": "<no_png>"}), "--imgs_dir .*no .png"),
        ("--shapes_dir missing", lt(mode="shape_recon", **{"--shapes_dir": "<missing>"}), "--shapes_dir .*missing"),
        ("--shapes_dir without shapes", lt(mode="shape_recon", **{"--shapes_dir": "<empty_dir>"}),
         "--shapes_dir .*no .PC.pt"),
        ("plain state dict without --options_choice", lt(**{"--options_choice": None}), "give --options_choice"),
        ("checkpoint of another model", lt(model="<svr_ckpt>"), "'svr_point', expected genren"),
        ("OUT exists", lt(out="<empty_dir>"), "exists; pass --allow_overwrite"),
    ]
    for name in ("missing", "empty.pt", "garbage.pt", "truncated.pt", "empty_dir"):
        cases.append((f"MODEL {name}", lt(model=f"<{name}>"), os.path.splitext(name)[0]))
    for name, path, needle in BAD_OUTPUTS:
        cases.append((f"OUT {name}", lt(out=path, **{"--allow_overwrite": "True"}), f"OUT .*{needle}"))
    return cases


LOADTEST_CASES = loadtest_cases()


@pytest.mark.parametrize("index", range(len(LOADTEST_CASES)), ids=[c[0] for c in LOADTEST_CASES])
def test_genren_loadtest_bad_input(index, world, tmp_path, monkeypatch, capsys):
    _, argv, needle = LOADTEST_CASES[index]
    check(genren_loadtest.main, _with_tmp(argv, tmp_path), needle, world, tmp_path, monkeypatch, capsys)


def test_loadtest_all_inputs_broken_writes_nothing(world, tmp_path, monkeypatch, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)       # a PNG cut after its signature
    check(genren_loadtest.main, lt(**{"--imgs_dir": str(imgs)}, out=str(tmp_path / "out")),
          "none of the 1 images could be read; first: .*a.png", world, tmp_path, monkeypatch, capsys)


def _partial(main, argv, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return exit_info.value.code, err


def test_loadtest_skips_a_corrupt_image_and_exits_1(world, tmp_path, capsys):
    imgs = tmp_path / "imgs"
    shutil.copytree(world["images"], imgs)
    (imgs / "s1_00.png").write_bytes((imgs / "s1_00.png").read_bytes()[:40])      # truncated
    out = tmp_path / "out"
    code, err = _partial(genren_loadtest.main, [_sub(a, world) for a in lt(**{"--imgs_dir": str(imgs)}, out=str(out))],
                         capsys)
    assert code == 1 and len(err) == 1, err
    assert "1 of 3 inputs could not be read" in err[0] and "s1_00.png" in err[0]
    names = sorted(os.listdir(out))
    assert "s0_00.ply" in names and "s2_00.ply" in names and not any(n.startswith("s1_00") for n in names)


def test_loadtest_skips_a_corrupt_shape_and_exits_1(world, tmp_path, capsys):
    shapes = tmp_path / "shapes"
    shutil.copytree(world["shapes"], shapes)
    genren_io.write_shape(str(shapes), "s1", np.zeros((50, 2), np.float32), np.zeros((50, 2), np.float32))
    out = tmp_path / "out"
    argv = [_sub(a, world) for a in lt(mode="shape_recon", out=str(out), **{"--shapes_dir": str(shapes),
                                                                            "--n_renders": "1"})]
    code, err = _partial(genren_loadtest.main, argv, capsys)
    assert code == 1 and len(err) == 1, err
    assert "1 of 3 inputs could not be read" in err[0] and "s1" in err[0]
    names = sorted(os.listdir(out))
    assert names == ["graphics_grid.png", "s0-render-0.png", "s2-render-0.png"]


def test_case_counts():
    """The README states these counts (at least this many)."""
    assert len(SCHEMA_CASES) + len(TRAIN_CASES) >= 80 and len(LOADTEST_CASES) >= 40, \
        (len(SCHEMA_CASES), len(TRAIN_CASES), len(LOADTEST_CASES))
