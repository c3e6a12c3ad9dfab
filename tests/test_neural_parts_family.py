"""The Neural Parts family: config defaults, engine training (the loss falls), the generator's files, the
original's metrics against naive references on a sphere primitive vs a sphere target, the equal sampling."""
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

import modules.families  # noqa: F401  (registers the families)
from modules.config import load_config
from modules.data import humans
from modules.engine.trainer import Trainer
from modules.families.neural_parts import config as np_config
from modules.families.neural_parts.data import NeuralPartsDataset, equal_volume_sample
from modules.families.neural_parts.evaluation import (evaluate_sample, manhattan_chamfer_sum,
                                                      primitive_surface_points, weighted_iou)
from modules.families.neural_parts.generation import NeuralPartsGenerator
from modules.geometry import ico_sphere
from modules.geometry.cameras import look_at_camera
from modules.geometry.io import load_mesh, save_mesh
from modules.models.layers import count_parameters
from modules.registry import MODELS
from modules.utils import ShapeLabError

CFG = os.path.join(os.path.dirname(__file__), "..", "configs", "neural_parts")
TINY = {"name": "neural_parts", **np_config.MODEL, "encoder_head": [32, 16], "feature_dim": 16, "hidden_size": 32,
        "proj_dims": 16, "n_points_on_sphere": 50}


def write_sphere_frames(root, radii, split_of):
    """A humans-layout root whose frames are spheres of the given radii (seq_000/<i>) with disk renders."""
    sphere = ico_sphere(3)
    v0, f = sphere.verts_list()[0].numpy(), sphere.faces_list()[0].numpy()
    rng = np.random.default_rng(0)
    rows = []
    for i, r in enumerate(radii):
        p = humans.frame_paths(root, "seq_000", i)
        save_mesh(p["mesh"], v0 * r, f)
        d = rng.normal(size=(4000, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        humans.write_surface_points(p["surface"], d * r, d, np.full(4000, 50))
        u = rng.uniform(-0.55, 0.55, (20000, 3))
        humans.write_points_npz(p["points"], u, np.linalg.norm(u, axis=1) < r)
        yy, xx = np.mgrid[:64, :64]
        img = np.full((64, 64, 3), 255, np.uint8)
        img[(yy - 32) ** 2 + (xx - 32) ** 2 < (r * 100) ** 2] = 80
        os.makedirs(os.path.dirname(p["render"]), exist_ok=True)
        Image.fromarray(img).save(p["render"])
        humans.write_camera(p["camera"], look_at_camera((0, 0, 2.0), width=64, height=64, dtype=torch.float64))
        rows.append(("seq_000", i, split_of(i)))
    humans.write_splits_csv(os.path.join(root, "d-faust_splits.csv"), rows)
    return root


@pytest.fixture(scope="module")
def sphere_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("np_humans"))
    return write_sphere_frames(root, [0.2, 0.3, 0.25, 0.35], lambda i: ["train", "train", "val", "test"][i])


def test_humans_config_has_the_original_training_settings():
    cfg = load_config(os.path.join(CFG, "humans.yaml"))
    t = cfg["training"]
    assert (t["optimizer"], t["lr"], t["batch_size"], t["accumulate"], t["grad_clip"]) == ("radam", 5e-5, 1, 2, 1.0)
    assert cfg["data"]["n_volume"] == 5000 and cfg["data"]["volume_sampling"] == "equal"
    assert cfg["model"]["n_points_on_sphere"] == 200
    assert cfg["task"]["weights"] == {"reconstruction": 0.3, "normal_consistency": 0.01, "occupancy": 1.0,
                                      "coverage": 0.01, "overlap": 0.1}
    assert load_config(os.path.join(CFG, "objects.yaml"))["model"]["n_points_on_sphere"] == 500


def test_full_size_parameter_count():
    model = MODELS.build({"name": "neural_parts", **np_config.MODEL})
    # ResNet-18 without fc (11,176,512) less its 9,600 BatchNorm affine weights (frozen: buffers)
    # + head (393,984); + INN (2,275,746) + embedding (5 x 256)
    assert count_parameters(model.encoder) == 11_176_512 - 9_600 + 393_984
    assert count_parameters(model.inn) == 2_275_746
    assert count_parameters(model) == 13_837_922


def test_zero_primitives_is_a_one_line_error():
    with pytest.raises(ShapeLabError, match="n_primitives"):
        MODELS.build({**TINY, "n_primitives": 0})


def test_equal_sampling_weights_estimate_the_uniform_mean():
    rng = np.random.default_rng(0)
    N = 10000
    occ = (np.arange(N) < 1000).astype(np.float64)           # 10 % inside
    pts = rng.normal(size=(N, 3))
    _, o, w = equal_volume_sample(pts, occ, 200000, rng)
    assert abs(o.mean() - 0.5) < 0.01                        # half in, half out
    assert abs(np.mean(w * o) - 0.1) < 0.005                 # weighted mean = true inside fraction
    assert abs(w.mean() - 1.0) < 0.02
    assert np.allclose(w[o == 1], 2 * 1000 / N) and np.allclose(w[o == 0], 2 * 9000 / N)


def identity_inn(model):
    """Make every primitive the sphere of radius r at the origin (couplings, scale, rotation, translation = id)."""
    with torch.no_grad():
        for layer in model.inn.layers:
            for net in (layer.map_s, layer.map_t):
                net[-2 if isinstance(net[-1], torch.nn.Hardtanh) else -1].weight.zero_()
                net[-2 if isinstance(net[-1], torch.nn.Hardtanh) else -1].bias.zero_()
        for net, bias in ((model.inn.scales, [0, 0, 0]), (model.inn.rotations, [1, 0, 0, 0]),
                          (model.inn.translations, [0, 0, 0])):
            net[-1].weight.zero_()
            net[-1].bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return model


def test_metrics_of_a_sphere_primitive_against_a_sphere_target(sphere_root):
    torch.manual_seed(0)
    model = identity_inn(MODELS.build({**TINY, "n_primitives": 1})).eval()
    ds = NeuralPartsDataset(sphere_root, "humans", "train", image_size=64, n_surface=2000, n_volume=20000, train=False)
    sample = ds[1]                                             # target sphere of radius 0.3
    F = model.primitive_features(sample["image"][None])
    phi = model.phi(sample["points"][None], F)
    assert torch.allclose(phi[0, :, 0], sample["points"].norm(dim=-1) - 0.25, atol=1e-5)
    # weighted IoU against a naive loop, and against the closed form (0.25/0.3)^3
    pred = (phi[0, :, 0] <= 0).numpy()
    gt, w = sample["occ"].numpy() > 0.5, sample["weights"].numpy().astype(np.float64)
    naive = sum(wi for wi, a, b in zip(w, pred, gt) if a and b) / max(1, sum(wi for wi, a, b in zip(w, pred, gt) if a or b))
    iou = float(weighted_iou(phi, sample["occ"][None], sample["weights"][None])[0])
    assert iou == pytest.approx(naive, rel=1e-5)
    assert iou == pytest.approx((0.25 / 0.3) ** 3, abs=0.03)
    # points on the primitive lie on the sphere of radius 0.25; Chamfer-L1 = 0.5 (0.05 + 0.05)
    pts, own = primitive_surface_points(model, F, 5000, uv_points=1000)
    assert len(pts) == 5000 and (own == 0).all()
    assert np.allclose(np.linalg.norm(pts, axis=1), 0.25, atol=2e-3)
    m = evaluate_sample(model, sample)
    assert m["chamfer-L1"] == pytest.approx(0.05, abs=3e-3)
    # the re-implementation's metric: sum of both Manhattan directions, against brute force
    a, b = pts[:300], sample["surface_points"].numpy()[:200]
    brute = np.mean([min(np.abs(p - q).sum() for q in b) for p in a]) + np.mean([min(np.abs(p - q).sum() for q in a) for p in b])
    assert manhattan_chamfer_sum(a, b) == pytest.approx(brute, rel=1e-9)


def test_points_inside_another_primitive_are_dropped():
    """Two spheres of radius r = 0.25 at x = 0 and x = 0.25: a quarter of each surface lies inside the other."""
    model = identity_inn(MODELS.build({**TINY, "n_primitives": 2})).eval()
    D = model.encoder.out_dim
    with torch.no_grad():      # t_m = (0.25 * e_m[0], 0, 0) with e_0[0] = 0, e_1[0] = 1
        model.primitive_embedding[:, 0] = torch.tensor([0.0, 1.0])
        model.inn.translations[0].weight.zero_()
        model.inn.translations[0].bias.zero_()
        model.inn.translations[0].weight[0, D] = 1.0
        model.inn.translations[-1].weight[0, 0] = 0.25
    F = model.primitive_features(torch.rand(1, 3, 64, 64))
    pts, own = primitive_surface_points(model, F, 20000, uv_points=1000, generator=torch.Generator().manual_seed(0))
    centres = np.array([[0, 0, 0], [0.25, 0, 0]])
    assert np.allclose(np.linalg.norm(pts - centres[own], axis=1), 0.25, atol=2e-3)
    other = np.linalg.norm(pts - centres[1 - own], axis=1)
    assert (other >= 0.25 - 1e-4).all()                       # nothing kept inside the other sphere
    assert len(pts) / 20000 == pytest.approx(0.75, abs=0.02)  # the cap cos(theta) > 1/2 is 1/4 of the area


def test_engine_steps_lower_the_loss_with_accumulation_and_clipping(sphere_root, tmp_path, single_thread):
    cfg = load_config(os.path.join(CFG, "tiny.yaml"), [
        f"data.root={sphere_root}", "training.max_steps=16", "training.max_epochs=100", "training.lr=3e-4", "training.optimizer=adam",
        "training.val_every=1000", "training.log_every=1000", "data.n_volume=400", "data.image_size=32",
        "experiment.seed=0"])
    assert cfg["training"]["accumulate"] == 2 and cfg["training"]["grad_clip"] == 1.0
    trainer = Trainer(cfg, str(tmp_path / "exp"))
    ds = trainer.loader.dataset
    ds = getattr(ds, "dataset", ds)
    batch = NeuralPartsDataset.collate([ds[i] for i in (0, 1)])

    def loss():      # the loss draws sphere points: average a few fixed draws
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return float(np.mean([float(trainer.task.loss(trainer.model, batch)[0].detach()) for _ in range(3)]))

    before = loss()
    trainer.fit()
    assert trainer.step >= 8
    after = loss()
    assert after < 0.7 * before, (before, after)


def test_generator_writes_parts_union_and_picture(sphere_root, tmp_path):
    model = MODELS.build({**TINY, "n_primitives": 3}).eval()
    ds = NeuralPartsDataset(sphere_root, "humans", "test", image_size=64, n_surface=500, n_volume=500)
    gen = NeuralPartsGenerator({"config": {}})
    summary = gen.run(model, ds, str(tmp_path / "out"), {"pictures": True, "overwrite": False, "sphere_level": 2},
                      "cpu")
    assert summary["done"] == 1 and not summary["failed"]
    d = tmp_path / "out" / "generation" / "seq_000" / "00003"
    names = sorted(os.listdir(d))
    assert names == ["part_000.obj", "part_001.obj", "part_002.obj", "union.obj", "union.png"]
    part = load_mesh(str(d / "part_000.obj"))
    union = load_mesh(str(d / "union.obj"))
    assert len(union.faces) == 3 * len(part.faces) == 3 * 320
    img = np.asarray(Image.open(d / "union.png"))
    assert img.shape[1] > 3 * 64 and img.std() > 0


def test_gradcam_of_a_primitive_volume():
    from modules.attribution.images import attribute
    from modules.families.neural_parts.evaluation import (RadialPhiModel, primitive_volume_queries,
                                                          primitive_volume_target)
    torch.manual_seed(0)
    model = MODELS.build({**TINY, "n_primitives": 2})
    wrapped = RadialPhiModel(model)
    images = torch.rand(1, 3, 64, 64)
    queries = primitive_volume_queries(6)
    target = primitive_volume_target(1, sharpness=10.0)
    value = target(wrapped(images, queries))
    assert value.shape == (1,) and 0 < float(value) < 1
    res = attribute("gradcam", wrapped, images, target, layer="layer4", queries=queries)
    assert res.map.shape == (1, 64, 64) and torch.isfinite(res.map).all()
