"""The standard metrics, one definition each (Occupancy Networks names; 16-889 F1@tau; ShapeNet-Part mIoU).

Surface metrics (`eval_pointcloud`, `eval_mesh`), with d(x, Y) the unsquared Euclidean distance from x
to its nearest neighbour in Y (scipy cKDTree via `modules.geometry.knn.knn_search_numpy`):
- `accuracy`      = mean_{p in pred} d(p, gt)        `accuracy2`     = mean d(p, gt)^2
- `completeness`  = mean_{g in gt} d(g, pred)        `completeness2` = mean d(g, pred)^2
- `chamfer-L1`    = 0.5 (accuracy + completeness)   (ONet's "Chamfer-L1": unsquared distances, not an L1 norm;
                                                      papers print it x10)
- `chamfer-L2`    = 0.5 (accuracy2 + completeness2)
- `normals accuracy` = mean_{p} |n_p . n_{nn(p) in gt}|, `normals completeness` the same from gt to pred,
  `normals` = their mean (unit normals; |cos|, so the orientation of the normals does not matter)
- `f-score` (tau=0.01), `f-score-0.005`, `f-score-0.015`, `f-score-0.02`: 2PR/(P+R) with
  P = fraction of pred points with d <= tau, R = fraction of gt points with d <= tau (ConvONet), in [0, 1].
- `precision@tau`, `recall@tau`, `f1@tau` for tau in 0.01..0.05: the 16-889 single-view assignment's
  definition, in percent: P = 100 mean(d < tau), R likewise, F1 = 2PR/(P+R+1e-8).
An empty prediction (no points, or a mesh with no faces / zero area) gets ONet's worst-case values:
accuracy = completeness = sqrt(3) (the unit cube's diagonal), accuracy2 = completeness2 = 3, chamfer-L1 =
sqrt(3), chamfer-L2 = 3, all normals = -1, every F-score / precision / recall = 0, iou = 0. NaN/inf
coordinates and an empty ground truth raise ShapeLabError.
"""
import math

import numpy as np
import torch

from modules.geometry.io import check_mesh_arrays
from modules.geometry.knn import knn_search_numpy
from modules.geometry.mesh_contains import mesh_contains
from modules.geometry.meshes import Meshes
from modules.geometry.sample_points_from_meshes import sample_points_from_meshes
from modules.utils import ShapeLabError

F_SCORE_THRESHOLDS = {"f-score": 0.01, "f-score-0.005": 0.005, "f-score-0.015": 0.015, "f-score-0.02": 0.02}
F1_THRESHOLDS = (0.01, 0.02, 0.03, 0.04, 0.05)
EMPTY_DISTANCE = math.sqrt(3.0)  # ONet: distance reported for an empty prediction
EMPTY_NORMALS = -1.0             # ONet: normal consistency reported for an empty prediction


# ---------------------------------------------------------------- surface metrics

def eval_pointcloud(pred_points, gt_points, pred_normals=None, gt_normals=None):
    """All surface metrics between two clouds -> dict (keys in the module docstring).

    Normal keys are present only when both normal arrays are given.
    """
    pred_points = _cloud(pred_points, "pred_points", allow_empty=True)
    gt_points = _cloud(gt_points, "gt_points")
    with_normals = pred_normals is not None and gt_normals is not None
    if with_normals:
        pred_normals = _normals(pred_normals, len(pred_points), "pred_normals")
        gt_normals = _normals(gt_normals, len(gt_points), "gt_normals")
    if len(pred_points) == 0:
        return empty_prediction_metrics(with_normals)

    dist_pred, idx_pred = knn_search_numpy(pred_points, gt_points, k=1)  # accuracy direction
    dist_gt, idx_gt = knn_search_numpy(gt_points, pred_points, k=1)      # completeness direction
    dist_pred, idx_pred, dist_gt, idx_gt = dist_pred[:, 0], idx_pred[:, 0], dist_gt[:, 0], idx_gt[:, 0]

    out = {
        "accuracy": float(dist_pred.mean()),
        "completeness": float(dist_gt.mean()),
        "accuracy2": float((dist_pred ** 2).mean()),
        "completeness2": float((dist_gt ** 2).mean()),
    }
    out["chamfer-L1"] = 0.5 * (out["accuracy"] + out["completeness"])
    out["chamfer-L2"] = 0.5 * (out["accuracy2"] + out["completeness2"])
    if with_normals:
        out["normals accuracy"] = float(np.abs((pred_normals * gt_normals[idx_pred]).sum(1)).mean())
        out["normals completeness"] = float(np.abs((gt_normals * pred_normals[idx_gt]).sum(1)).mean())
        out["normals"] = 0.5 * (out["normals accuracy"] + out["normals completeness"])
    for key, tau in F_SCORE_THRESHOLDS.items():
        out[key] = f_score(dist_pred, dist_gt, tau)
    for tau in F1_THRESHOLDS:
        precision = 100.0 * float((dist_pred < tau).mean())
        recall = 100.0 * float((dist_gt < tau).mean())
        out[f"precision@{tau:g}"] = precision
        out[f"recall@{tau:g}"] = recall
        out[f"f1@{tau:g}"] = 2.0 * precision * recall / (precision + recall + 1e-8)
    return out


def f_score(dist_pred_to_gt, dist_gt_to_pred, tau):
    """ConvONet F-score at tau from the two nearest-neighbour distance arrays (0 when P = R = 0)."""
    precision = float((np.asarray(dist_pred_to_gt) <= tau).mean())
    recall = float((np.asarray(dist_gt_to_pred) <= tau).mean())
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def empty_prediction_metrics(with_normals=True, with_iou=False):
    """The documented worst-case values for an empty prediction (ONet convention)."""
    out = {"accuracy": EMPTY_DISTANCE, "completeness": EMPTY_DISTANCE, "accuracy2": 3.0, "completeness2": 3.0,
           "chamfer-L1": EMPTY_DISTANCE, "chamfer-L2": 3.0}
    if with_normals:
        out.update({"normals accuracy": EMPTY_NORMALS, "normals completeness": EMPTY_NORMALS,
                    "normals": EMPTY_NORMALS})
    out.update({key: 0.0 for key in F_SCORE_THRESHOLDS})
    for tau in F1_THRESHOLDS:
        out.update({f"precision@{tau:g}": 0.0, f"recall@{tau:g}": 0.0, f"f1@{tau:g}": 0.0})
    if with_iou:
        out["iou"] = 0.0
    return out


def sample_mesh_surface(vertices, faces, n_samples, seed=None):
    """Area-uniform surface samples and their face normals -> (points (n,3), normals (n,3)) float64
    (sampled in float32),
    or two empty arrays when the mesh has no faces or zero area. Uses the one sampler of
    `modules.geometry` (`sample_points_from_meshes`)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0 or not _total_area(vertices, faces) > 0:
        return np.zeros((0, 3)), np.zeros((0, 3))
    # float32 is plenty for metrics at 1e-3 scale and halves the sampler's time on 200k-face meshes
    mesh = Meshes([torch.from_numpy(vertices.astype(np.float32))], [torch.from_numpy(faces)])
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            points, normals = sample_points_from_meshes(mesh, n_samples, return_normals=True)
    return points[0].numpy().astype(np.float64), normals[0].numpy().astype(np.float64)


def eval_mesh(mesh, gt_pointcloud, gt_normals, iou_points=None, iou_occupancies=None, n_samples=100000,
              seed=0, contains_method="raycast"):
    """ONet mesh evaluation -> dict: `eval_pointcloud` keys (+ `iou` when iou_points are given).

    Args:
        mesh: a trimesh.Trimesh or (vertices (V,3), faces (F,3)).
        gt_pointcloud, gt_normals: (N,3) ground-truth surface samples and normals (ONet pointcloud.npz);
            gt_normals=None leaves the normal keys out.
        iou_points, iou_occupancies: (M,3) points and their ground-truth occupancy (ONet points.npz);
            occupancies >= 0.5 count as inside.
        n_samples: points sampled on the predicted mesh (face normals kept), as ONet's 100k.
        seed: seed of the surface sampling, so a rerun gives the same numbers.
        contains_method: inside test of the predicted mesh at iou_points; "raycast" (ray parity, what
            ONet's evaluation does; assumes a closed mesh), "winding" or "auto" (see `mesh_contains`).
    """
    vertices, faces = _mesh_arrays(mesh)
    points, normals = sample_mesh_surface(vertices, faces, n_samples, seed=seed)
    out = eval_pointcloud(points, gt_pointcloud, normals, gt_normals)
    if iou_points is not None:
        if iou_occupancies is None:
            raise ShapeLabError("eval_mesh: iou_points given without iou_occupancies")
        iou_points = _cloud(iou_points, "iou_points")
        gt_occ = _occupancy(iou_occupancies, len(iou_points), "iou_occupancies")
        if len(points) == 0:
            out["iou"] = 0.0
        else:
            out["iou"] = iou(mesh_contains(vertices, faces, iou_points, method=contains_method), gt_occ)
    return out


# ---------------------------------------------------------------- volume metrics

def iou(occupancy_pred, occupancy_gt, threshold=0.5):
    """|pred & gt| / |pred | gt| of two occupancy arrays (bool, or values >= threshold count as inside).

    When both are empty everywhere the two agree and the IoU is 1.
    """
    a = _occupancy(occupancy_pred, None, "occupancy_pred", threshold)
    b = _occupancy(occupancy_gt, None, "occupancy_gt", threshold)
    if a.shape != b.shape:
        raise ShapeLabError(f"iou: occupancy shapes differ, {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def occupancy_iou(pred, gt):
    """The IoU of iou() for a batch, in torch (training-time validation): (B,Q) boolean tensors -> (B,) IoU,
    1 where both are empty."""
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def mesh_iou(mesh_a, mesh_b, n_points=100000, box=None, padding=0.1, seed=0, contains_method="auto"):
    """Volumetric IoU of two meshes on `n_points` uniform points in a box.

    box: (min, max) of the cube; default the cube around both meshes' bounding boxes, grown by
    `padding` times its half-size on each side (for unit-cube-normalised meshes: [-0.55, 0.55], ONet's
    points.npz box).
    """
    va, fa = _mesh_arrays(mesh_a)
    vb, fb = _mesh_arrays(mesh_b)
    if box is None:
        both = np.concatenate([va, vb]) if len(va) + len(vb) else np.zeros((1, 3))
        lo, hi = both.min(0), both.max(0)
        centre, half = 0.5 * (lo + hi), 0.5 * float((hi - lo).max())
        half = half * (1.0 + padding) if half > 0 else 0.5
        box = (centre - half, centre + half)
    rng = np.random.default_rng(seed)
    points = rng.uniform(np.broadcast_to(box[0], 3), np.broadcast_to(box[1], 3), size=(n_points, 3))
    return iou(mesh_contains(va, fa, points, method=contains_method),
               mesh_contains(vb, fb, points, method=contains_method))


# ---------------------------------------------------------------- labels

def part_miou(pred_labels, gt_labels, categories, parts_of):
    """ShapeNet-Part mean IoU, instance- and class-averaged.

    For each shape of category c with parts P_c: IoU_l = |pred=l & gt=l| / |pred=l | gt=l| for l in P_c,
    and IoU_l = 1 when part l is absent from both prediction and ground truth; the shape's mIoU is the
    mean over P_c. `instance mIoU` averages over shapes, `class mIoU` over categories (each the mean of
    its shapes).

    Args:
        pred_labels, gt_labels: sequences of per-shape int arrays (global part ids), same lengths.
        categories: per-shape category names (or synsets).
        parts_of: callable category -> list of part ids (ShapeNet-Part: `modules.data.categories.part_ids`).
    Returns:
        dict(instance mIoU, class mIoU, per_class {name: mIoU}, per_shape [mIoU...]).
    """
    if not (len(pred_labels) == len(gt_labels) == len(categories)):
        raise ShapeLabError(f"part_miou: {len(pred_labels)} predictions, {len(gt_labels)} ground truths and "
                            f"{len(categories)} categories; expected the same number")
    if len(categories) == 0:
        raise ShapeLabError("part_miou: no shapes")
    per_shape, per_class = [], {}
    for i, (pred, gt, cat) in enumerate(zip(pred_labels, gt_labels, categories)):
        pred, gt = np.asarray(pred).reshape(-1), np.asarray(gt).reshape(-1)
        if pred.shape != gt.shape:
            raise ShapeLabError(f"part_miou: shape {i} has {pred.size} predicted and {gt.size} true labels")
        ious = []
        for part in parts_of(cat):
            p, g = pred == part, gt == part
            union = np.logical_or(p, g).sum()
            ious.append(1.0 if union == 0 else np.logical_and(p, g).sum() / union)
        shape_miou = float(np.mean(ious))
        per_shape.append(shape_miou)
        per_class.setdefault(str(cat), []).append(shape_miou)
    per_class = {cat: float(np.mean(v)) for cat, v in per_class.items()}
    return {"instance mIoU": float(np.mean(per_shape)), "class mIoU": float(np.mean(list(per_class.values()))),
            "per_class": per_class, "per_shape": per_shape}


def classification_accuracy(pred, target, num_classes=None):
    """Overall accuracy and mean per-class accuracy (mean over classes present in `target` of the
    fraction of that class's samples predicted correctly). pred: labels (N,) or scores (N,C)."""
    pred, target = _np(pred), _np(target).reshape(-1)
    if pred.ndim == 2:
        pred = pred.argmax(1)
    pred = pred.reshape(-1)
    if pred.shape != target.shape or target.size == 0:
        raise ShapeLabError(f"classification_accuracy: {pred.size} predictions for {target.size} targets")
    correct = pred == target
    classes = np.unique(target) if num_classes is None else [c for c in range(num_classes) if (target == c).any()]
    per_class = {int(c): float(correct[target == c].mean()) for c in classes}
    return {"accuracy": float(correct.mean()), "mean class accuracy": float(np.mean(list(per_class.values()))),
            "per_class": per_class}


# ---------------------------------------------------------------- input checks

def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _cloud(points, name, allow_empty=False):
    points = _np(points)
    if points.size == 0 and allow_empty:
        return np.zeros((0, 3))
    if points.ndim != 2 or points.shape[1] != 3:
        raise ShapeLabError(f"{name}: expected shape (N,3), got {points.shape}")
    if len(points) == 0:
        raise ShapeLabError(f"{name}: empty point cloud")
    if not np.all(np.isfinite(points)):
        raise ShapeLabError(f"{name}: contains NaN or inf coordinates")
    return points.astype(np.float64, copy=False)


def _normals(normals, n, name):
    normals = _np(normals).astype(np.float64)
    if normals.shape != (n, 3):
        raise ShapeLabError(f"{name}: expected shape ({n},3), got {normals.shape}")
    if not np.all(np.isfinite(normals)):
        raise ShapeLabError(f"{name}: contains NaN or inf")
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-12)  # zero normals stay zero (count as |cos| = 0)


def _occupancy(occ, n, name, threshold=0.5):
    occ = _np(occ).reshape(-1)
    if n is not None and occ.shape != (n,):
        raise ShapeLabError(f"{name}: expected {n} values, got {occ.shape}")
    if occ.dtype == bool:
        return occ
    if not np.all(np.isfinite(occ)):
        raise ShapeLabError(f"{name}: contains NaN or inf")
    return occ >= threshold


def _mesh_arrays(mesh):
    if hasattr(mesh, "vertices") and hasattr(mesh, "faces"):
        vertices, faces = mesh.vertices, mesh.faces
    else:
        try:
            vertices, faces = mesh
        except (TypeError, ValueError) as err:
            raise ShapeLabError("mesh: expected a trimesh.Trimesh or a (vertices, faces) pair") from err
    vertices, faces = _np(vertices), _np(faces)
    if vertices.size == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    vertices, faces = check_mesh_arrays(vertices, faces, name="mesh")
    return vertices.astype(np.float64), faces


def _total_area(vertices, faces):
    tri = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
