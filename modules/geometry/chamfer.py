"""Chamfer distance with PyTorch3D 0.7 semantics (the training loss; the ONet evaluation metric
"Chamfer-L1", mean unsquared distance, lives in modules/metrics.py)."""
import torch
import torch.nn.functional as F

from modules.geometry.knn import _check_batch, _knn_points_checked, knn_gather, single_thread_on_cpu
from modules.utils import ShapeLabError


def _one_direction(x, y, x_lengths, y_lengths, x_normals, y_normals, weights, point_reduction, norm,
                   abs_cosine):
    """Per-point nearest distances from x to y, reduced over points; (cham (N,) or (N,P1), normals)."""
    N, P1, _ = x.shape
    x_pad = torch.arange(P1, device=x.device)[None, :] >= x_lengths[:, None]  # (N, P1)
    nn = _knn_points_checked(x, y, x_lengths, y_lengths, norm, 1, False)  # inputs already checked
    cham = nn.dists[..., 0].masked_fill(x_pad, 0.0)
    if weights is not None:
        cham = cham * weights.view(N, 1)
    cham_n = None
    if x_normals is not None:
        near = knn_gather(y_normals, nn.idx, y_lengths)[..., 0, :]
        cos = F.cosine_similarity(x_normals, near, dim=2, eps=1e-6)
        cham_n = (1 - (cos.abs() if abs_cosine else cos)).masked_fill(x_pad, 0.0)
        if weights is not None:
            cham_n = cham_n * weights.view(N, 1)
    if point_reduction == "max":
        cham = cham.max(dim=1).values
    elif point_reduction is not None:
        cham = cham.sum(dim=1)
        cham_n = cham_n.sum(dim=1) if cham_n is not None else None
        if point_reduction == "mean":
            denom = x_lengths.clamp(min=1).to(cham.dtype)
            cham = cham / denom
            cham_n = cham_n / denom if cham_n is not None else None
    return cham, cham_n


def _check_normals(name, normals, pts):
    if normals is None:
        return None
    if not torch.is_tensor(normals) or normals.shape != pts.shape:
        shape = tuple(normals.shape) if torch.is_tensor(normals) else type(normals).__name__
        raise ShapeLabError(f"{name}: expected shape {tuple(pts.shape)} like the points, got {shape}")
    if not torch.isfinite(normals).all():
        raise ShapeLabError(f"{name}: contains NaN or infinite values")
    return normals


def chamfer_distance(x, y, x_lengths=None, y_lengths=None, x_normals=None, y_normals=None, weights=None,
                     batch_reduction="mean", point_reduction="mean", norm=2, single_directional=False,
                     abs_cosine=True):
    """Chamfer distance between padded batches of point clouds, as PyTorch3D 0.7.

    Args:
        x: (N, P1, D), y: (N, P2, D) padded clouds; x_lengths, y_lengths: (N,) valid points or None.
        x_normals, y_normals: optional (N, P1, 3) / (N, P2, 3); both must be given for the normal term.
        weights: optional (N,) non-negative per-cloud weights (multiplies the per-point terms).
        batch_reduction: "mean" (÷N, or ÷weights.sum() with weights), "sum" or None -> (N,).
        point_reduction: "mean" (÷ cloud length), "sum", "max" (Hausdorff: max over points, and the
            max of the two directions; normals not allowed) or None -> per-point tuples
            ((N, P1), (N, P2)) (requires batch_reduction=None).
        norm: 2 -> squared Euclidean nearest distances (default), 1 -> L1 distances.
        single_directional: only x -> y.
        abs_cosine: normal term is 1 - |cos| (True) or 1 - cos (False).
    Returns:
        (loss, loss_normals): directions summed (not averaged); loss_normals is None without normals.
    Differentiable in x, y (and the normals). Clouds with length 0 raise ShapeLabError.
    """
    device = x.device if torch.is_tensor(x) else "cpu"
    with single_thread_on_cpu(device):  # the torch ops here are small; see knn.single_thread_on_cpu
        return _chamfer_distance(x, y, x_lengths, y_lengths, x_normals, y_normals, weights, batch_reduction,
                                 point_reduction, norm, single_directional, abs_cosine)


def _chamfer_distance(x, y, x_lengths, y_lengths, x_normals, y_normals, weights, batch_reduction,
                      point_reduction, norm, single_directional, abs_cosine):
    if batch_reduction not in ("mean", "sum", None):
        raise ShapeLabError(f'batch_reduction={batch_reduction!r}: expected "mean", "sum" or None')
    if point_reduction not in ("mean", "sum", "max", None):
        raise ShapeLabError(f'point_reduction={point_reduction!r}: expected "mean", "sum", "max" or None')
    if point_reduction is None and batch_reduction is not None:
        raise ShapeLabError("point_reduction=None requires batch_reduction=None")
    if norm not in (1, 2):
        raise ShapeLabError(f"norm={norm}: only 1 and 2 are supported")
    x_lengths = _check_batch("x", x, x_lengths, "x_lengths")
    y_lengths = _check_batch("y", y, y_lengths, "y_lengths")
    N = x.shape[0]
    if y.shape[0] != N or y.shape[2] != x.shape[2]:
        raise ShapeLabError(f"x {tuple(x.shape)} and y {tuple(y.shape)}: expected the same N and D")
    for name, lengths in (("x", x_lengths), ("y", y_lengths)):
        if (lengths == 0).any():
            bad = torch.nonzero(lengths == 0)[:, 0].tolist()
            raise ShapeLabError(f"{name}: clouds {bad} of the batch are empty; Chamfer distance is undefined")
    x_normals = _check_normals("x_normals", x_normals, x)
    y_normals = _check_normals("y_normals", y_normals, y)
    if (x_normals is None) != (y_normals is None):
        x_normals = y_normals = None  # PyTorch3D: the normal term needs both
    if point_reduction == "max" and x_normals is not None:
        raise ShapeLabError('point_reduction="max" cannot be combined with normals')
    if weights is not None:
        weights = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
        if weights.shape != (N,):
            raise ShapeLabError(f"weights: expected shape ({N},), got {tuple(weights.shape)}")
        if (weights < 0).any():
            raise ShapeLabError("weights: must be non-negative")
        if weights.sum() == 0:  # all-zero weights: a zero loss that still carries a graph
            zero = (x.sum((1, 2)) * weights) * 0.0
            if batch_reduction is not None:
                zero = zero.sum()
            return zero, (zero if x_normals is not None else None)

    args = (weights, point_reduction, norm, abs_cosine)
    cham_x, norm_x = _one_direction(x, y, x_lengths, y_lengths, x_normals, y_normals, *args)
    if single_directional:
        loss, loss_n = cham_x, norm_x
    else:
        cham_y, norm_y = _one_direction(y, x, y_lengths, x_lengths, y_normals, x_normals, *args)
        if point_reduction == "max":
            loss, loss_n = torch.maximum(cham_x, cham_y), None
        elif point_reduction is None:
            return (cham_x, cham_y), ((norm_x, norm_y) if norm_x is not None else None)
        else:
            loss = cham_x + cham_y
            loss_n = norm_x + norm_y if norm_x is not None else None
    if batch_reduction is None:
        return loss, loss_n
    loss = loss.sum()
    loss_n = loss_n.sum() if loss_n is not None else None
    if batch_reduction == "mean":
        div = weights.sum() if weights is not None else N
        loss = loss / div
        loss_n = loss_n / div if loss_n is not None else None
    return loss, loss_n
