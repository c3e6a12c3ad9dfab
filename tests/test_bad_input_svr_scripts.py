"""Bad input to the single-view scripts (fit_data.py, train_model.py, eval_model.py): every case exits with code 2,
one line on stderr naming the flag / key / file and what was expected, no traceback, and no new file anywhere
(the case's folders, the working directory where the default outputs would go, and the repository's top level). In-process: main(argv), SystemExit caught (tests/bad_input.py).

Generated tables: every numeric flag (declared with `flag_type(spec)`) x values just outside its spec, nan,
inf and huge ones; every config key the svr family declares (model per decoder type, data, task) x values
outside its spec, as train_model.py overrides; every input file flag x missing / empty / binary / folder /
truncated files; every output flag x a file, a folder under a file, a read-only place, a name that escapes
its root. Plus a batch with one corrupt object (eval_model.py): reported by name, skipped, exit code 1.
"""
import os
import shutil

import numpy as np
import pytest
import torch
import trimesh

import eval_model
import fit_data
import train_model
from bad_input import NOT_WRITABLE, READ_ONLY_SYS, bad_flag_values, bad_values, flag_specs, run_bad, top_level
from modules.config import engine_defaults, resolve, section_specs
from modules.data import r2n2
from modules.engine.checkpoint import save_checkpoint
from modules.families.svr import config as svr_config
from modules.geometry.binvox import write_binvox
from modules.geometry.io import save_mesh
from modules.registry import DATASETS, MODELS, TASKS
from modules.utils import ROOT

pytestmark = pytest.mark.usefixtures("single_thread")

SYNSET = "03001627"
IDS = ("box_0", "box_1")


def write_tiny_r2n2(root, ids=IDS):
    """Boxes in the R2N2 layout: mesh, 32^3 voxels, one 64x64 RGBA view each, split.json with every split."""
    for k, sid in enumerate(ids):
        box = trimesh.creation.box(extents=(0.5, 0.6 + 0.1 * k, 0.4))
        save_mesh(r2n2.mesh_path(root, SYNSET, sid), box.vertices, box.faces)
        grid = np.zeros((32, 32, 32), bool)
        grid[8:24, 6:26, 10:22] = True
        write_binvox(r2n2.binvox_path(root, SYNSET, sid), grid, (-0.5, -0.5, -0.5), 1.0)
        image = np.zeros((64, 64, 4), np.uint8)
        image[16:48, 16:48] = (120, 80, 40, 255)
        r2n2.write_image(r2n2.image_path(root, SYNSET, sid, 0), image)
        r2n2.write_rendering_metadata(os.path.join(r2n2.rendering_dir(root, SYNSET, sid), "rendering_metadata.txt"),
                                      [(30.0, 25.0, 0.0, 0.8, 25.0)])
        with open(os.path.join(r2n2.rendering_dir(root, SYNSET, sid), "renderings.txt"), "w") as f:
            f.write("00.png\n")
    r2n2.write_split(os.path.join(root, "split.json"),
                     {s: [(SYNSET, sid, [0]) for sid in ids] for s in r2n2.SPLITS})
    return str(root)


def point_config(root):
    return resolve({"model": {"name": "svr_point", "n_points": 64, "hidden": [32, 32]},
                    "data": {"name": "svr", "format": "r2n2", "root": str(root), "image_size": 32, "n_points": 64},
                    "task": {"name": "svr"}})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """{name: path}: the tiny R2N2 data, a point-decoder checkpoint (untrained, with its config) and broken files."""
    d = tmp_path_factory.mktemp("svr_inputs")
    files = {"dir": str(d), "r2n2": write_tiny_r2n2(d / "r2n2")}
    cfg = point_config(files["r2n2"])
    torch.manual_seed(0)
    model = MODELS.build(cfg["model"])
    files["ckpt"] = str(d / "point.pt")
    save_checkpoint(files["ckpt"], {"model": model.state_dict(), "model_name": "svr_point", "config": cfg,
                                    "epoch": 0, "step": 0})
    files["vox_ckpt"] = str(d / "vox.pt")
    save_checkpoint(files["vox_ckpt"], {"model": {}, "model_name": "svr_vox",
                                        "config": {**cfg, "model": {"name": "svr_vox"}}})
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.pt").write_bytes(b"not a checkpoint" * 10)
    (d / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "a_file").write_text("x")
    (d / "empty_dir").mkdir()
    for name in ("empty.pt", "garbage.pt", "binary.yaml", "list.yaml", "a_file", "empty_dir"):
        files[name] = str(d / name)
    files["missing"] = str(d / "missing")
    files["truncated.pt"] = str(d / "truncated.pt")
    with open(files["ckpt"], "rb") as f:
        (d / "truncated.pt").write_bytes(f.read(4096))
    return files


def bad_outputs():
    """(name, path builder, pattern): output locations that cannot be used."""
    out = [("a file", lambda w: w["a_file"], "is a file"),
           ("under a file", lambda w: os.path.join(w["a_file"], "sub"), "is a file")]
    if READ_ONLY_SYS:
        out.append(("not writable", lambda w: NOT_WRITABLE, "not writable"))
    return out


def argv_of(args):
    """{flag: value (None: left out, []: a switch)} -> argv."""
    return [x for k, v in args.items() if v is not None for x in ([k] + (v if isinstance(v, list) else [v]))]


def check(main, argv, needle, world, tmp_path, monkeypatch, capsys, code=2):
    """run_bad with the working directory in tmp_path (default outputs land there) and the repository watched."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    monkeypatch.chdir(work)
    top = top_level()
    line = run_bad(main, argv, capsys, needle, [str(work), world["dir"]], code)   # no script here defaults to experiments/
    assert top_level() == top
    return line


def _sub(value, world):
    return world[value[1:-1]] if isinstance(value, str) and value.startswith("<") and value.endswith(">") else value


# ------------------------------------------------------------------------------------------------ fit_data.py

def fit_base(**kw):
    args = {"--data_root": "<r2n2>", "--save_dir": "out", "--max_iter": "1", "--n_points": "64", "--no_progress": []}
    args.update(kw)
    return args


def fit_cases():
    cases = []
    for flag, text in sorted(flag_specs(fit_data.parse_args).items()):
        for v in bad_flag_values(text):
            cases.append((f"{flag}={v}", fit_base(**{flag: v}), f"{flag}: expected"))
    for flag, v in (("--type", "voxel"), ("--format", "shapenet"), ("--split", "holdout")):
        cases.append((f"{flag}={v}", fit_base(**{flag: v}), f"{flag}: invalid choice"))
    cases += [
        ("--data_root missing", fit_base(**{"--data_root": "<missing>"}), "missing"),
        ("--data_root is a file", fit_base(**{"--data_root": "<a_file>"}), "a_file"),
        ("--data_root empty folder", fit_base(**{"--data_root": "<empty_dir>"}), "split.json"),
        ("--category sofa_xyz", fit_base(**{"--category": "sofa_xyz"}), "sofa_xyz"),
        ("--category of no item", fit_base(**{"--category": "lamp"}), "no r2n2 items .* categories"),
        ("--index past the split", fit_base(**{"--index": "2"}), "--index 2: the train split .* has 2 items"),
        ("--bogus flag", fit_base(**{"--bogus": "1"}), "--bogus"),
    ]
    for name, _, needle in bad_outputs():
        cases.append((f"--save_dir {name}", fit_base(**{"--save_dir": f"<out:{name}>"}), f"--save_dir .*{needle}"))
    return cases


FIT_CASES = fit_cases()


def _resolve_args(args, world):
    out = {}
    for k, v in args.items():
        if isinstance(v, str) and v.startswith("<out:"):
            v = {n: b for n, b, _ in bad_outputs()}[v[5:-1]](world)
        out[k] = _sub(v, world)
    return argv_of(out)


@pytest.mark.parametrize("index", range(len(FIT_CASES)), ids=[c[0] for c in FIT_CASES])
def test_fit_data_bad_input(index, world, tmp_path, monkeypatch, capsys):
    _, args, needle = FIT_CASES[index]
    check(fit_data.main, _resolve_args(args, world), needle, world, tmp_path, monkeypatch, capsys)


@pytest.mark.parametrize("target, data", [("model.binvox", b"#binvox 1\ndim 32 32 32\ndata\n\x00"),
                                          ("model.off", b"OFF\n8 12 0\n0 0 0\n1 0 0\n"),
                                          ("model.binvox", b""), ("model.off", bytes(range(256)))],
                         ids=["truncated binvox", "truncated off", "empty binvox", "binary off"])
def test_fit_data_broken_target_file(target, data, world, tmp_path, monkeypatch, capsys):
    root = tmp_path / "r2n2"
    shutil.copytree(world["r2n2"], root)
    path = (r2n2.binvox_path if target == "model.binvox" else r2n2.mesh_path)(str(root), SYNSET, IDS[0])
    with open(path, "wb") as f:
        f.write(data)
    check(fit_data.main, argv_of(fit_base(**{"--data_root": str(root)})), f"{IDS[0]}.*{target}|{target}.*",
          world, tmp_path, monkeypatch, capsys)


# --------------------------------------------------------------------------------------------- train_model.py

def train_base(**kw):
    args = {"--type": "point", "--output_dir": "outputs", "--data_root": "<r2n2>"}
    args.update(kw)
    return args


def schema_cases():
    """Every key the svr family declares a spec for, per decoder type, out of range: train_model.py overrides."""
    _, engine = engine_defaults()
    cases = []
    for t in svr_config.TYPES:
        name = svr_config.MODEL_NAMES[t]
        defaults = {"name": name, **MODELS.defaults(name)}
        for key, text in sorted(section_specs("model", name, defaults, engine).items()):
            for v in bad_values(text):
                cases.append((f"{t}: model.{key}={v}", t, f"model.{key}={v}", f"model.{key}"))
    for section, registry in (("data", DATASETS), ("task", TASKS)):
        defaults = {"name": "svr", **registry.defaults("svr")}
        for key, text in sorted(section_specs(section, "svr", defaults, engine).items()):
            for v in bad_values(text):
                cases.append((f"{section}.{key}={v}", "point", f"{section}.{key}={v}", f"{section}.{key}"))
    return cases


SCHEMA_CASES = schema_cases()


def test_every_svr_section_declares_its_ranges():
    """Keys of the svr sections with no declared spec only take their default's type: these must have one."""
    _, engine = engine_defaults()
    declared = {k for t in svr_config.TYPES for k in svr_config.MODEL_SCHEMAS[t]} | set(svr_config.DATA_SCHEMA)
    assert {"n_points", "threshold", "level", "image_size", "format"} <= declared
    assert len(SCHEMA_CASES) >= 60


@pytest.mark.parametrize("index", range(len(SCHEMA_CASES)), ids=[c[0] for c in SCHEMA_CASES])
def test_train_model_out_of_range_config_keys(index, world, tmp_path, monkeypatch, capsys):
    _, t, override, key = SCHEMA_CASES[index]
    argv = argv_of({k: _sub(v, world) for k, v in train_base(**{"--type": t}).items()}) + [override]
    check(train_model.main, argv, f"'{key}' must be", world, tmp_path, monkeypatch, capsys)


def train_cases():
    cases = []
    for flag, text in sorted(flag_specs(train_model.parse_args).items()):
        for v in bad_flag_values(text):
            cases.append((f"{flag}={v}", train_base(**{flag: v}), f"{flag}: expected"))
    cases += [
        ("--type voxel", train_base(**{"--type": "voxel"}), "--type: invalid choice"),
        ("--resume_config both", train_base(**{"--resume_config": "both"}), "--resume_config: invalid choice"),
        ("--id ..", train_base(**{"--id": ".."}), "--id '..'"),
        ("--id ../x", train_base(**{"--id": "../x"}), "--id '../x'"),
        ("--id a/b", train_base(**{"--id": "a/b"}), "--id 'a/b'"),
        ("--id empty", train_base(**{"--id": ""}), "--id ''"),
        ("--config missing", train_base(**{"--config": "<missing>"}), "config file not found"),
        ("--config binary", train_base(**{"--config": "<binary.yaml>"}), "not a text"),
        ("--config a list", train_base(**{"--config": "<list.yaml>"}), "mapping at the top level"),
        ("--config of another decoder", train_base(**{"--config": os.path.join(ROOT, "configs", "svr", "vox.yaml")}),
         "trains 'svr_vox', not svr_point"),
        ("--data_root missing", train_base(**{"--data_root": "<missing>"}), "data.root .*missing"),
        ("--data_root empty folder", train_base(**{"--data_root": "<empty_dir>"}), "split.json"),
        ("--categories sofa_xyz", train_base(**{"--categories": "sofa_xyz"}), "sofa_xyz"),
        ("--device tpu", train_base(**{"--device": "tpu"}), "experiment.device"),
        ("unknown key", train_base(), "unknown config key 'training.learning_rate'"),
        ("override without =", train_base(), "expected key.sub=value"),
        ("--bogus flag", train_base(**{"--bogus": "1"}), "--bogus"),
    ]
    for name, _, needle in bad_outputs():
        cases.append((f"--output_dir {name}", train_base(**{"--output_dir": f"<out:{name}>"}),
                      f"--output_dir .*{needle}"))
    return cases


TRAIN_EXTRA = {"unknown key": ["training.learning_rate=1"], "override without =": ["training.lr"]}
TRAIN_CASES = train_cases()


@pytest.mark.parametrize("index", range(len(TRAIN_CASES)), ids=[c[0] for c in TRAIN_CASES])
def test_train_model_bad_input(index, world, tmp_path, monkeypatch, capsys):
    name, args, needle = TRAIN_CASES[index]
    argv = _resolve_args(args, world) + TRAIN_EXTRA.get(name, [])
    check(train_model.main, argv, needle, world, tmp_path, monkeypatch, capsys)


# ---------------------------------------------------------------------------------------------- eval_model.py

def eval_base(**kw):
    args = {"--type": "point", "--checkpoint_path": "<ckpt>", "--output_dir": "test_outputs", "--vis_freq": "0",
            "--no_progress": [], "--device": "cpu"}
    args.update(kw)
    return args


def eval_cases():
    cases = []
    for flag, text in sorted(flag_specs(eval_model.parse_args).items()):
        for v in bad_flag_values(text):
            cases.append((f"{flag}={v}", eval_base(**{flag: v}), f"{flag}: expected"))
    for flag, v in (("--type", "voxel"), ("--split", "holdout"), ("--format", "shapenet"), ("--layer", "layer9"),
                    ("--visualizer", "saliency")):
        extra = {"--visualizer": "gradcam"} if flag == "--layer" else {}
        cases.append((f"{flag}={v}", eval_base(**{flag: v, **extra}), f"{flag}: invalid choice"))
    cases.append(("--target=iou", eval_base(**{"--target": "iou", "--visualizer": "gradcam"}), "--target 'iou'"))
    cases += [
        ("no --type", eval_base(**{"--type": None}), "--type is required"),
        ("--type vox without a checkpoint", eval_base(**{"--type": "vox", "--checkpoint_path": None}),
         "--checkpoint_path is required"),
        ("--id ..", eval_base(**{"--id": ".."}), "--id '..'"),
        ("--id ../x", eval_base(**{"--id": "../x"}), "--id '../x'"),
        ("--id a/b", eval_base(**{"--id": "a/b"}), "--id 'a/b'"),
        ("--device tpu", eval_base(**{"--device": "tpu"}), "--device tpu"),
        ("--data_root missing", eval_base(**{"--data_root": "<missing>"}), "data.root .*missing"),
        ("--data_root empty folder", eval_base(**{"--data_root": "<empty_dir>"}), "split.json"),
        ("--categories sofa_xyz", eval_base(**{"--categories": "sofa_xyz"}), "sofa_xyz"),
        ("--categories of no item", eval_base(**{"--categories": "lamp"}), "no r2n2 items .* categories"),
        ("checkpoint of another decoder", eval_base(**{"--checkpoint_path": "<vox_ckpt>"}), "svr_vox"),
        ("attribution with a checkpoint of another decoder",
         eval_base(**{"--checkpoint_path": "<vox_ckpt>", "--visualizer": "gradcam"}), "svr_vox"),
        ("--bogus flag", eval_base(**{"--bogus": "1"}), "--bogus"),
    ]
    for name in ("missing", "empty.pt", "garbage.pt", "truncated.pt", "empty_dir", "binary.yaml"):
        cases.append((f"--checkpoint_path {name}", eval_base(**{"--checkpoint_path": f"<{name}>"}),
                      os.path.splitext(name)[0]))
    for name, _, needle in bad_outputs():
        cases.append((f"--output_dir {name}", eval_base(**{"--output_dir": f"<out:{name}>"}),
                      f"--output_dir .*{needle}"))
        cases.append((f"attribution --output_dir {name}",
                      eval_base(**{"--output_dir": f"<out:{name}>", "--visualizer": "gradcam"}),
                      f"--output_dir .*{needle}"))
    return cases


EVAL_CASES = eval_cases()


@pytest.mark.parametrize("index", range(len(EVAL_CASES)), ids=[c[0] for c in EVAL_CASES])
def test_eval_model_bad_input(index, world, tmp_path, monkeypatch, capsys):
    _, args, needle = EVAL_CASES[index]
    check(eval_model.main, _resolve_args(args, world), needle, world, tmp_path, monkeypatch, capsys)


def test_eval_model_skips_a_corrupt_object_and_exits_1(world, tmp_path, monkeypatch, capsys):
    """One object's mesh is cut short: the other is evaluated and written, the broken one named, exit code 1."""
    root = tmp_path / "r2n2"
    shutil.copytree(world["r2n2"], root)
    with open(r2n2.mesh_path(str(root), SYNSET, IDS[1]), "wb") as f:
        f.write(b"OFF\n8 12 0\n0 0 0\n1 0 0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        eval_model.main(argv_of({k: _sub(v, world) for k, v in eval_base(**{"--data_root": str(root)}).items()}))
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == 1, err
    assert len(lines) == 1 and "1 of 2 objects failed" in lines[0] and f"{SYNSET}/{IDS[1]}" in lines[0], err
    rows = (tmp_path / "test_outputs" / "point" / "evaluation_results.csv").read_text().splitlines()
    assert len(rows) == 2 and IDS[0] in rows[1]          # header + the good object only


def test_case_counts():
    """The README states these counts (at least this many)."""
    assert len(FIT_CASES) >= 40 and len(TRAIN_CASES) >= 50 and len(EVAL_CASES) >= 50, \
        (len(FIT_CASES), len(TRAIN_CASES), len(EVAL_CASES))
