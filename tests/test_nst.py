"""Geometric NST (modules/nst.py, modules/losses/style.py, run_nst.py) on tiny labelled box clouds
with a small random PointNet segmenter (width 0.25)."""
import glob
import os

import numpy as np
import pytest
import torch

from modules.families.pointnet import nst, weights
from modules.geometry.io import load_point_cloud
from modules.losses.style import channel_stats, gram_loss, gram_matrix, stats_loss
from modules.utils import ShapeLabError
import nst_shapes

from conftest import RANDOM_SEGMENTER_WIDTH as WIDTH

pytestmark = pytest.mark.usefixtures("single_thread")
model = pytest.fixture(scope="module", name="model")(lambda random_segmenter: random_segmenter)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return nst_shapes.write_pair(tmp_path_factory.mktemp("shapes"))


def config(pair, tmp_path, **kw):
    cfg = dict(content_shape=pair[0], style_shape=pair[1], num_points=256, num_iters=4, save_every=2,
               output_dir=str(tmp_path / "out"), width_multiplier=WIDTH, pictures=False, pretrained="none")
    cfg.update(kw)
    return cfg


# ---------------------------------------------------------------- losses vs naive formulas

def test_stats_and_gram_losses_match_naive_formulas():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1, 5, 40))
    b = rng.normal(size=(1, 5, 25)) * 2 + 1
    mask_a = rng.random(40) < 0.5

    def naive_stats(x, y):
        mx, my = x.mean(axis=1), y.mean(axis=1)
        sx = np.sqrt(((x - mx[:, None]) ** 2).mean(axis=1) + 1e-8)
        sy = np.sqrt(((y - my[:, None]) ** 2).mean(axis=1) + 1e-8)
        return np.mean((mx - my) ** 2) + np.mean((sx - sy) ** 2)

    def naive_gram(x):
        c, n = x.shape
        return np.array([[sum(x[i, k] * x[j, k] for k in range(n)) / n for j in range(c)] for i in range(c)])

    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert float(stats_loss(ta, tb)) == pytest.approx(naive_stats(a[0], b[0]), rel=1e-10)
    assert float(stats_loss(ta, tb, torch.from_numpy(mask_a))) == pytest.approx(naive_stats(a[0][:, mask_a], b[0]),
                                                                                 rel=1e-10)
    np.testing.assert_allclose(gram_matrix(ta)[0].numpy(), naive_gram(a[0]), rtol=1e-10)
    expected = np.mean((naive_gram(a[0]) - naive_gram(b[0])) ** 2)
    assert float(gram_loss(ta, tb)) == pytest.approx(expected, rel=1e-10)


def test_stats_loss_gradcheck_and_constant_channel():
    x = torch.randn(1, 3, 7, dtype=torch.double, requires_grad=True)
    y = torch.randn(1, 3, 9, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda t: stats_loss(t, y), (x,))
    assert torch.autograd.gradcheck(lambda t: gram_loss(t, y), (x,))
    # a channel constant over the points (the repeated global feature, layer 5) has a finite gradient
    const = torch.ones(1, 2, 5, requires_grad=True)
    stats_loss(const, torch.rand(1, 2, 5)).backward()
    assert torch.isfinite(const.grad).all()
    mean, std = channel_stats(torch.tensor([[[1.0, 3.0]]]))
    assert float(mean) == 2.0 and float(std) == pytest.approx(1.0)


# ---------------------------------------------------------------- the optimisation

def test_style_loss_falls(model, pair, tmp_path):
    cfg = config(pair, tmp_path, content_weight=0.0, style_weight=1.0, num_iters=15, save_every=0,
                 step_size=0.02, pictures=True)
    result = nst.run_style_transfer(cfg, model=model, progress=False)
    styles = [h["style"] for h in result["losses"]]
    assert styles[-1] < 0.8 * styles[0]
    out = result["out_dir"]
    for name in ("stylization_final.ply", "stylization_final.xyz", "panel.png", "progress.gif", "config.yaml"):
        assert os.path.isfile(os.path.join(out, name)), name
    assert glob.glob(os.path.join(out, "summary", "events.out.tfevents.*"))


def test_part_specific_keeps_fixed_points_exactly_and_in_order(model, pair, tmp_path):
    cfg = config(pair, tmp_path, part_specific=True, mask_class_list=[13], content_part_class=13,
                 style_part_class=47, num_iters=6, step_size=0.05)
    result = nst.run_style_transfer(cfg, model=model, progress=False)
    transfer = result["transfer"]
    content = transfer.content["points"]
    moving = result["moving"]
    assert moving.any() and (~moving).any()
    assert torch.equal(moving, transfer.content_labels == 13)
    final = result["points"]
    assert torch.equal(final[~moving], content[~moving])            # bit-exact, same order
    assert (final[moving] - content[moving]).abs().max() > 1e-3      # the seat did move
    saved = load_point_cloud(os.path.join(result["out_dir"], "stylization_final.ply"))["points"]
    np.testing.assert_array_equal(saved[~moving.numpy()], content[~moving].numpy())
    assert {"content", "style", "score", "total"} <= set(result["losses"][0])


@pytest.mark.parametrize("mode", ["gbp", "hirescam"])
def test_attribution_modes_run_and_log_their_losses(model, pair, tmp_path, mode):
    cfg = config(pair, tmp_path, mode=mode, content_part_class=13, style_part_class=47, num_iters=3)
    result = nst.run_style_transfer(cfg, model=model, progress=False)
    assert all(np.isfinite(v) for h in result["losses"] for v in h.values())
    assert result["losses"][0]["content"] == pytest.approx(0.0, abs=1e-12)   # the start is the content
    if mode == "hirescam":
        assert "attribution" in result["losses"][0]
    assert not torch.equal(result["points"], result["initial_points"])


def test_differentiable_hirescam_equals_attribution_hirescam(model, pair):
    from modules.attribution import hirescam
    from modules.models.pointnet import make_input
    shape = nst.load_shape(pair[0], "chair", 200, np.random.default_rng(0))
    cam, _, _ = nst.hirescam_map(model, shape["points"], "chair", 13, 7)
    ref = hirescam(model, make_input(shape["points"][None], [4]), 7, nst.part_target("chair", 13)).map[0]
    torch.testing.assert_close(cam, ref, rtol=1e-4, atol=1e-6)
    x = shape["points"].clone().requires_grad_(True)
    cam, _, _ = nst.hirescam_map(model, x, "chair", 13, 7, create_graph=True)
    grad, = torch.autograd.grad(cam.square().sum(), x)
    assert grad.abs().sum() > 0


def test_keyboard_interrupt_keeps_a_snapshot(model, pair, tmp_path):
    seen = {}

    def stop(it, transfer, losses):
        if it == 3:
            seen["points"] = transfer.current_points().detach().clone()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nst.run_style_transfer(config(pair, tmp_path, num_iters=10), model=model, callback=stop, progress=False)
    path = tmp_path / "out" / "stylization_interrupted.ply"
    np.testing.assert_allclose(load_point_cloud(path)["points"], seen["points"].numpy(), atol=1e-6)
    assert not [p for p in os.listdir(tmp_path / "out") if p.startswith(".tmp")]


# ---------------------------------------------------------------- bad input

def test_bad_inputs_are_clear_errors(model, pair, tmp_path):
    with pytest.raises(ShapeLabError, match="same file"):
        nst.check_config(config(pair, tmp_path, style_shape=pair[0]))
    with pytest.raises(ShapeLabError, match="layer id 6.*0-5"):
        nst.check_config(config(pair, tmp_path, style_layers=[3, 6]))
    with pytest.raises(ShapeLabError, match="part id 25 does not belong to category 'chair'.*13 \\(seat\\)"):
        nst.check_config(config(pair, tmp_path, part_specific=True, mask_class_list=[25],
                                content_part_class=25, style_part_class=47))
    with pytest.raises(ShapeLabError, match="checkpoint not found: nowhere.pt"):
        weights.load_segmenter("nowhere.pt", WIDTH)
    with pytest.raises(ShapeLabError, match="unknown config key 'style_wieght'"):
        nst.check_config(config(pair, tmp_path, style_wieght=3))
    # the box chair has no arms (15): the error names the part and lists the parts present
    cfg = config(pair, tmp_path, part_specific=True, mask_class_list=[15], content_part_class=15,
                 style_part_class=47)
    with pytest.raises(ShapeLabError, match=r"mask_class_list \[15\] selects no points.*13 \(seat\)"):
        nst.run_style_transfer(cfg, model=model, progress=False)


def test_cli_errors_exit_2(pair, tmp_path, capsys):
    import run_nst
    with pytest.raises(SystemExit) as exc:
        run_nst.main(["--content_shape", pair[0], "--style_shape", pair[0], "--output_dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "same file" in capsys.readouterr().err


# ---------------------------------------------------------------- the seed examples as configs

CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "nst", "[0-9]_*.yaml")))


def test_five_seed_examples_exist():
    assert [os.path.basename(p)[:2] for p in CONFIGS] == ["1_", "2_", "3_", "4_", "5_"]


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p) for p in CONFIGS])
def test_seed_example_configs_run(model, pair, tmp_path, path):
    flags = dict(content_shape=pair[0], style_shape=pair[1], num_iters=2, num_points=128, save_every=0,
                 output_dir=str(tmp_path), width_multiplier=WIDTH, pictures=False, pretrained="none")
    cfg = nst.load_nst_config(path, flags)
    if cfg["sweep"]:   # keep two values of the sweep to stay fast
        cfg["sweep"] = dict(cfg["sweep"], values=cfg["sweep"]["values"][:2])
    results = nst.run_sweep(cfg, model=model, progress=False)
    assert len(results) == (2 if cfg["sweep"] else 1)
    for r in results:
        assert os.path.isfile(os.path.join(r["out_dir"], "stylization_final.ply"))
    if cfg["part_specific"]:
        r = results[0]
        assert torch.equal(r["points"][~r["moving"]], r["initial_points"][~r["moving"]])


def test_cli_flags_and_overrides_win_over_the_file(tmp_path, pair):
    import run_nst
    args = run_nst.parse_args(["-cfg", "configs/nst/3_part_masking.yaml", "--num_iters", "7", "--randn_noise",
                               "--part_id_s", "48", "style_layers=[2]"])
    flags = {k: getattr(args, k) for k in nst.NST_DEFAULTS if k != "sweep"}
    flags["init"] = "noise"
    cfg = nst.load_nst_config(args.cfg, dict(flags, content_shape=pair[0], style_shape=pair[1]), args.overrides)
    assert cfg["num_iters"] == 7 and cfg["style_part_class"] == 48 and cfg["style_layers"] == [2]
    assert cfg["mask_class_list"] == [13] and cfg["init"] == "noise"


def test_pretrained_weights_load_through_the_config(tmp_path):
    torch.manual_seed(3)
    from modules.models.pointnet import PointNetPartSeg
    ref = PointNetPartSeg(width_multiplier=WIDTH).eval()
    path = tmp_path / "seg.pt"
    torch.save({"model": {"module." + k: v for k, v in ref.state_dict().items()}}, path)
    loaded = weights.load_segmenter(str(path), WIDTH)
    x = torch.rand(64, 3)
    torch.testing.assert_close(nst.run_segmenter(loaded, x, "chair")[1], nst.run_segmenter(ref, x, "chair")[1])
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training


# ---------------------------------------------------------------- the seed examples do what they are for

def _example(path, model, pair, tmp_path, values=2, **kw):
    flags = dict(content_shape=pair[0], style_shape=pair[1], num_iters=6, num_points=128, save_every=0,
                 output_dir=str(tmp_path / "ex"), width_multiplier=WIDTH, pictures=True, pretrained="none",
                 device="cpu", step_size=0.05, **kw)
    cfg = nst.load_nst_config(path, flags)
    cfg["sweep"] = dict(cfg["sweep"], values=cfg["sweep"]["values"][:values])
    return cfg, nst.run_sweep(cfg, model=model, progress=False, log=lambda *a: None)


def test_progressive_layers_reconstructs_the_content_from_noise(model, pair, tmp_path):
    cfg, results = _example("configs/nst/2_progressive_layers.yaml", model, pair, tmp_path)
    assert cfg["init"] == "noise" and cfg["style_weight"] == 0
    for r in results:
        content = [h["content"] for h in r["losses"]]
        assert content[0] > 0.01 and content[-1] < content[0]          # something to do, and it is done
        assert r["stats"]["after"]["chamfer_to_content"] < r["stats"]["before"]["chamfer_to_content"]
    assert not torch.equal(results[0]["points"], results[1]["points"])  # the layer sets give different results
    assert os.path.isfile(os.path.join(os.path.dirname(results[0]["out_dir"]), "sweep.png"))


def test_style_only_sweep_varies_something_that_matters(model, pair, tmp_path):
    cfg, results = _example("configs/nst/1_style_only.yaml", model, pair, tmp_path)
    assert cfg["content_weight"] == 0 and cfg["sweep"]["key"] == "style_layers"
    assert not torch.equal(results[0]["points"], results[1]["points"])
    for r in results:
        assert r["losses"][-1]["style"] < r["losses"][0]["style"]


def test_statistics_are_chamfer_distances_of_the_right_clouds(model, pair, tmp_path):
    cfg = config(pair, tmp_path, part_specific=True, mask_class_list=[13], content_part_class=13,
                 style_part_class=47, num_iters=3, step_size=0.05)
    r = nst.run_style_transfer(cfg, model=model, progress=False, log=lambda *a: None)
    t = r["transfer"]

    def naive(a, b):
        d = ((a[:, None] - b[None]) ** 2).sum(-1)
        return float(d.min(1)[0].mean() + d.min(0)[0].mean())

    style_part = t.style["points"][t.style_part]
    assert r["stats"]["before"]["chamfer_to_content"] == 0.0
    assert r["stats"]["after"]["chamfer_to_style"] == pytest.approx(naive(r["points"][r["moving"]], style_part), rel=1e-5)
    assert r["stats"]["after"]["chamfer_to_content"] == pytest.approx(naive(r["points"], t.content["points"]), rel=1e-5)
    saved = nst.read_yaml(os.path.join(r["out_dir"], "metrics.yaml"))
    assert saved["after"] == pytest.approx(r["stats"]["after"])


def test_outputs_are_confined_numbered_and_resumable(model, pair, tmp_path):
    quiet = []
    cfg = config(pair, tmp_path, exp_suffix="run", num_iters=2)
    first = nst.run_style_transfer(cfg, model=model, progress=False, log=quiet.append)["out_dir"]
    second = nst.run_style_transfer(cfg, model=model, progress=False, log=quiet.append)["out_dir"]
    assert first == str(tmp_path / "out" / "run") and second == first + "_1"
    assert "not overwritten" in quiet[-2] and "writing to " + second in quiet[-2]
    for bad in ("../x", "/tmp/x", "a/../../b"):
        with pytest.raises(ShapeLabError, match="exp_suffix"):
            nst.check_config(config(pair, tmp_path, exp_suffix=bad))
    # an interrupted run of the same config is resumed in place, not renumbered
    def stop(it, transfer, losses):
        if it == 2:
            raise KeyboardInterrupt
    cfg = config(pair, tmp_path, exp_suffix="cut", num_iters=4)
    with pytest.raises(KeyboardInterrupt):
        nst.run_style_transfer(cfg, model=model, callback=stop, progress=False, log=quiet.append)
    again = nst.run_style_transfer(cfg, model=model, progress=False, log=quiet.append)
    assert again["out_dir"] == str(tmp_path / "out" / "cut") and "resuming" in quiet[-2]


def test_run_nst_without_arguments_runs_nothing(tmp_path, capsys, monkeypatch):
    import run_nst
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        run_nst.main([])
    assert exc.value.code == 2 and "-cfg" in capsys.readouterr().err and not os.listdir(tmp_path)
