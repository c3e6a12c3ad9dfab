"""The single-view reconstruction family (modules/families/svr, fit_data.py, train_model.py, eval_model.py):
every decoder type trains through the engine on a tiny generated R2N2 / ONet set and its loss falls; fitting
converges; the F1@tau of evaluation against a naive reference; the generator's files; bad input (another
decoder's checkpoint, --n_points 0, a missing view, images of another size or channel count)."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import eval_model
import generate
import train_model
from modules.config import load_config
from modules.data import r2n2
from modules.data.synth import SynthConfig, generate as synth_generate
from modules.engine.generation import load_trained_model
from modules.engine.trainer import train
from modules.families.svr.evaluation import evaluate
from modules.families.svr.fitting import fit
from modules.families.svr.training import SingleViewDataset
from modules.geometry import ico_sphere, voxelize_mesh
from modules.metrics import F1_THRESHOLDS
from modules.registry import MODELS, TASKS
from modules.utils import ROOT, ShapeLabError, seed_everything

pytestmark = pytest.mark.usefixtures("single_thread")

# tiny sizes through config options (the defaults are the full-size models)
TINY = {
    "vox": ["model.channels=16"],
    "point": ["model.n_points=128", "model.hidden=[64,64]"],
    "mesh": ["model.level=2", "model.hidden=[64,64]"],
    "implicit": ["model.hidden_dim=32", "model.n_blocks=2", "data.n_queries=256"],
    "parametric": ["model.n_patches=2", "model.n_points=128"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """4 synthetic chairs in the R2N2 and ONet layouts, 2 views each; every split lists every chair."""
    out = tmp_path_factory.mktemp("svrdata")
    cfg = SynthConfig(out=str(out), views=2, n_surface=4000, n_uniform=4000, resolution=48, formats=("onet", "r2n2"))
    summary = synth_generate(cfg, ["chair"], 4, jobs=1, progress=False)
    assert summary["written"] == 4 and not summary["failed"]
    ids = sorted(os.listdir(out / "onet" / "03001627"))
    ids = [i for i in ids if os.path.isdir(out / "onet" / "03001627" / i)]
    r2n2.write_split(str(out / "r2n2" / "split.json"),
                     {s: [("03001627", i, [0, 1]) for i in ids] for s in ("train", "val", "test")})
    for s in ("train", "val", "test"):
        (out / "onet" / "03001627" / f"{s}.lst").write_text("\n".join(ids) + "\n")
    return out


def tiny_config(data, t, steps=25, extra=()):
    root = data / ("onet" if t == "implicit" else "r2n2")
    fmt = "onet" if t == "implicit" else "r2n2"
    return load_config(os.path.join(ROOT, "configs", "svr", f"{t}.yaml"), [
        f"data.root={root}", f"data.format={fmt}", "data.image_size=32", "data.n_points=128",
        "training.batch_size=2", f"training.max_steps={steps}", f"training.val_every={steps}", "training.lr=1e-3",
        "training.progress=false", "training.log_every=5", *TINY[t], *extra])


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """{type: (checkpoint path, config, loss before, loss after)} after 25 engine steps on the 4 chairs."""
    out, exp_root = {}, tmp_path_factory.mktemp("svrexp")
    for t in TINY:
        cfg = tiny_config(data, t)
        task = TASKS.build(cfg["task"])
        seed_everything(0)
        before_model = MODELS.build(cfg["model"])
        ds = SingleViewDataset(cfg["data"]["format"], cfg["data"]["root"], "train", ["chair"],
                               cfg["data"]["targets"], 32, 128, cfg["data"]["n_queries"], train=False)
        batch = ds.collate([ds[i] for i in range(len(ds))])
        torch.manual_seed(1)
        with torch.no_grad():
            before = float(task.loss(before_model, batch)[0])
        exp = exp_root / t
        train(cfg, str(exp))
        model, _ = load_trained_model(str(exp / "checkpoints" / "latest.pt"))
        model.train()           # batch statistics, as the loss before
        torch.manual_seed(1)
        with torch.no_grad():
            after = float(task.loss(model, batch)[0])
        out[t] = (str(exp / "checkpoints" / "latest.pt"), cfg, before, after)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("t", list(TINY))
def test_each_decoder_trains_through_the_engine_and_its_loss_falls(trained, t):
    path, cfg, before, after = trained[t]
    assert os.path.isfile(path)
    assert after < 0.8 * before, (t, before, after)


# ---------------------------------------------------------------- fitting

def sphere_target(radius=0.35, level=3):
    s = ico_sphere(level)
    v, f = (s.verts_packed() * radius).numpy(), s.faces_packed().numpy()
    return {"voxels": voxelize_mesh(v, f, 32), "vertices": v, "faces": f, "name": "sphere"}


def test_voxel_fit_converges_to_iou_above_095():
    out = fit("vox", sphere_target(), None, lr=0.05, max_iter=150, progress=False)
    assert out["metrics"]["iou"] >= 0.95
    assert out["history"][-1]["loss"] < 0.2 * out["history"][0]["loss"]


def test_point_fit_converges_to_f1_above_95():
    out = fit("point", sphere_target(), None, lr=0.02, max_iter=250, n_points=400, progress=False)
    assert out["metrics"]["f1@0.05"] >= 95.0


@pytest.mark.slow
def test_mesh_fit_converges_to_f1_above_95():
    out = fit("mesh", sphere_target(), None, lr=0.02, max_iter=150, n_points=1000, progress=False)
    assert out["metrics"]["f1@0.05"] >= 95.0


def test_fit_data_writes_the_fitted_object_gif_and_curve(tmp_path, data):
    out = __import__("fit_data").main(["--type", "vox", "--save_dir", str(tmp_path), "--save_predictions",
                                       "--save_visualizations", "--max_iter", "3", "--lr", "0.05", "--gif_frames", "3",
                                       "--data_root", str(data / "r2n2"), "--no_progress"])
    for name in ("fit_vox.binvox", "fit_vox.npy", "fit_vox.gif", "fit_vox.png", "fit_vox_loss.png",
                 "fit_vox_metrics.yaml", "fit_vox/summary", "fit_vox/checkpoints/latest.pt"):
        assert os.path.exists(tmp_path / name), name
    assert out["metrics"]["iterations"] == 3
    with Image.open(tmp_path / "fit_vox.gif") as gif:
        assert gif.n_frames == 3


# ---------------------------------------------------------------- F1 against a naive reference

def naive_f1(pred, gt, tau):
    """The seed's compute_sampling_metrics, written out with loops over points."""
    d_pred = np.array([min(np.linalg.norm(p - g) for g in gt) for p in pred])
    d_gt = np.array([min(np.linalg.norm(g - p) for p in pred) for g in gt])
    precision = 100.0 * np.mean(d_pred < tau)
    recall = 100.0 * np.mean(d_gt < tau)
    return precision, recall, 2 * precision * recall / (precision + recall + 1e-8)


class FixedPoints(torch.nn.Module):
    """A stand-in 'point' model: always predicts the same cloud (tests evaluate() itself)."""
    type = "point"

    def __init__(self, points):
        super().__init__()
        self.register_buffer("points", torch.as_tensor(points, dtype=torch.float32))

    def forward(self, images):
        return self.points[None].expand(len(images), -1, -1)


def test_evaluate_f1_at_every_tau_matches_the_naive_reference(data, tmp_path, monkeypatch):
    import modules.families.svr.generation as gen
    monkeypatch.setattr(gen, "SingleViewModel", FixedPoints)
    ds = SingleViewDataset("r2n2", str(data / "r2n2"), "test", ["chair"], ["pointcloud"], 32, 60)
    gt0 = ds[0]["pointcloud"].double().numpy()
    pred = gt0[:50] + np.random.default_rng(0).normal(0, 0.02, (50, 3))
    rows, summary = evaluate(FixedPoints(pred), ds, str(tmp_path), n_points=60, vis_freq=0, progress=False)
    for row, i in zip(rows, range(len(ds))):
        gt = ds[i]["pointcloud"].double().numpy()
        p32 = pred.astype(np.float32).astype(np.float64)
        for tau in F1_THRESHOLDS:
            precision, recall, f1 = naive_f1(p32, gt, tau)
            assert row[f"precision@{tau:g}"] == pytest.approx(precision, abs=1e-6)
            assert row[f"recall@{tau:g}"] == pytest.approx(recall, abs=1e-6)
            assert row[f"f1@{tau:g}"] == pytest.approx(f1, abs=1e-6)
    assert summary["mean"]["f1@0.05"] == pytest.approx(np.mean([r["f1@0.05"] for r in rows]))
    assert 0 < rows[0]["f1@0.01"] < rows[0]["f1@0.05"]
    for name in ("evaluation_results.csv", "evaluation_summary.md", "evaluation_summary.yaml", "eval_point.png"):
        assert os.path.isfile(tmp_path / name)


# ---------------------------------------------------------------- generator, evaluation script, bad input

@pytest.mark.slow
@pytest.mark.parametrize("t,files", [
    ("point", ["input.png", "points.ply", "reconstruction.png"]),
    ("vox", ["input.png", "prediction.binvox", "prediction_probs.npy", "reconstruction.png"]),
    ("mesh", ["input.png", "surface_reconstruction.off", "prediction.obj"]),
    ("parametric", ["input.png", "points.ply", "surface_reconstruction.off", "prediction.obj"]),
])
def test_generate_py_writes_the_expected_files(trained, tmp_path, t, files):
    path = trained[t][0]
    generate.main(["-ckpt_name", path, "--exp_root", str(tmp_path), "-max_objects", "2"])
    out = tmp_path / "latest" / f"evaluation_latest_@{t}"
    objs = sorted((out / "generation" / "03001627").iterdir())
    assert len(objs) == 2
    for name in files:
        assert (objs[0] / name).is_file(), name
    assert (objs[0] / "turntable.gif").is_file()
    assert (out / "generation_config.yaml").is_file()


@pytest.mark.slow
def test_eval_model_runs_and_refuses_another_decoders_checkpoint(trained, tmp_path, capsys):
    path = trained["point"][0]
    rows, summary = eval_model.main(["--type", "point", "--checkpoint_path", path, "--output_dir", str(tmp_path),
                                     "--vis_freq", "1", "--gifs", "1", "--no_progress"])
    assert len(rows) == 4 and 0 <= summary["mean"]["f1@0.05"] <= 100
    assert (tmp_path / "point" / "vis").is_dir() and (tmp_path / "point" / "eval_point.png").is_file()
    with pytest.raises(SystemExit) as err:
        eval_model.main(["--type", "vox", "--checkpoint_path", path, "--output_dir", str(tmp_path / "x")])
    assert err.value.code == 2
    assert "svr_point" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_n_points_zero_is_refused_before_anything_is_written(tmp_path, capsys):
    for main, argv in ((train_model.main, ["--type", "point", "--n_points", "0", "--output_dir", str(tmp_path)]),
                       (eval_model.main, ["--type", "point", "--n_points", "0", "--output_dir", str(tmp_path)])):
        with pytest.raises(SystemExit) as err:
            main(argv)
        assert err.value.code == 2
        line = capsys.readouterr().err.strip()
        assert "--n_points" in line and "'0'" in line and len(line.splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_a_missing_view_is_one_error_before_training_writes_anything(data, tmp_path, capsys):
    root = tmp_path / "r2n2"
    import shutil
    shutil.copytree(data / "r2n2", root)
    split = json.loads((root / "split.json").read_text())
    synset, ids = next(iter(split["train"].items()))
    os.remove(r2n2.image_path(str(root), synset, sorted(ids)[0], 1))
    with pytest.raises(SystemExit) as err:
        train_model.main(["--type", "point", "--output_dir", str(tmp_path / "out"), "--data_root", str(root),
                          "--max_iter", "1"])
    assert err.value.code == 2
    msg = capsys.readouterr().err.strip()
    assert "missing" in msg and "01.png" in msg and len(msg.splitlines()) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.pt"))


def test_images_of_another_size_or_channel_count_are_converted(data, tmp_path):
    import shutil
    root = tmp_path / "r2n2"
    shutil.copytree(data / "r2n2", root)
    ds = SingleViewDataset("r2n2", str(root), "test", ["chair"], ["pointcloud"], 64, 32)
    synset, sid = ds.object_key(0)
    path = r2n2.image_path(str(root), synset, sid, 0)
    with Image.open(path) as im:                       # a 200x150 grey+alpha image in place of the render
        im.convert("LA").resize((200, 150)).save(path)
    img = ds[0]["image"]
    assert img.shape == (3, 64, 64) and 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    model = MODELS.build({**MODELS.defaults("svr_point"), "name": "svr_point", "n_points": 16, "hidden": [8]})
    with pytest.raises(ShapeLabError, match=r"expected float images \(B, 3"):
        model(torch.rand(1, 1, 64, 64))                # the model itself refuses a 1-channel tensor
