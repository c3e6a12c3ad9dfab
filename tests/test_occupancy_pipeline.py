"""Occupancy data -> training -> generation on tiny hand-made datasets in the real ONet and IF-Net layouts."""
import os

import numpy as np
import pytest
import torch
import yaml

from modules.data import ifnet as ifnet_io
from modules.data import onet as onet_io
from modules.data.occupancy_datasets import OccupancyDataset
from modules.engine.checkpoint import load_checkpoint
from modules.utils import ShapeLabError

SYNSET = "03001627"


def _ellipsoid(rng):
    centre = rng.uniform(-0.1, 0.1, 3)
    radii = rng.uniform(0.15, 0.35, 3)
    return centre, radii


def _inside(points, centre, radii):
    return (((points - centre) / radii) ** 2).sum(-1) <= 1.0


def _surface(rng, centre, radii, n):
    d = rng.standard_normal((n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return (centre + d * radii).astype(np.float32)


def make_tiny_data(root, n_shapes=8, n_points=4000, seed=0):
    """Ellipsoids written in both layouts: root/onet and root/ifnet (splits: 6 train, 1 val, 1 test)."""
    rng = np.random.default_rng(seed)
    ids = [f"shape_{i:02d}" for i in range(n_shapes)]
    splits = {"train": ids[:-2], "val": ids[-2:-1], "test": ids[-1:]}
    for sid in ids:
        c, r = _ellipsoid(rng)
        surface = _surface(rng, c, r, n_points)
        o = os.path.join(root, "onet", SYNSET, sid)
        os.makedirs(o, exist_ok=True)
        onet_io.write_pointcloud_npz(os.path.join(o, "pointcloud.npz"), surface, np.zeros_like(surface))
        uniform = rng.uniform(-0.55, 0.55, (n_points, 3)).astype(np.float32)
        onet_io.write_points_npz(os.path.join(o, "points.npz"), uniform, _inside(uniform, c, r))
        f = os.path.join(root, "ifnet", SYNSET, sid)
        os.makedirs(f, exist_ok=True)
        ifnet_io.write_surface_samples(os.path.join(f, "surface_30000_samples.npy"), surface)
        for sigma in (0.1, 0.01):
            pts = (_surface(rng, c, r, n_points) + sigma * rng.standard_normal((n_points, 3))).astype(np.float32)
            ifnet_io.write_boundary_samples(os.path.join(f, ifnet_io.boundary_name(sigma)), pts, _inside(pts, c, r))
    for split, names in splits.items():
        onet_io.write_lst(os.path.join(root, "onet", SYNSET, f"{split}.lst"), names)
    ifnet_io.write_split_npz(os.path.join(root, "ifnet", "split.npz"),
                             {k: [f"{SYNSET}/{n}" for n in v] for k, v in splits.items()})
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return make_tiny_data(str(tmp_path_factory.mktemp("occdata")))


def test_ifnet_layout_queries_half_and_half(tiny_root):
    ds = OccupancyDataset("ifnet", os.path.join(tiny_root, "ifnet"), "train", pc_samples=100, npoints_decoder=200)
    assert len(ds) == 6
    np.random.seed(0)
    s = ds[0]
    assert s["inputs"].shape == (100, 3) and s["points"].shape == (200, 3) and s["occ"].shape == (200,)
    assert len(np.unique(s["inputs"].numpy(), axis=0)) == 100          # inputs drawn without replacement
    # the first half comes from sigma 0.1, the second from sigma 0.01: much closer to the surface
    surface = ds._arrays(0)["surface"]
    from scipy.spatial import cKDTree
    d, _ = cKDTree(surface).query(s["points"].numpy())
    assert d[:100].mean() > 3 * d[100:].mean()


def test_onet_layout_unpacks_occupancies_and_adds_iou_points(tiny_root):
    ds = OccupancyDataset("onet", os.path.join(tiny_root, "onet"), "val", pc_samples=100, npoints_decoder=64,
                          noise=0.005, iou_points=500)
    s = ds[0]
    assert s["points_iou"].shape == (500, 3) and s["occ_iou"].shape == (500,)
    assert 0 < s["occ_iou"].mean() < 1
    pts, occ = onet_io.read_points_npz(os.path.join(ds.object_dir(0), "points.npz"))
    assert occ.dtype == bool and len(occ) == len(pts)


def test_dataset_errors(tiny_root, tmp_path):
    with pytest.raises(ShapeLabError, match="not found"):
        OccupancyDataset("ifnet", str(tmp_path / "missing"), "train")
    ds = OccupancyDataset("ifnet", os.path.join(tiny_root, "ifnet"), "train", pc_samples=5000)
    with pytest.raises(ShapeLabError, match="fewer than data.pc_samples"):
        ds[0]


def _tiny_airnet_cfg(root, fmt="ifnet"):
    from tests.test_occupancy_models import TINY_AIRNET
    return {"model": {"name": "airnet", **TINY_AIRNET},
            "data": {"name": "occupancy", "format": fmt, "root": os.path.join(root, fmt), "pc_samples": 64,
                     "npoints_decoder": 256},
            "task": {"name": "occupancy"}}




def test_short_training_loss_falls(tiny_root, single_thread):
    from modules.config import resolve
    from modules.engine.loading import make_loader
    from modules.registry import DATASETS, MODELS, TASKS
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = _tiny_airnet_cfg(tiny_root)
    cfg["data"]["npoints_decoder"] = 128
    cfg = resolve(cfg)
    model, task = MODELS.build(cfg["model"]), TASKS.build(cfg["task"])
    loader, _ = make_loader(DATASETS.build(cfg["data"], "train"), 6, seed=0)
    batch = next(iter(loader))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, _ = task.loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3])


def test_train_generate_pipeline(tiny_root, tmp_path, monkeypatch, single_thread):
    """train.py-style run through the engine, then generate.py from the experiment and from the file."""
    from modules.config import resolve
    from modules.engine.trainer import train
    cfg = _tiny_airnet_cfg(tiny_root)
    cfg["training"] = {"batch_size": 3, "max_steps": 4, "progress": False, "lr": 1e-3}
    cfg = resolve(cfg)
    exp = tmp_path / "experiments" / "tiny"
    train(cfg, str(exp))
    assert (exp / "checkpoints" / "latest.pt").exists()
    monkeypatch.chdir(tmp_path)
    import generate
    generate.main(["-exp_name", "tiny", "-method", "mise", "-mise_res", "16", "-mise_steps", "1",
                   "-batch_points", "5000"])
    evals = [d for d in os.listdir(exp) if d.startswith("evaluation_")]
    assert len(evals) == 1 and evals[0].endswith("_@16x1")
    obj = exp / evals[0] / "generation" / SYNSET / "shape_07" / "surface_reconstruction.off"
    assert obj.exists() and (obj.parent / "reconstruction.png").exists() and (obj.parent / "input_points.ply").exists()
    info = yaml.safe_load(open(exp / evals[0] / "generation_config.yaml"))
    assert info["threshold"] == 0.5 and info["model"] == "airnet" and info["generated"] == 1
    # from an exported fp16 file without experiment folder, dense marching cubes, another threshold
    from modules.engine.checkpoint import export_pretrained
    export_pretrained(str(exp / "checkpoints" / "latest.pt"), str(tmp_path / "tiny_pre.pt"))
    generate.main(["-ckpt_name", str(tmp_path / "tiny_pre.pt"), "-method", "mcubes", "-mcubes_res", "12",
                   "-threshold", "0.3", "--no_pictures"])
    out = tmp_path / "experiments" / "tiny_pre" / "evaluation_tiny_pre_@12"
    assert (out / "generation" / SYNSET / "shape_07" / "surface_reconstruction.off").exists()
    assert yaml.safe_load(open(out / "generation_config.yaml"))["threshold"] == 0.3
    # a partial ONet folder: pointcloud.npz only (no points.npz, no .lst files): every shape is taken
    import shutil
    part = tmp_path / "partial" / SYNSET / "mine"
    os.makedirs(part)
    shutil.copy(os.path.join(tiny_root, "onet", SYNSET, "shape_07", "pointcloud.npz"), part / "pointcloud.npz")
    generate.main(["-ckpt_name", str(tmp_path / "tiny_pre.pt"), "-exp_name", "partial", "-data_root",
                   str(tmp_path / "partial"), "-data_type", "onet", "-method", "mcubes", "-mcubes_res", "12",
                   "--no_pictures"])
    out = tmp_path / "experiments" / "partial" / "evaluation_tiny_pre_@12"
    assert (out / "generation" / SYNSET / "mine" / "surface_reconstruction.off").exists()
    # the checkpoint knows the categories it was trained on; other categories are named as unseen
    assert load_checkpoint(str(tmp_path / "tiny_pre.pt"))["train_categories"] == [SYNSET]
    other = tmp_path / "other" / "99999998" / "mine"
    os.makedirs(other)
    shutil.copy(part / "pointcloud.npz", other / "pointcloud.npz")
    generate.main(["-ckpt_name", str(tmp_path / "tiny_pre.pt"), "-exp_name", "other", "-data_root",
                   str(tmp_path / "other"), "-data_type", "onet", "-method", "mcubes", "-mcubes_res", "12",
                   "--no_pictures"])
    info = yaml.safe_load(open(tmp_path / "experiments" / "other" / "evaluation_tiny_pre_@12" / "generation_config.yaml"))
    assert info["categories_not_in_training"] == ["99999998"]


def test_generation_inputs_match_the_training_dataset(tiny_root):
    """generate.py reads only the input clouds, drawing exactly the points OccupancyDataset draws."""
    from modules.families.occupancy.generation import InputClouds
    for fmt in ("onet", "ifnet"):
        root = os.path.join(tiny_root, fmt)
        full = OccupancyDataset(fmt, root, "train", pc_samples=50, noise=0.01)
        light = InputClouds(fmt, root, "train", pc_samples=50, noise=0.01)
        assert light.items == full.items and light.note is None
        np.testing.assert_array_equal(light.input_points(2, np.random.RandomState(5)),
                                      full.input_points(2, np.random.RandomState(5)))


def test_generate_errors(tiny_root, tmp_path, monkeypatch):
    import generate
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        generate.main(["-exp_name", "nothing_here"])
    assert exc.value.code == 2
    # a checkpoint of another model family
    from modules.engine.checkpoint import save_checkpoint
    bad = tmp_path / "pointnet.pt"
    save_checkpoint(str(bad), {"model": {}, "model_name": "pointnet_seg",
                               "config": {"model": {"name": "pointnet_seg"}, "task": {"name": "part_segmentation"}}})
    with pytest.raises(SystemExit) as exc:
        generate.main(["-ckpt_name", str(bad)])
    assert exc.value.code == 2
    from modules.engine.generation import checkpoint_config, generator_for
    with pytest.raises(ShapeLabError, match="task 'part_segmentation' has no generator"):
        generator_for(checkpoint_config(str(bad))[1], str(bad))
    # an empty split
    ds = OccupancyDataset("ifnet", os.path.join(tiny_root, "ifnet"), "test", categories=["02691156"])
    from modules.families.occupancy.generation import generate as run
    with pytest.raises(ShapeLabError, match="no objects"):
        run(None, ds, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_max_per_class_keeps_the_first_shapes_of_every_class(tmp_path):
    names = [f"{synset}/s{i}" for synset in ("02691156", "03001627") for i in range(4)]
    ifnet_io.write_split_npz(str(tmp_path / "split.npz"), {"train": [], "val": [], "test": names[::-1]})
    ds = OccupancyDataset("ifnet", str(tmp_path), "test", max_per_class=2)
    assert ds.items == [("03001627", "s3"), ("03001627", "s2"), ("02691156", "s3"), ("02691156", "s2")]
    assert len(OccupancyDataset("ifnet", str(tmp_path), "test", max_per_class=2, max_items=3)) == 3
    assert len(OccupancyDataset("ifnet", str(tmp_path), "test")) == 8


def test_report_pictures_carry_their_object_and_iou(tmp_path):
    """The quickstart report's pictures say which object they show and its IoU (known only after evaluation)."""
    from PIL import Image
    from modules.families.occupancy.report import evaluation_section
    obj = tmp_path / "generation" / "03001627" / "synth_00007"
    obj.mkdir(parents=True)
    Image.new("RGB", (300, 100), "white").save(obj / "reconstruction.png")
    (tmp_path / "evaluation_results.md").write_text("| class | iou |\n|---|---|\n| chair | 0.8125 |\n")
    (tmp_path / "evaluation_results.csv").write_text("class,id,iou\n03001627,synth_00007,0.8125\n")
    lines = evaluation_section(str(tmp_path), "Evaluation")
    captioned = tmp_path / "report_pictures" / "03001627_synth_00007.png"
    assert any("03001627/synth_00007, IoU 0.812" in line and str(captioned) in line for line in lines)
    picture = np.asarray(Image.open(captioned).convert("L"))
    assert picture.shape[1] == 300 and picture.shape[0] > 100
    assert picture[: picture.shape[0] - 100].min() < 128       # dark caption text above the original picture
