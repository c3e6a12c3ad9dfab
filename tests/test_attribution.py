"""Attribution on point clouds: closed forms and naive references for GBP, IG, Grad-CAM, HiResCAM,
the GBP-masked features, the exact targets, and attribution.py's outputs and errors."""
import os

import numpy as np
import pytest
import torch
from torch import nn

import attribution as attribution_script
from modules.attribution import (class_score_target, grad_cam, guided_backprop, guided_backprop_features,
                                 hirescam, integrated_gradients, part_score_target, point_score_target)
from modules.data import categories as cats
from modules.geometry.transforms import normalize_unit_sphere
from modules.models.pointnet import PointNetCls, PointNetPartSeg, make_input

CHAIR = cats.category_index("chair")
CHAIR_PARTS = cats.part_ids("chair")


def small_segmenter(seed=0):
    torch.manual_seed(seed)
    model = PointNetPartSeg(width_multiplier=0.125)
    with torch.no_grad():               # non-trivial BatchNorm statistics
        model.train()
        for _ in range(3):
            model(make_input(torch.randn(4, 64, 3), torch.full((4,), CHAIR)))
        model.classifier[5].weight.mul_(100.0)      # scores that vary noticeably with the input
    return model.eval()


def chair_input(n=64, batch=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    pts = normalize_unit_sphere(torch.randn(batch, n, 3, generator=g))
    return make_input(pts, torch.full((batch,), CHAIR))


def layer_grad_and_activation(model, inputs, layer, target):
    """Naive reference: activation of `layer` and d target / d activation via a forward hook."""
    store = {}
    handle = layer.register_forward_hook(lambda m, a, out: store.setdefault("act", out))
    x = inputs.clone().requires_grad_(True)
    with torch.no_grad():
        aux = target.prepare(model(inputs))
    store.clear()
    value = target.value(model(x), aux).sum()
    handle.remove()
    (grad,) = torch.autograd.grad(value, store["act"])
    return grad, store["act"].detach()


def test_part_target_uses_predicted_points_and_falls_back():
    scores = torch.zeros(2, 50, 4)
    scores[0, 13, :2] = 3.0             # shape 0: points 0,1 predicted seat
    scores[0, 12, 2:] = 1.0
    scores[1, 12] = 1.0                 # shape 1: no point predicted as seat
    target = part_score_target(13, CHAIR_PARTS)
    mask = target.prepare(scores)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert target.value(scores, mask).tolist() == [3.0, 0.0]


class SmoothSegmenter(nn.Module):
    """A smooth per-point network on (B, 3+16, N): IG's quadrature converges fast on it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.net = nn.Sequential(nn.Conv1d(19, 32, 1), nn.Tanh(), nn.Conv1d(32, 50, 1))

    def forward(self, x):
        h = self.net[1](self.net[0](x))
        return self.net[2](h + h.mean(dim=2, keepdim=True))   # points interact through the mean


def test_integrated_gradients_completeness():
    model, x = SmoothSegmenter().eval(), chair_input(batch=2)
    x[:, :3] *= 3.0
    target = part_score_target(13, CHAIR_PARTS)
    result, delta = integrated_gradients(model, x, target, n_steps=50, return_delta=True)
    baseline = x.clone()
    baseline[:, :3] = 0                 # the baseline keeps the one-hot
    with torch.no_grad():
        aux = target.prepare(model(x))
        diff = target.value(model(x), aux) - target.value(model(baseline), aux)
    assert diff.abs().min() > 0.05
    assert torch.all((result.map.sum(1) - diff).abs() <= 1e-3 * diff.abs())
    assert result.raw.shape == (2, 3, 64) and torch.allclose(result.map, result.raw.sum(1))
    assert delta.abs().max() <= 1e-3 * diff.abs().min()


def test_batched_attribution_equals_one_by_one():
    model, x = small_segmenter(), chair_input(batch=2)
    target = part_score_target(12, CHAIR_PARTS)
    for fn in (lambda inp: integrated_gradients(model, inp, target, n_steps=8),
               lambda inp: hirescam(model, inp, 7, target), lambda inp: guided_backprop(model, inp, target)):
        both = fn(x).map
        for i in range(2):
            assert torch.allclose(both[i], fn(x[i:i + 1]).map[0], atol=1e-6, rtol=1e-4)


def test_hirescam_matches_hand_computation():
    model, x = small_segmenter(), chair_input()
    target = part_score_target(14, CHAIR_PARTS)
    for layer_id in (3, 5, 7):
        layer = model.attribution_layers()[layer_id]
        grad, act = layer_grad_and_activation(model, x, layer, target)
        result = hirescam(model, x, layer_id, target)
        assert torch.allclose(result.raw, grad * act, atol=1e-7)
        assert torch.allclose(result.map, (grad * act).sum(1), atol=1e-6)


def test_grad_cam_matches_hand_computation():
    model, x = small_segmenter(), chair_input()
    target = part_score_target(12, CHAIR_PARTS)
    layer = model.attribution_layers()[6]
    grad, act = layer_grad_and_activation(model, x, layer, target)
    expected = torch.relu((grad.mean(dim=2, keepdim=True) * act).sum(1))
    assert torch.allclose(grad_cam(model, x, 6, target).map, expected, atol=1e-6)
    assert torch.allclose(grad_cam(model, x, layer, target, relu=False).map, (grad.mean(2, keepdim=True) * act).sum(1),
                          atol=1e-6)


def test_one_backward_equals_mean_of_per_point_backwards():
    model, x = small_segmenter(), chair_input(n=16)
    target = part_score_target(13, CHAIR_PARTS)
    with torch.no_grad():
        mask = target.prepare(model(x))[0]
    points = mask.nonzero().flatten().tolist()
    per_point = torch.stack([hirescam(model, x, 7, point_score_target(13, p)).map for p in points]).mean(0)
    assert torch.allclose(hirescam(model, x, 7, target).map, per_point, atol=1e-6)


class TwoLayer(nn.Module):
    """y[:, 0, n] = w2 . relu(W1 x_n + b1): Guided Backprop has a closed form."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.relu, self.fc2 = nn.Conv1d(3, 8, 1), nn.ReLU(), nn.Conv1d(8, 1, 1, bias=False)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def test_guided_backprop_passes_only_positive_gradients():
    model = TwoLayer().eval()
    x = torch.randn(1, 3, 5)
    target = lambda out: out[:, 0].sum(dim=1)                  # noqa: E731
    result = guided_backprop(model, x, target)
    w1, b1, w2 = model.fc1.weight[:, :, 0], model.fc1.bias, model.fc2.weight[0, :, 0]
    h = (w1 @ x[0] + b1[:, None]) > 0                          # (8, N) active units
    guided = w1.T @ (h.float() * w2.clamp_min(0)[:, None])     # only positive upstream gradient passes
    plain = w1.T @ (h.float() * w2[:, None])
    assert (w2 < 0).any()
    assert torch.allclose(result.raw[0], guided, atol=1e-6)
    assert not torch.allclose(result.raw[0], plain, atol=1e-4)


def test_guided_backprop_on_segmenter_matches_hook_implementation():
    from modules.attribution import guided_relus
    model, x = small_segmenter(), chair_input()
    target = part_score_target(15, CHAIR_PARTS)
    with torch.no_grad():
        aux = target.prepare(model(x))
    xr = x.clone().requires_grad_(True)
    with guided_relus(model):
        (grad,) = torch.autograd.grad(target.value(model(xr), aux).sum(), xr)
    assert torch.allclose(guided_backprop(model, x, target).raw, grad[:, :3], atol=1e-6)


def test_guided_backprop_features():
    model, x = small_segmenter(), chair_input()
    xr = x.clone().requires_grad_(True)
    feats, masks = guided_backprop_features(model, xr, part_score_target(13, CHAIR_PARTS))
    model(x)
    assert list(feats) == [f"feature_{i}" for i in range(6)]
    for i, m in enumerate(masks):
        plain = model.features[f"feature_{i}"]
        assert feats[f"feature_{i}"].shape == plain.shape
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0} and 0 < m.mean() < 1
        assert torch.all(m <= (plain > 0).float())             # only where the ReLU fired
        assert torch.allclose(feats[f"feature_{i}"], plain * m)
    assert torch.equal(feats["feature_5"], model.features["feature_5"])
    feats["feature_3"].sum().backward()                        # differentiable for NST
    assert xr.grad is not None and xr.grad.abs().sum() > 0


def test_classifier_targets():
    torch.manual_seed(0)
    model = PointNetCls(num_classes=4, width_multiplier=0.125).eval()
    x = torch.randn(1, 3, 32)
    g = guided_backprop(model, x, class_score_target(2))
    assert g.map.shape == (1, 32)
    grad, act = layer_grad_and_activation(model, x, model.conv3, class_score_target(2))
    assert torch.allclose(hirescam(model, x, 2, class_score_target(2)).map, (grad * act).sum(1), atol=1e-6)


def test_smoothgrad_runs_and_reduces_to_plain_with_tiny_noise():
    model, x = small_segmenter(), chair_input()
    target = part_score_target(13, CHAIR_PARTS)
    plain = guided_backprop(model, x, target).map
    smooth = guided_backprop(model, x, target, smoothgrad=3, stdev=1e-7).map
    assert torch.allclose(plain, smooth, atol=1e-5)
    assert integrated_gradients(model, x, target, n_steps=4, smoothgrad=2).map.shape == (1, 64)


# ----------------------------------------------------------------------------- the script

@pytest.fixture
def cloud_and_weights(tmp_path):
    rng = np.random.default_rng(0)
    cloud = tmp_path / "chair.pts"
    np.savetxt(cloud, rng.normal(size=(300, 3)), fmt="%.5f")
    weights = tmp_path / "seg.pt"
    torch.save({"model": small_segmenter().state_dict(), "width_multiplier": 0.125}, weights)
    return str(cloud), str(weights)


def run_script(args, capsys):
    with pytest.raises(SystemExit) as exc:
        attribution_script.main(args)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_script_outputs(cloud_and_weights, tmp_path):
    cloud, weights = cloud_and_weights
    out = attribution_script.main(["--obj_path", cloud, "--obj_cat", "chair", "--mode", "hirescam", "--part_id", "13",
                                   "--num_samples", "128", "--pretrained", weights, "--out_dir", str(tmp_path / "o")])
    for key in ("png", "ply", "npy", "raw_npy", "pred_png"):
        assert os.path.getsize(out[key]) > 0
    saved = np.load(out["npy"])
    assert saved.shape == (128,) and np.allclose(saved, out["map"])
    from modules.geometry.io import load_point_cloud
    ply = load_point_cloud(out["ply"])
    assert ply["points"].shape == (128, 3) and ply["colors"].shape == (128, 3)


def test_script_bad_inputs(cloud_and_weights, capsys, tmp_path):
    cloud, weights = cloud_and_weights
    common = ["--obj_path", cloud, "--pretrained", weights, "--out_dir", str(tmp_path / "o"), "--num_samples", "64"]
    err = run_script(common + ["--obj_cat", "chair", "--part_id", "25"], capsys)
    assert "part id 25" in err and "12 (back), 13 (seat), 14 (leg), 15 (arm)" in err
    err = run_script(common + ["--obj_cat", "chiar"], capsys)
    assert "unknown category" in err and "airplane" in err and "table" in err
    err = run_script(["--obj_path", cloud, "--obj_cat", "chair", "--num_samples", "1000",
                      "--out_dir", str(tmp_path / "o")], capsys)
    assert "300 points" in err and "needs at least 1000" in err
    err = run_script(common + ["--obj_cat", "chair", "--mode", "hirescam", "--layer_id", "12"], capsys)
    assert "layer id 12" in err


def test_script_default_folder_summary_and_no_overwrite(cloud_and_weights, tmp_path, capsys, monkeypatch):
    cloud, weights = cloud_and_weights
    monkeypatch.chdir(tmp_path)
    argv = ["--obj_path", cloud, "--obj_cat", "chair", "--mode", "gbp", "--part_id", "13", "--num_samples", "64",
            "--pretrained", weights, "--device", "cpu"]
    first = attribution_script.main(argv)
    assert first["out_dir"] == os.path.join("experiments", "attribution", "chair_gbp_part13")
    printed = capsys.readouterr().out
    assert "seg.pt" in printed and "64 points" in printed and "writing to " + first["out_dir"] in printed
    second = attribution_script.main(argv)
    assert second["out_dir"] == first["out_dir"] + "_1" and "not overwritten" in capsys.readouterr().out
