"""Bad input to the PointNet tools (deepdream3d.py, attribution.py, run_nst.py): every case exits with code 2,
one line on stderr naming the flag / key / file, no traceback, and no new file anywhere (the working
directory, where the default experiments/ root would be, the input folder and the repository root).

The tables are generated: each numeric flag x its out-of-range values, each cloud-file flag x the broken
files, each output flag x the unusable locations, plus hand-picked cases. Everything fails before a network
is built, except the few cases marked `late` (they use a random quarter-width segmenter).
"""
import os

import numpy as np
import pytest

import attribution as attribution_script
import deepdream3d
import nst_shapes
import run_nst
from modules.geometry.io import save_point_cloud
from modules.utils import ROOT
from bad_input import NOT_WRITABLE, READ_ONLY_SYS

pytestmark = pytest.mark.usefixtures("single_thread")


# ---------------------------------------------------------------- inputs (made once, in a folder of their own)

@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    chair, table = nst_shapes.write_pair(d / "shapenet_part")
    rng = np.random.default_rng(0)
    files = {"chair": chair, "table": table}
    save_point_cloud(d / "lamp.xyz", rng.uniform(-1, 1, (300, 3)))
    files["lamp"] = str(d / "lamp.xyz")
    (d / "empty.xyz").write_text("")
    (d / "nan.xyz").write_text("0 0 0\nnan 1 1\n1 0 1\n")
    (d / "same.xyz").write_text("0.5 0.5 0.5\n" * 20)
    (d / "two_columns.xyz").write_text("1 2\n3 4\n")
    (d / "binary.xyz").write_bytes(bytes(range(256)) * 4)
    (d / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 20)
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "bad_key.yaml").write_text("stlye_weight: 3\n")
    (d / "garbage.pt").write_bytes(b"not a checkpoint" * 10)
    (d / "a_file").write_text("x")
    (d / "folder.xyz").mkdir()
    for name in ("empty.xyz", "nan.xyz", "same.xyz", "two_columns.xyz", "binary.xyz", "binary.yaml", "list.yaml",
                 "bad_key.yaml", "garbage.pt", "a_file", "folder.xyz"):
        files[name] = str(d / name)
    files["missing"] = str(d / "missing.xyz")
    files["dir"] = str(d)
    return files


def snapshot(*folders):
    out = set()
    for folder in folders:
        for base, dirs, names in os.walk(folder):
            out.update(os.path.join(base, n) for n in dirs + names)
    return out


def run_bad(main, argv, needle, tmp_path, monkeypatch, capfd, inputs):
    """Run `main(argv)`: exit 2, one stderr line containing `needle`, nothing new on disk."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    watched = (str(work), inputs["dir"])
    before, root_before = snapshot(*watched), set(os.listdir(ROOT))
    capfd.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exc.value.code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle.lower() in lines[0].lower(), lines[0]
    assert snapshot(*watched) == before
    assert set(os.listdir(ROOT)) == root_before
    return lines[0]


# ---------------------------------------------------------------- generated tables

BAD_CLOUDS = [("missing", "missing.xyz"), ("empty.xyz", "empty.xyz"), ("nan.xyz", "nan.xyz"),
              ("same.xyz", "same.xyz"), ("two_columns.xyz", "two_columns.xyz"), ("binary.xyz", "binary.xyz"),
              ("folder.xyz", "folder.xyz")]


def bad_outputs(inputs):
    """Output locations that cannot be used: a file, a folder under a file, a read-only place."""
    out = [(inputs["a_file"], "is a file"), (os.path.join(inputs["a_file"], "sub"), "is a file")]
    if READ_ONLY_SYS:
        out.append((NOT_WRITABLE, "not writable"))
    return out


def dd_base(inputs, **kw):
    args = {"--obj_path": inputs["lamp"], "--obj_cat": "lamp", "--pretrained": "none", "--width_multiplier": "0.25",
            "--num_iters": "1", "--device": "cpu"}
    args.update(kw)
    return [x for k, v in args.items() if v is not None for x in ([k] + (v if isinstance(v, list) else [v]))]


def deepdream_cases(inputs):
    cases = []
    numeric = {"--num_points": ["0", "-5", "301"], "--num_iters": ["0", "-1"], "--lr": ["0", "-1", "nan", "inf"],
               "--visualize_every": ["0", "-2"], "--width_multiplier": ["0", "-1"],
               "--layer_ids": ["6", "-1"], "--channel_ids": ["64", "-1"], "--seed": ["x"]}
    for flag, values in numeric.items():
        for v in values:
            needle = {"--layer_ids": "layer", "--channel_ids": "--channel_ids"}.get(flag, flag)
            cases.append((f"{flag}={v}", dd_base(inputs, **{flag: v}), needle))
    cases.append(("--part_ids=13 (chair part on a lamp)", dd_base(inputs, **{"--part_ids": "13"}), "part id 13"))
    cases.append(("--part_ids=99", dd_base(inputs, **{"--part_ids": "99"}), "part id 99"))
    cases.append(("--obj_cat=sofa", dd_base(inputs, **{"--obj_cat": "sofa"}), "sofa"))
    for name, needle in BAD_CLOUDS:
        cases.append((f"--obj_path={name}", dd_base(inputs, **{"--obj_path": inputs[name]}), needle))
    for path, needle in bad_outputs(inputs):
        cases.append((f"--out_dir={path}", dd_base(inputs, **{"--out_dir": path}), needle))
    cases.append(("--device=tpu", dd_base(inputs, **{"--device": "tpu"}), "--device"))
    cases.append(("--pretrained=missing", dd_base(inputs, **{"--pretrained": inputs["missing"]}), "missing.xyz"))
    cases.append(("--pretrained_enc=shapenet.pointnet.pth.tar (seed name)",
                  dd_base(inputs, **{"--pretrained": None, "--pretrained_enc": "pretrained_models/shapenet.pointnet.pth.tar"}),
                  "pointnet_seg.pt"))
    cases.append(("--pretrained=garbage", dd_base(inputs, **{"--pretrained": inputs["garbage.pt"]}), "garbage.pt"))
    cases.append(("--bogus_flag", dd_base(inputs) + ["--bogus_flag"], "--bogus_flag"))
    cases.append(("missing --obj_cat", dd_base(inputs, **{"--obj_cat": None}), "--obj_cat"))
    return cases


def at_base(inputs, **kw):
    args = {"--obj_path": inputs["chair"], "--obj_cat": "chair", "--mode": "gbp", "--num_samples": "64",
            "--device": "cpu"}
    args.update(kw)
    return [x for k, v in args.items() if v is not None for x in ([k] + (v if isinstance(v, list) else [v]))]


def attribution_cases(inputs):
    cases = []
    numeric = {"--n_steps": ["0", "-3"], "--num_samples": ["0", "-1", "100000"], "--smoothgrad": ["-1"],
               "--stdev": ["-1", "nan"], "--part_id": ["25", "99", "-1"], "--layer_id": ["x"]}
    for flag, values in numeric.items():
        for v in values:
            extra = {"--mode": "ig"} if flag == "--n_steps" else {}
            needle = "part id" if flag == "--part_id" else flag
            cases.append((f"{flag}={v}", at_base(inputs, **{flag: v}, **extra), needle))
    cases.append(("--smoothgrad=2 with hirescam", at_base(inputs, **{"--smoothgrad": "2", "--mode": "hirescam"}),
                  "--smoothgrad"))
    cases.append(("--mode=foo", at_base(inputs, **{"--mode": "foo"}), "--mode"))
    cases.append(("--obj_cat=sofa", at_base(inputs, **{"--obj_cat": "sofa"}), "sofa"))
    cases.append(("no --obj_cat", at_base(inputs, **{"--obj_cat": None}), "--obj_cat"))
    for name, needle in BAD_CLOUDS:
        cases.append((f"--obj_path={name}", at_base(inputs, **{"--obj_path": inputs[name]}), needle))
    for path, needle in bad_outputs(inputs):
        cases.append((f"--out_dir={path}", at_base(inputs, **{"--out_dir": path}), needle))
    cases.append(("--device=tpu", at_base(inputs, **{"--device": "tpu"}), "--device"))
    cases.append(("--pretrained=missing", at_base(inputs, **{"--pretrained": inputs["missing"]}), "missing.xyz"))
    cases.append(("--pretrained_enc=shapenet.pointnet.pth.tar (seed name)",
                  at_base(inputs, **{"--pretrained_enc": "pretrained_models/shapenet.pointnet.pth.tar"}),
                  "pointnet_seg.pt"))
    cases.append(("--pretrained=garbage", at_base(inputs, **{"--pretrained": inputs["garbage.pt"]}), "garbage.pt"))
    cases.append(("--layer_id=99 (late)", at_base(inputs, **{"--mode": "hirescam", "--layer_id": "99"}), "layer id 99"))
    return cases


def nst_base(inputs, tmp_out=None, **kw):
    args = {"--content_shape": inputs["chair"], "--style_shape": inputs["table"], "--pretrained": "none",
            "--width_multiplier": "0.25", "--num_iters": "1", "--num_points": "32", "--device": "cpu"}
    args.update(kw)
    return [x for k, v in args.items() if v is not None for x in ([k] + (v if isinstance(v, list) else [v]))]


def nst_cases(inputs):
    cases = [("no arguments", [], "-cfg")]
    numeric = {"--num_points": ["0", "-1", "8"], "--num_iters": ["-1"], "--step_size": ["0", "-1", "nan"],
               "--style_weight": ["-1", "inf"], "--content_weight": ["-0.5"], "--noise_std": ["0"],
               "--attr_layer": ["9", "-1"], "--save_every": ["-1"], "--seed": ["-3"], "--width_multiplier": ["0"]}
    for flag, values in numeric.items():
        for v in values:
            cases.append((f"{flag}={v}", nst_base(inputs, **{flag: v}), flag[2:]))
    for flag in ("--content_layers", "--style_layers"):
        for v in ("6", "-1"):
            cases.append((f"{flag}={v}", nst_base(inputs, **{flag: v}), flag[2:]))
    for key, v in (("--mode", "foo"), ("--init", "zeros"), ("--style_loss", "l1"), ("--part_labels", "x")):
        cases.append((f"{key}={v}", nst_base(inputs, **{key: v}), key[2:]))
    for suffix in ("../x", "/abs/x", "a/../../b", ".hidden", "a//b"):
        cases.append((f"--exp_suffix={suffix}", nst_base(inputs, **{"--exp_suffix": suffix}), "exp_suffix"))
    cases.append(("--layers_exp_suffix=../x (seed name)", nst_base(inputs, **{"--layers_exp_suffix": "../x"}),
                  "exp_suffix"))
    for path, needle in bad_outputs(inputs):
        cases.append((f"--output_dir={path}", nst_base(inputs, **{"--output_dir": path}), needle))
    for flag in ("--content_shape", "--style_shape"):
        for name, needle in BAD_CLOUDS:
            cases.append((f"{flag}={name}", nst_base(inputs, **{flag: inputs[name]}), needle))
    cases.append(("same content and style", nst_base(inputs, **{"--style_shape": inputs["chair"]}), "same file"))
    cases.append(("--content_category=sofa", nst_base(inputs, **{"--content_category": "sofa"}), "sofa"))
    cases.append(("part 25 on a chair", nst_base(inputs, **{"--part_specific": [], "--mask_class_list": "25",
                                                           "--part_id_c": "25", "--part_id_s": "47"}), "part id 25"))
    cases.append(("part_specific without parts", nst_base(inputs, **{"--part_specific": []}), "mask_class_list"))
    cases.append(("mode gbp without part ids", nst_base(inputs, **{"--mode": "gbp"}), "content_part_class"))
    for name, needle in (("binary.yaml", "binary.yaml"), ("list.yaml", "list.yaml"), ("missing", "missing.xyz"),
                         ("bad_key.yaml", "stlye_weight"), ("folder.xyz", "folder.xyz")):
        cases.append((f"-cfg {name}", ["-cfg", inputs[name]] + nst_base(inputs), needle))
    for override, needle in (("save_every=abc", "save_every"), ("stlye_weight=3", "stlye_weight"),
                             ("noequals", "noequals"), ("sweep={key: output_dir, values: [a]}", "sweep"),
                             ("sweep={key: style_weight, values: []}", "sweep"),
                             ("sweep={key: content_layers, values: [[0], [7]]}", "7")):
        cases.append((f"override {override}", nst_base(inputs) + [override], needle))
    cases.append(("--device=tpu", nst_base(inputs, **{"--device": "tpu"}), "device"))
    cases.append(("--pretrained_enc=shapenet.pointnet.pth.tar (seed name)",
                  nst_base(inputs, **{"--pretrained": None, "--pretrained_enc": "pretrained_models/shapenet.pointnet.pth.tar"}),
                  "pointnet_seg.pt"))
    cases.append(("--pretrained=garbage", nst_base(inputs, **{"--pretrained": inputs["garbage.pt"]}), "garbage.pt"))
    cases.append(("--num_points=abc", nst_base(inputs, **{"--num_points": "abc"}), "--num_points"))
    cases.append(("part with no points (late)", nst_base(inputs, **{"--part_specific": [], "--mask_class_list": "15",
                                                                     "--part_id_c": "15", "--part_id_s": "47"}),
                  "selects no points"))
    return cases


# The tables need the input files; pytest parametrisation needs the ids first, so build them from a
# stand-in dict of names (the real paths are substituted inside the test).
_NAMES = {k: f"<{k}>" for k in ("chair", "table", "lamp", "empty.xyz", "nan.xyz", "same.xyz", "two_columns.xyz",
                                "binary.xyz", "binary.yaml", "list.yaml", "bad_key.yaml", "garbage.pt", "a_file",
                                "folder.xyz", "missing", "dir")}
TABLES = {"deepdream3d": (deepdream3d.main, deepdream_cases), "attribution": (attribution_script.main, attribution_cases),
          "run_nst": (run_nst.main, nst_cases)}
CASES = [(tool, i, name) for tool, (_, make) in TABLES.items() for i, (name, _, _) in enumerate(make(_NAMES))]


def _substitute(items, inputs):
    out = []
    for item in items:
        for key, value in _NAMES.items():
            item = item.replace(value, inputs[key])
        out.append(item)
    return out


@pytest.mark.parametrize("tool,index,name", CASES, ids=[f"{t}: {n}" for t, _, n in CASES])
def test_bad_input_exits_2_with_one_line_and_no_files(tool, index, name, inputs, tmp_path, monkeypatch, capfd):
    main, make = TABLES[tool]
    _, argv, needle = make(_NAMES)[index]
    run_bad(main, _substitute(argv, inputs), _substitute([needle], inputs)[0], tmp_path, monkeypatch, capfd, inputs)


def test_case_counts_per_entry_point():
    """The README states these counts; keep them in step (and at least this many)."""
    counts = {tool: sum(1 for t, _, _ in CASES if t == tool) for tool in TABLES}
    assert counts["deepdream3d"] >= 30 and counts["attribution"] >= 25 and counts["run_nst"] >= 50, counts
