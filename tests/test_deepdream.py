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


@pytest.mark.parametrize("layers,channels,parts", [([0], [0, 8, 15], []), ([3], [2], []), ([], [], [25])])
def test_dreaming_increases_the_objective(model, points, layers, channels, parts):
    out, history = deepdream(model, points, "lamp", layers, channels, parts, lr=0.01, num_iters=5)
    assert history[-1] > history[0]
    assert out.shape == points.shape and not torch.equal(out, points)
    # other channels of the same layer were not the objective: the chosen ones rise by more, relatively
    if channels:
        before, _ = nst.run_segmenter(model, points, "lamp")
        after, _ = nst.run_segmenter(model, out, "lamp")
        f0, f1 = before[layers[0]][0].pow(2).mean(1), after[layers[0]][0].pow(2).mean(1)
        gain = (f1 / (f0 + 1e-12)).detach()
        others = [c for c in range(gain.numel()) if c not in channels]
        assert gain[channels].mean() > gain[others].mean()


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
    assert os.path.isfile(out / "progress.gif")
    ply = load_point_cloud(out / "step_0000.ply")
    assert ply["colors"] is not None and len(ply["points"]) == 200
    with pytest.raises(SystemExit) as exc:
        deepdream3d.main(["--obj_path", str(lamp), "--obj_cat", "lamp", "--layer_ids", "7", "--pretrained", "none"])
    assert exc.value.code == 2 and "valid layer ids are 0-5" in capsys.readouterr().err
