"""modules.metrics: closed forms, a naive reference, worst cases and bad input."""
import math

import numpy as np
import pytest
import trimesh

from modules.metrics import (EMPTY_DISTANCE, F1_THRESHOLDS, F_SCORE_THRESHOLDS, classification_accuracy,
                             eval_mesh, eval_pointcloud, iou, mesh_iou, part_miou)
from modules.data import categories
from modules.utils import ShapeLabError


def _directions(n, seed=0):
    u = np.random.default_rng(seed).normal(size=(n, 3))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


@pytest.mark.parametrize("r_pred,r_gt", [(0.3, 0.312), (0.4, 0.3835), (0.25, 0.268)])
def test_concentric_spheres_closed_form(r_pred, r_gt):
    # Same directions on both spheres: the nearest neighbour of r1*u_i is r2*u_i, at distance |r1 - r2|.
    u = _directions(5000)
    d = abs(r_pred - r_gt)
    out = eval_pointcloud(r_pred * u, r_gt * u, u, -u)  # flipped normals: |cos| = 1 all the same
    assert out["accuracy"] == pytest.approx(d, abs=1e-12)
    assert out["completeness"] == pytest.approx(d, abs=1e-12)
    assert out["chamfer-L1"] == pytest.approx(d, abs=1e-12)
    assert out["chamfer-L2"] == pytest.approx(d * d, abs=1e-12)
    assert out["normals"] == pytest.approx(1.0)
    for key, tau in F_SCORE_THRESHOLDS.items():
        assert out[key] == (1.0 if d <= tau else 0.0), key
    for tau in F1_THRESHOLDS:
        assert out[f"f1@{tau:g}"] == pytest.approx(100.0 if d < tau else 0.0, abs=1e-6)


def test_eval_pointcloud_against_naive_reference():
    rng = np.random.default_rng(1)
    pred, gt = rng.random((300, 3)) * 0.1, rng.random((200, 3)) * 0.1
    pn, gn = rng.normal(size=(300, 3)), rng.normal(size=(200, 3))
    out = eval_pointcloud(pred, gt, pn, gn)
    d = np.linalg.norm(pred[:, None] - gt[None], axis=-1)  # (300, 200)
    acc, comp = d.min(1), d.min(0)
    unit = lambda n: n / np.linalg.norm(n, axis=1, keepdims=True)  # noqa: E731
    nacc = np.abs((unit(pn) * unit(gn)[d.argmin(1)]).sum(1)).mean()
    ncomp = np.abs((unit(gn) * unit(pn)[d.argmin(0)]).sum(1)).mean()
    assert out["accuracy"] == pytest.approx(acc.mean())
    assert out["completeness"] == pytest.approx(comp.mean())
    assert out["chamfer-L2"] == pytest.approx(0.5 * ((acc ** 2).mean() + (comp ** 2).mean()))
    assert out["normals accuracy"] == pytest.approx(nacc)
    assert out["normals completeness"] == pytest.approx(ncomp)
    for key, tau in F_SCORE_THRESHOLDS.items():
        p, r = (acc <= tau).mean(), (comp <= tau).mean()
        assert out[key] == pytest.approx(2 * p * r / (p + r) if p + r else 0.0), key
    for tau in F1_THRESHOLDS:
        p, r = 100 * (acc < tau).mean(), 100 * (comp < tau).mean()
        assert out[f"precision@{tau:g}"] == pytest.approx(p)
        assert out[f"recall@{tau:g}"] == pytest.approx(r)
        assert out[f"f1@{tau:g}"] == pytest.approx(2 * p * r / (p + r + 1e-8))
    assert "normals" not in eval_pointcloud(pred, gt)


def test_eval_mesh_sphere_against_concentric_sphere():
    mesh = trimesh.creation.icosphere(5, radius=0.35)  # within 4e-4 of the true sphere
    u = _directions(20000, seed=2)
    rng = np.random.default_rng(3)
    pts = rng.uniform(-0.55, 0.55, (20000, 3))
    occ = np.linalg.norm(pts, axis=1) < 0.365
    out = eval_mesh(mesh, 0.365 * u, u, pts, occ, n_samples=20000)
    # every distance is 0.015 (+ up to 4e-4 facet sag, + the spacing of the 20k-point clouds)
    assert out["accuracy"] == pytest.approx(0.015, abs=1e-3)
    assert out["chamfer-L1"] == pytest.approx(0.015, abs=2e-3)
    assert out["normals"] > 0.999
    assert out["f-score"] == 0.0 and out["f-score-0.02"] > 0.99
    assert out["iou"] == pytest.approx((0.35 / 0.365) ** 3, abs=0.01)


def test_empty_prediction_gets_the_documented_worst_case():
    u = _directions(100)
    out = eval_mesh((np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)), u, u, u * 0.5, np.ones(100, bool))
    assert out["chamfer-L1"] == EMPTY_DISTANCE == math.sqrt(3) and out["chamfer-L2"] == 3.0
    assert out["normals"] == -1.0 and out["f-score"] == 0.0 and out["iou"] == 0.0 and out["f1@0.05"] == 0.0
    degenerate = (np.zeros((3, 3)), np.array([[0, 1, 2]]))  # zero area counts as empty
    assert eval_mesh(degenerate, u, u)["chamfer-L1"] == EMPTY_DISTANCE
    assert not any(isinstance(v, float) and math.isnan(v) for v in out.values())


def test_bad_inputs_raise():
    u = _directions(10)
    with pytest.raises(ShapeLabError, match="pred_points.*NaN"):
        eval_pointcloud(np.where(np.arange(10)[:, None] == 3, np.nan, u), u)
    with pytest.raises(ShapeLabError, match="gt_points.*empty"):
        eval_pointcloud(u, np.zeros((0, 3)))
    with pytest.raises(ShapeLabError, match="gt_normals"):
        eval_pointcloud(u, u, u, u[:5])
    with pytest.raises(ShapeLabError, match="faces index"):
        eval_mesh((u, np.array([[0, 1, 20]])), u, u)
    with pytest.raises(ShapeLabError, match="shapes differ"):
        iou(np.ones(3), np.ones(4))


def test_iou_labels_and_two_boxes():
    assert iou(np.array([1, 1, 0, 0.6]), np.array([1, 0, 0, 0.4])) == pytest.approx(1 / 3)
    assert iou(np.zeros(4, bool), np.zeros(4, bool)) == 1.0
    a = trimesh.creation.box(bounds=[[-0.2] * 3, [0.2] * 3])
    b = trimesh.creation.box(bounds=[[-0.1, -0.2, -0.2], [0.3, 0.2, 0.2]])
    # intersection 0.3*0.4*0.4 = 0.048, union 2*0.064 - 0.048 = 0.08
    assert mesh_iou(a, b, n_points=50000, box=(-0.3, 0.35)) == pytest.approx(0.6, abs=0.015)
    assert mesh_iou(a, a, n_points=2000) == 1.0


def test_part_miou_shapenet_part_rule():
    parts = {"mug": [36, 37], "bag": [4, 5]}.get
    pred = [np.array([36, 36, 37, 37]), np.array([4, 4, 4]), np.array([36, 36])]
    gt = [np.array([36, 37, 37, 37]), np.array([4, 4, 4]), np.array([37, 37])]
    out = part_miou(pred, gt, ["mug", "bag", "mug"], parts_of=parts)
    shape0 = (1 / 2 + 2 / 3) / 2     # part 36: 1/2, part 37: 2/3
    shape1 = 1.0                     # part 4: 1, part 5 absent from both -> 1
    shape2 = 0.0                     # 36: 0/2, 37: 0/2
    np.testing.assert_allclose(out["per_shape"], [shape0, shape1, shape2])
    assert out["instance mIoU"] == pytest.approx((shape0 + shape1 + shape2) / 3)
    assert out["class mIoU"] == pytest.approx(((shape0 + shape2) / 2 + shape1) / 2)
    # default part table: chair = global ids 12..15
    assert part_miou([np.array([12, 13])], [np.array([12, 13])], ["chair"], parts_of=categories.part_ids)["instance mIoU"] == 1.0


def test_classification_accuracy_overall_and_per_class():
    out = classification_accuracy(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]))
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["mean class accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    scores = np.eye(3)[[0, 1, 1]]
    assert classification_accuracy(scores, np.array([0, 1, 2]))["accuracy"] == pytest.approx(2 / 3)


def test_degenerate_faces_never_give_nan():
    mesh = trimesh.creation.icosphere(3, radius=0.4)
    v = np.concatenate([mesh.vertices, [[0.0, 0.0, 0.0]]])
    f = np.concatenate([mesh.faces, [[0, 0, 1], [len(v) - 1] * 3]])  # two zero-area triangles
    u = _directions(1000)
    out = eval_mesh((v, f), 0.4 * u, u, 0.3 * u, np.ones(1000, bool), n_samples=5000)
    assert not any(math.isnan(x) for x in out.values())
    assert out["normals"] > 0.99 and out["iou"] == 1.0
