"""PointNet segmenter/classifier: checkpoint layout, features, normalisation, datasets over
hand-made ShapeNet-Part files, the IoU rule and a short training run whose loss falls."""
import json
import os

import numpy as np
import pytest
import torch

from modules.data import categories as cats
from modules.data.pointcloud_datasets import ShapeNetPartDataset
from modules.families.pointnet.evaluation import evaluate_classification, evaluate_segmentation
from modules.engine.checkpoint import load_weights
from modules.families.pointnet.training import PartSegmentationTask, predict_parts
from modules.geometry.transforms import normalize_unit_sphere
from modules.models.layers import count_parameters
from modules.models.pointnet import PointNetCls, PointNetPartSeg, feature_transform_regularizer, make_input
from modules.utils import ShapeLabError


# ----------------------------------------------------------------------------- hand-made data

def _box(rng, n, lo, hi):
    return rng.uniform(lo, hi, size=(n, 3))


def make_shape(category, rng, n=300):
    """A crude part-labelled shape (points, local labels 1..k) of `category`: table or mug."""
    if category == "table":
        s = rng.uniform(0.8, 1.2)
        top = _box(rng, n // 2, [-s, 0.45, -0.6], [s, 0.5, 0.6])
        legs = np.concatenate([_box(rng, n // 12, [x - 0.05, -0.5, z - 0.05], [x + 0.05, 0.45, z + 0.05])
                               for x in (-s + 0.1, s - 0.1) for z in (-0.5, 0.5)])
        support = _box(rng, n - len(top) - len(legs), [-s + 0.1, -0.1, -0.05], [s - 0.1, 0.0, 0.05])
        return np.concatenate([top, legs, support]), np.repeat([1, 2, 3], [len(top), len(legs), len(support)])
    if category == "mug":
        k = n * 3 // 4
        a, y = rng.uniform(0, 2 * np.pi, k), rng.uniform(-0.5, 0.5, k)
        body = np.stack([0.4 * np.cos(a), y, 0.4 * np.sin(a)], 1)
        b = rng.uniform(-np.pi / 2, np.pi / 2, n - k)
        handle = np.stack([0.4 + 0.25 * np.cos(b), 0.25 * np.sin(b), rng.uniform(-0.03, 0.03, n - k)], 1)
        return np.concatenate([handle, body]), np.repeat([1, 2], [n - k, k])
    raise ValueError(category)


def write_tiny_shapenet_part(root, per_split=None, n=300, seed=0, categories=("table", "mug")):
    """Write real-format ShapeNet-Part files (np.savetxt .pts/.seg, split JSONs, category file)."""
    per_split = per_split or {"train": 6, "val": 2, "test": 2}
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "train_test_split"), exist_ok=True)
    with open(os.path.join(root, "synsetoffset2category.txt"), "w") as f:
        for name in categories:
            f.write(f"{name.capitalize()}\t{cats.SYNSETS[name]}\n")
    count = 0
    for split, k in per_split.items():
        entries = []
        for name in categories:
            syn = cats.SYNSETS[name]
            for _ in range(k):
                sid = f"shape{count:04d}"
                count += 1
                pts, lab = make_shape(name, rng, n)
                os.makedirs(os.path.join(root, syn, "points"), exist_ok=True)
                os.makedirs(os.path.join(root, syn, "points_label"), exist_ok=True)
                np.savetxt(os.path.join(root, syn, "points", sid + ".pts"), pts, fmt="%.5f")
                np.savetxt(os.path.join(root, syn, "points_label", sid + ".seg"), lab, fmt="%d")
                entries.append(f"shape_data/{syn}/{sid}")
        with open(os.path.join(root, "train_test_split", f"shuffled_{split}_file_list.json"), "w") as f:
            json.dump(entries, f)
    return root


# ----------------------------------------------------------------------------- model layout

def pvcnn_state_dict_shapes():
    """Parameter/buffer names and shapes of PVCNN's ShapeNet PointNet, written out by hand."""
    shapes = {}

    def shared_mlp(prefix, cin, cout):
        shapes[f"{prefix}.layers.0.weight"] = (cout, cin, 1)
        shapes[f"{prefix}.layers.0.bias"] = (cout,)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.layers.1.{name}"] = (cout,)
        shapes[f"{prefix}.layers.1.num_batches_tracked"] = ()

    chans = [3, 64, 128, 128, 512, 2048]
    for i in range(5):
        shared_mlp(f"point_features.{i}", chans[i], chans[i + 1])
    shared_mlp("classifier.0", 4944, 256)
    shared_mlp("classifier.2", 256, 256)
    shared_mlp("classifier.4", 256, 128)
    shapes["classifier.5.weight"] = (50, 128, 1)
    shapes["classifier.5.bias"] = (50,)
    return shapes


def test_pvcnn_checkpoint_loads_strict(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in pvcnn_state_dict_shapes().items():
        state["module." + k] = (torch.tensor(7) if k.endswith("num_batches_tracked")
                                else torch.randn(shape, generator=g))
    path = tmp_path / "shapenet.pointnet.pth.tar"
    torch.save({"epoch": 199, "model": state, "optimizer": {}}, path)
    model = load_weights(PointNetPartSeg(), str(path))
    loaded = model.state_dict()
    assert set(loaded) == {k[len("module."):] for k in state}
    for k, v in state.items():
        assert torch.equal(loaded[k[len("module."):]], v)
    # a plain state dict without the prefix loads too; a missing key is a clear error
    load_weights(PointNetPartSeg(), {k[7:]: v for k, v in state.items()})
    del state["module.classifier.5.bias"]
    with pytest.raises(ShapeLabError, match="does not match"):
        load_weights(PointNetPartSeg(), state)


def test_parameter_count_matches_pvcnn_layout():
    expected = sum(int(np.prod(s)) for k, s in pvcnn_state_dict_shapes().items()
                   if not any(b in k for b in ("running_", "num_batches")))
    assert count_parameters(PointNetPartSeg()) == expected == 2_519_858


def test_feature_shapes_and_graph():
    model = PointNetPartSeg().eval()
    x = make_input(torch.randn(2, 64, 3), torch.tensor([4, 15]))
    x.requires_grad_(True)
    scores = model(x)
    assert scores.shape == (2, 50, 64)
    chans = [v.shape[1] for v in model.features.values()]
    assert list(model.features) == [f"feature_{i}" for i in range(6)]
    assert chans == [64, 128, 128, 512, 2048, 2048]
    f5 = model.features["feature_5"]
    assert torch.equal(f5, model.features["feature_4"].max(dim=2, keepdim=True).values.expand_as(f5))
    model.features["feature_3"].sum().backward()          # features are in the graph
    assert x.grad is not None and x.grad[:, :3].abs().sum() > 0
    assert not any(getattr(m, "inplace", False) for m in model.modules())


def test_make_input_and_normalisation():
    pts = torch.randn(3, 50, 3) * 4 + 2
    n = normalize_unit_sphere(pts)
    assert torch.allclose(n.mean(1), torch.zeros(3, 3), atol=1e-5)
    assert torch.allclose(n.norm(dim=2).max(1).values, torch.ones(3))
    assert np.allclose(normalize_unit_sphere(pts[0].numpy()), n[0].numpy(), atol=1e-6)
    x = make_input(n, torch.tensor([0, 5, 15]))
    assert x.shape == (3, 19, 50)
    assert torch.equal(x[:, :3], n.transpose(1, 2))
    assert torch.equal(x[1, 3:].argmax(0), torch.full((50,), 5))
    with pytest.raises(ShapeLabError):
        make_input(n, torch.tensor([0, 16, 1]))
    with pytest.raises(ShapeLabError, match="expected"):
        PointNetPartSeg(width_multiplier=0.1)(torch.randn(1, 3, 10))


def test_classifier_transforms_and_regulariser():
    model = PointNetCls(num_classes=5, width_multiplier=0.25).eval()
    logits = model(torch.randn(2, 3, 40))
    assert logits.shape == (2, 5)
    assert torch.allclose(model.trans, torch.eye(3).expand(2, 3, 3))       # T-Nets start at the identity
    assert model.trans_feat.shape == (2, 16, 16)
    q, _ = torch.linalg.qr(torch.randn(2, 16, 16))
    assert feature_transform_regularizer(q) < 1e-5
    a = torch.randn(2, 8, 8)
    naive = np.mean([np.linalg.norm(np.eye(8) - m @ m.T) for m in a.numpy()])
    assert feature_transform_regularizer(a).item() == pytest.approx(naive, rel=1e-5)
    full = PointNetCls()
    assert full.trans_feat is None and full.feature_transform.k == 64


# ----------------------------------------------------------------------------- data and metrics

def test_dataset_reads_real_layout(tmp_path, capsys):
    root = write_tiny_shapenet_part(str(tmp_path / "sp"))
    ds = ShapeNetPartDataset(root, "train", task="seg", num_points=128)
    assert len(ds) == 12
    item = ds[0]
    assert item["inputs"].shape == (19, 128) and item["labels"].shape == (128,)
    name = cats.CATEGORIES[int(item["category"])]
    assert set(item["labels"].tolist()) <= set(cats.part_ids(name))
    assert torch.allclose(item["inputs"][:3].norm(dim=0).max(), torch.tensor(1.0), atol=1e-5)
    val = ShapeNetPartDataset(root, "val", task="seg", num_points=500)      # more than stored: resampled
    assert torch.equal(val[1]["inputs"], val[1]["inputs"])                  # evaluation sampling is fixed
    cls = ShapeNetPartDataset(root, "train", task="cls", num_points=64, categories=["mug", "table"])
    labels = sorted({int(cls[i]["label"]) for i in range(len(cls))})
    assert labels == [0, 1] and cls[0]["points"].shape == (3, 64)
    # one corrupt shape is reported and skipped
    syn = cats.SYNSETS["mug"]
    bad = sorted(os.listdir(os.path.join(root, syn, "points_label")))[0]
    with open(os.path.join(root, syn, "points_label", bad), "w") as f:
        f.write("1\n2\n")
    ds2 = ShapeNetPartDataset(root, "train", task="seg", num_points=64)
    assert len(ds2) == 11
    assert "skipping corrupt shape" in capsys.readouterr().err
    with pytest.raises(ShapeLabError, match="root not found"):
        ShapeNetPartDataset(str(tmp_path / "nope"), "train")


def test_segmentation_validation_uses_the_shapenet_part_rule():
    chair, table = cats.category_index("chair"), cats.category_index("table")   # parts 12-15, 47-49
    gt = torch.tensor([[12, 12, 13, 13, 14, 14], [47, 47, 47, 48, 48, 49]])
    pred = torch.tensor([[12, 13, 13, 13, 14, 14], [47, 47, 47, 48, 48, 49]])
    scores = torch.full((2, 50, 6), -5.0).scatter(1, pred[:, None], 5.0)
    scores[:, 0] = 9.0                                      # an airplane part wins globally, but only
    model = lambda inputs: scores                           # noqa: E731  the category's parts count
    batch = {"inputs": torch.zeros(2, 19, 6), "labels": gt, "category": torch.tensor([chair, table])}
    metrics = PartSegmentationTask({}).validate(model, batch)
    chair_iou = (0.5 + 2 / 3 + 1 + 1) / 4                   # back 1/2, seat 2/3, leg 1, arm absent from both: 1
    assert metrics["instance_miou"] == pytest.approx((chair_iou + 1.0) / 2)
    assert metrics["accuracy"] == pytest.approx(11 / 12)
    assert predict_parts(scores, torch.tensor([chair, table])).tolist() == pred.tolist()


# ----------------------------------------------------------------------------- training

def _train(tmp_path, cfg_file, overrides):
    from modules.config import load_config
    from modules.engine.trainer import train
    cfg = load_config(cfg_file, overrides)
    metrics = train(cfg, str(tmp_path / "exp"))
    return metrics


def _loss_curve(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tmp_path / "exp" / "summary"))
    acc.Reload()
    tag = next(t for t in acc.Tags()["scalars"] if t.endswith("loss") and "val" not in t)
    return [e.value for e in acc.Scalars(tag)]


def test_segmentation_training_loss_falls(tmp_path):
    torch.set_num_threads(1)
    root = write_tiny_shapenet_part(str(tmp_path / "sp"), {"train": 8, "val": 2}, n=200)
    metrics = _train(tmp_path, "configs/pointnet/seg_synth.yaml", [
        f"data.root={root}", "data.num_points=128", "model.width_multiplier=0.125", "training.batch_size=8",
        "training.max_epochs=15", "training.log_every=1", "training.progress=false", "training.lr=0.01"])
    curve = _loss_curve(tmp_path)
    assert np.mean(curve[-3:]) < 0.6 * np.mean(curve[:3])
    assert 0 <= metrics["val/instance_miou"] <= 1
    # whole-split class mIoU from the per-shape records; equal shapes per category -> equal to instance mIoU
    assert metrics["val/class_miou"] == pytest.approx(metrics["val/instance_miou"])
    assert os.path.exists(tmp_path / "exp" / "checkpoints" / "latest.pt")


def test_classification_training_loss_falls(tmp_path):
    torch.set_num_threads(1)
    root = write_tiny_shapenet_part(str(tmp_path / "sp"), {"train": 8, "val": 2}, n=200)
    metrics = _train(tmp_path, "configs/pointnet/cls_synth.yaml", [
        f"data.root={root}", "data.num_points=128", "model.width_multiplier=0.125", "model.num_classes=2",
        "data.categories=[table,mug]", "training.batch_size=8", "training.max_epochs=12", "training.log_every=1",
        "training.progress=false", "training.lr=0.003"])
    curve = _loss_curve(tmp_path)
    assert np.mean(curve[-3:]) < 0.7 * np.mean(curve[:3])
    assert 0 <= metrics["val/accuracy"] <= 1
    assert metrics["val/mean_class_accuracy"] == pytest.approx(metrics["val/accuracy"])  # 2 shapes per class


def test_whole_split_evaluation(tmp_path):
    root = write_tiny_shapenet_part(str(tmp_path / "sp"), {"val": 2}, n=100)
    ds = ShapeNetPartDataset(root, "val", task="seg", num_points=64)
    res = evaluate_segmentation(PointNetPartSeg(width_multiplier=0.125), ds, batch_size=3)
    assert res["num_shapes"] == 4 and set(res["per_category"]) == {"table", "mug"}
    assert res["class_miou"] == pytest.approx(np.mean(list(res["per_category"].values())))
    ds = ShapeNetPartDataset(root, "val", task="cls", num_points=64, categories=["table", "mug"])
    res = evaluate_classification(PointNetCls(2, width_multiplier=0.125), ds, ["table", "mug"])
    assert res["num_shapes"] == 4 and 0 <= res["accuracy"] <= 1
