"""generate.py and evaluate.py on tables of bad inputs: exit code 2 (1 when only some objects failed), exactly
one line on stderr naming the flag/file and what was expected, and no new file anywhere (listings of the
temporary tree and the repository's experiments/ compared). In-process: main(argv), SystemExit caught.

The numeric flags are generated from their declared specs (the `flag_type` of each argparse option):
for every one, values just outside its range and of the wrong type.
"""
import os
import re

import numpy as np
import pytest
import torch
import trimesh

import evaluate
import generate
from modules.config import resolve
from modules.data.onet import write_pointcloud_npz, write_points_npz
from modules.engine.checkpoint import save_checkpoint
from modules.geometry.io import save_mesh
from modules.registry import MODELS
from bad_input import bad_values, flag_specs, run_bad
from test_occupancy_pipeline import SYNSET, make_tiny_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"npoints_per_layer": [64, 32, 16], "encoder_nneigh": 8, "encoder_nneigh_reduced": 8, "nfinal_trans": 1,
        "encoder_attn_dim": 16, "encoder_attn_dim_reduced": 16, "decoder_attn_dim": 16, "decoder_nneigh": 4,
        "decoder_hidden_dim": 16, "decoder_nblocks": 1}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Tiny ONet/IF-Net data and an untrained tiny AIR-Net checkpoint (with its config, as the engine writes)."""
    base = tmp_path_factory.mktemp("gen")
    make_tiny_data(str(base / "data"), n_shapes=4, n_points=600)
    cfg = resolve({"model": {"name": "airnet", **TINY},
                   "data": {"name": "occupancy", "format": "ifnet", "root": str(base / "data" / "ifnet"),
                            "pc_samples": 64},
                   "task": {"name": "occupancy"}})
    torch.manual_seed(0)
    model = MODELS.build(cfg["model"])
    exp = base / "experiments" / "tiny"
    (exp / "checkpoints").mkdir(parents=True)
    state = {"model": model.state_dict(), "model_name": "airnet", "config": cfg, "epoch": 1, "step": 1}
    save_checkpoint(str(exp / "checkpoints" / "latest.pt"), state)
    (exp / "config.yaml").write_text("model:\n  name: airnet\ntraining:\n  save_epoch_every: 0\n")
    return base


GEN_FLAG_CASES = [(flag, str(v)) for flag, text in sorted(flag_specs(generate.parse_args).items())
                  for v in bad_values(text)]
EVAL_FLAG_CASES = [(flag, str(v)) for flag, text in sorted(flag_specs(evaluate.parse_args).items())
                   for v in bad_values(text)]


def _gen(setup, *extra):
    return ["-exp_name", "tiny", "--exp_root", str(setup / "experiments"), "-mise_res", "8", "-mise_steps", "0",
            "--no_pictures", *extra]


def test_flag_tables_cover_every_numeric_flag():
    assert {"-max_objects", "-batch_points", "-mise_res", "-threshold", "--seed"} <= {f for f, _ in GEN_FLAG_CASES}
    assert {"-iou_samples", "-n_samples", "-j"} <= {f for f, _ in EVAL_FLAG_CASES}


@pytest.mark.parametrize("flag, value", GEN_FLAG_CASES, ids=[f"{f}={v}" for f, v in GEN_FLAG_CASES])
def test_generate_out_of_range_flags(setup, capsys, flag, value):
    run_bad(generate.main, _gen(setup, flag, value), capsys, re.escape(flag) + ".*expected", [setup])


def _write(path, data=b""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def _state_file(setup, name, state):
    path = setup / "ckpts" / name
    os.makedirs(path.parent, exist_ok=True)
    save_checkpoint(str(path), state)
    return str(path)


GEN_CASES = {
    "exp_name ..": (lambda s: ["-exp_name", "..", "--exp_root", str(s / "experiments")], "-exp_name '..'"),
    "exp_name ../x": (lambda s: ["-exp_name", "../x", "--exp_root", str(s / "experiments")], "-exp_name '../x'"),
    "missing experiment": (lambda s: ["-exp_name", "nope", "--exp_root", str(s / "experiments")], "not found"),
    "neither exp nor ckpt": (lambda s: ["--exp_root", str(s / "experiments")], "give -exp_name"),
    "checkpoint N without epoch files": (lambda s: _gen(s, "-checkpoint", "3"),
                                         r"epoch_3.pt not found.*save_epoch_every: 0.*-ckpt_name latest.pt"),
    "checkpoint and ckpt_name": (lambda s: _gen(s, "-checkpoint", "1", "-ckpt_name", "latest.pt"), "not both"),
    "ckpt_name missing": (lambda s: ["-ckpt_name", str(s / "none.pt")], "-ckpt_name .*no such file"),
    "empty checkpoint file": (lambda s: ["-ckpt_name", _write(s / "ckpts" / "empty.pt")], "is empty"),
    "garbage checkpoint file": (lambda s: ["-ckpt_name", _write(s / "ckpts" / "junk.pt", b"junk")], "cannot be loaded"),
    "checkpoint without config": (lambda s: ["-ckpt_name", _state_file(s, "noconf.pt", {"model": {}})],
                                  "has no 'config'"),
    "task without generator": (lambda s: ["-ckpt_name", _state_file(s, "seg.pt", {
        "model": {}, "model_name": "pointnet_seg",
        "config": {"model": {"name": "pointnet_seg"}, "task": {"name": "part_segmentation"}}})], "has no generator"),
    "method unknown": (lambda s: _gen(s, "-method", "poisson"), "-method"),
    "split unknown": (lambda s: _gen(s, "-split", "holdout"), "-split"),
    "data_type unknown": (lambda s: _gen(s, "-data_type", "human"), "-data_type"),
    "data_root missing": (lambda s: _gen(s, "-data_root", str(s / "nowhere")), "data.root .*not found"),
    "no shape of that category": (lambda s: _gen(s, "-categories", "02691156"), "no objects to generate"),
    "device unknown": (lambda s: _gen(s, "-device", "tpu"), "--device tpu"),
    "exp_root is a file": (lambda s: ["-ckpt_name", str(s / "experiments" / "tiny" / "checkpoints" / "latest.pt"),
                                      "--exp_root", _write(s / "afile", b"x")], "is a file|cannot be created"),
}


@pytest.mark.parametrize("name", sorted(GEN_CASES))
def test_generate_bad_arguments(setup, capsys, name):
    build, message = GEN_CASES[name]
    argv = build(setup)
    run_bad(generate.main, argv, capsys, message, [setup, os.path.join(ROOT, "experiments")])


def test_generate_output_folder_that_is_a_file(setup, capsys):
    out = setup / "experiments" / "tiny" / "evaluation_latest_@8x0"
    _write(out, b"in the way")
    try:
        run_bad(generate.main, _gen(setup), capsys, "evaluation_latest_@8x0.*is a file|cannot be created", [setup])
    finally:
        os.remove(out)


def test_generate_partial_failure_exits_1(setup, capsys, tmp_path):
    """One shape with too few input points fails; the others are generated; exit code 1 with the summary."""
    import shutil
    data = tmp_path / "onet"
    shutil.copytree(setup / "data" / "onet", data)
    bad = data / SYNSET / "shape_01" / "pointcloud.npz"
    write_pointcloud_npz(bad, np.zeros((10, 3)), np.zeros((10, 3)))
    with pytest.raises(SystemExit) as exit_info:
        generate.main(_gen(setup, "-data_root", str(data), "-data_type", "onet", "-split", "train",
                           "-exp_name", "tiny", "--overwrite"))
    out, err = capsys.readouterr()
    assert exit_info.value.code == 1
    errors = [line for line in err.splitlines() if line.strip() and not line.startswith("generate:")]  # minus the bar
    assert len(errors) == 1 and "1 of 2 objects failed" in err and "shape_01" in err
    assert "1 generated (" in out


# ------------------------------------------------------------------------------------------- evaluate.py

@pytest.fixture()
def generation(tmp_path):
    """A generation/ folder with one mesh and an ONet ground truth for it."""
    rng = np.random.default_rng(0)
    gen, gt = tmp_path / "exp" / "generation" / SYNSET / "a", tmp_path / "gt" / SYNSET / "a"
    os.makedirs(gen)
    os.makedirs(gt)
    sphere = trimesh.creation.icosphere(2, radius=0.4)
    save_mesh(gen / "surface_reconstruction.off", sphere.vertices, sphere.faces)
    u = rng.normal(size=(500, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    write_pointcloud_npz(gt / "pointcloud.npz", 0.4 * u, u)
    pts = rng.uniform(-0.5, 0.5, (500, 3))
    write_points_npz(gt / "points.npz", pts, np.linalg.norm(pts, axis=1) < 0.4)
    return tmp_path


def _eval(root, *extra):
    return ["-generation_path", str(root / "exp" / "generation"), "-gt_path", str(root / "gt"), "-no_progress",
            "-n_samples", "500", "-iou_samples", "500", *extra]


@pytest.mark.parametrize("flag, value", EVAL_FLAG_CASES, ids=[f"{f}={v}" for f, v in EVAL_FLAG_CASES])
def test_evaluate_out_of_range_flags(generation, capsys, flag, value):
    run_bad(evaluate.main, _eval(generation, flag, value), capsys, re.escape(flag) + ".*expected", [generation])


EVAL_CASES = {
    "generation path missing": (lambda r: ["-generation_path", str(r / "none")], "not a folder"),
    "generation path is a file": (lambda r: ["-generation_path", _write(r / "f.txt", b"x")], "not a folder"),
    "no meshes": (lambda r: ["-generation_path", str(r / "gt"), "-gt_path", str(r / "gt")],
                  "no <class>/<id>/surface_reconstruction.off"),
    "gt path missing": (lambda r: _eval(r, "-gt_path", str(r / "nogt")), "-gt_path .*not a folder"),
    "no gt path recorded": (lambda r: ["-generation_path", str(r / "exp")], "no -gt_path given"),
    "data_type unknown": (lambda r: _eval(r, "-data_type", "shapenet"), "-data_type"),
    "contains_method unknown": (lambda r: _eval(r, "-contains_method", "magic"), "-contains_method"),
    "device unknown": (lambda r: _eval(r, "-device", "tpu"), "--device tpu"),
    "missing generation_path": (lambda r: [], "-generation_path"),
    "results file is a folder": (lambda r: (os.makedirs(r / "exp" / "evaluation_results.csv"), _eval(r))[1],
                                 "evaluation_results.csv: is a folder"),
}


@pytest.mark.parametrize("name", sorted(EVAL_CASES))
def test_evaluate_bad_arguments(generation, capsys, name):
    build, message = EVAL_CASES[name]
    argv = build(generation)
    run_bad(evaluate.main, argv, capsys, message, [generation, os.path.join(ROOT, "experiments")])


def test_evaluate_partial_failure_exits_1(generation, capsys):
    """A broken mesh next to a good one: both rows written, exit code 1, one line naming it on stderr."""
    bad = generation / "exp" / "generation" / SYNSET / "b"
    os.makedirs(bad)
    (bad / "surface_reconstruction.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n")
    os.makedirs(generation / "gt" / SYNSET / "b")
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(_eval(generation))
    out, err = capsys.readouterr()
    assert exit_info.value.code == 1
    assert len(err.strip().splitlines()) == 1 and "1 of 2 objects failed" in err and f"{SYNSET}/b" in err
    assert "| **object mean** |" in out and (generation / "exp" / "evaluation_results.csv").exists()
