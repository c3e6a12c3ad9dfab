"""DeepDream3D (modules/deepdream.py, deepdream3d.py) with a small random PointNet segmenter."""
import os

import numpy as np
import pytest
import torch

import nst_shapes
from modules.families.pointnet import nst, weights
from modules.families.pointnet.deepdream import check_objective, deepdream, dream_objective
from modules.geometry.io import load_point_cloud, save_point_cloud
from modules.utils import ShapeLabError

from conftest import RANDOM_SEGMENTER_WIDTH as WIDTH

pytestmark = pytest.mark.usefixtures("single_thread")
model = pytest.fixture(scope="module", name="model")(lambda random_segmenter: random_segmenter)


@pytest.fixture(scope="module")
def points():
    pts, _ = nst_shapes.table(np.random.default_rng(1), n=300)
    from modules.geometry.transforms import normalize_unit_sphere
    return normalize_unit_sphere(torch.from_numpy(pts).float())


def test_objective_uses_exactly_the_chosen_layers_and_channels(model, points):
    feats, scores = nst.run_segmenter(model, points, "lamp")
    value = dream_objective(feats, scores, [0, 2], [1, 5], [])
    naive = np.mean([np.mean(feats[l][0, [1, 5]].detach().numpy() ** 2) for l in (0, 2)])
    assert float(value) == pytest.approx(naive, rel=1e-5)
    assert float(dream_objective(feats, scores, [], [], [25])) == pytest.approx(float(scores[0, 25].mean()))


MODES = [([layer], [], []) for layer in range(6)] + [([0], [0, 8, 15], []), ([3], [2], []), ([4], [5, 9], []),
                                                    ([0, 3], [1], []), ([], [], [25]), ([], [], [24, 27])]


@pytest.mark.parametrize("layers,channels,parts", MODES,
                         ids=[f"layers{l}_ch{c}_parts{p}" for l, c, p in MODES])
def test_ascent_raises_the_objective_at_every_one_of_the_first_steps(model, points, layers, channels, parts):
    """Every layer / channel / part mode at the default lr: the objective rises at each of 5 steps
    (the original's normalised step made the lampshade objective fall at its first step)."""
    out, history = deepdream(model, points, "lamp", layers, channels, parts, lr=0.01, num_iters=5)
    assert all(b > a for a, b in zip(history, history[1:])), history
    assert out.shape == points.shape and not torch.equal(out, points)
    feats, scores = nst.run_segmenter(model, out, "lamp")
    assert float(dream_objective(feats, scores, layers, channels, parts)) == pytest.approx(history[-1], rel=1e-5)


def test_bad_objectives_are_clear_errors():
    with pytest.raises(ShapeLabError, match="layer id 6 out of range; valid layer ids are 0-5"):
        check_objective([6], [0], [], "lamp")
    with pytest.raises(ShapeLabError, match="channel 64 out of range for layer 0"):
        check_objective([0], [64], [], "lamp")
    with pytest.raises(ShapeLabError, match="part id 13 does not belong to category 'lamp'"):
        check_objective([], [], [13], "lamp")


def test_seed_command_writes_snapshots_pngs_and_gif(tmp_path, capsys):
    import deepdream3d
    pts, _ = nst_shapes.table(np.random.default_rng(2), n=300)
    lamp = tmp_path / "lamp.xyz"
    save_point_cloud(lamp, pts)
    out = tmp_path / "dream"
    deepdream3d.main(["--obj_path", str(lamp), "--obj_cat", "lamp", "--layer_ids", "0", "--channel_ids", "0", "8",
                      "16", "--lr", "0.01", "--num_iters", "4", "--visualize_every", "2", "--num_points", "200",
                      "--width_multiplier", "0.5", "--pretrained", "none", "--out_dir", str(out)])
    for step in (0, 2, 4):
        for ext in (".xyz", ".ply", ".png"):
            assert os.path.isfile(out / f"step_{step:04d}{ext}")
    assert os.path.isfile(out / "progress.gif") and os.path.isfile(out / "dream.png")
    ply = load_point_cloud(out / "step_0000.ply")
    assert ply["colors"] is not None and len(ply["points"]) == 200
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed and f"writing to {out}" in printed and "200 of 300 points" in printed


def test_default_uses_every_point_once_and_never_overwrites(tmp_path, capsys, monkeypatch):
    import deepdream3d
    pts, _ = nst_shapes.table(np.random.default_rng(3), n=300)
    lamp = tmp_path / "lamp.xyz"
    save_point_cloud(lamp, pts)
    monkeypatch.chdir(tmp_path)
    argv = ["--obj_path", str(lamp), "--obj_cat", "lamp", "--part_ids", "25", "--num_iters", "1", "--pretrained", "none",
            "--width_multiplier", "0.25", "--device", "cpu"]
    deepdream3d.main(argv)
    first = tmp_path / "experiments" / "deepdream" / "lamp_part25"
    cloud = load_point_cloud(first / "step_0000.xyz")["points"]
    assert len(cloud) == len(pts) == len(np.unique(cloud, axis=0))       # all 300 points, none twice
    before = {p: os.path.getmtime(first / p) for p in os.listdir(first) if p.endswith(".png")}
    capsys.readouterr()
    deepdream3d.main(argv)
    printed = capsys.readouterr().out
    assert "not overwritten" in printed and os.path.isdir(str(first) + "_1")
    assert before == {p: os.path.getmtime(first / p) for p in before}
    with pytest.raises(SystemExit) as exc:
        deepdream3d.main(["--obj_path", str(lamp), "--obj_cat", "lamp", "--layer_ids", "7", "--pretrained", "none"])
    assert exc.value.code == 2 and "valid layer ids are 0-5" in capsys.readouterr().err
