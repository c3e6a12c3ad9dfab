"""Losses of single-view reconstruction and of fitting one target (CMU 16-889 assignment 2).

- `voxel_loss`     BCE with logits, mean over cells and batch (the assignment's voxel loss)
- `chamfer_loss`   sum over the two directions of the mean squared nearest-neighbour distance, mean
                   over the batch: `modules.geometry.chamfer_distance` with its defaults (PyTorch3D
                   semantics), which is the assignment's hand-written Chamfer loss
- `mesh_fit_loss`  w_chamfer * Chamfer(samples of the mesh, target points) + w_smooth * uniform Laplacian
                   (+ w_edge * edge length^2, + w_normal * normal consistency), as `fit_data.py`
- `implicit_loss`  BCE on occupancy logits at query points (ONet)
- `fit_loss`       dispatch on the fit type ("vox" | "point" | "mesh") for a fitting loop
"""
import torch
import torch.nn.functional as F

from modules.geometry.chamfer import chamfer_distance
from modules.geometry.mesh_losses import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from modules.geometry.meshes import Meshes
from modules.geometry.sample_points_from_meshes import sample_points_from_meshes
from modules.utils import ShapeLabError

FIT_TYPES = ("vox", "point", "mesh")


def _shape(x):
    return tuple(x.shape) if torch.is_tensor(x) else type(x).__name__


def voxel_loss(logits, target_occ):
    """Mean binary cross-entropy of occupancy logits (B, R, R, R) against 0/1 (or soft) targets of the same
    shape; a channel axis of size 1 on either side, (B, 1, R, R, R), is dropped first."""
    if torch.is_tensor(logits) and logits.ndim == 5 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if torch.is_tensor(target_occ) and target_occ.ndim == 5 and target_occ.shape[1] == 1:
        target_occ = target_occ[:, 0]
    if not torch.is_tensor(logits) or not torch.is_tensor(target_occ) or logits.shape != target_occ.shape \
            or logits.ndim != 4:
        raise ShapeLabError(f"voxel_loss: expected logits and target voxels of the same shape (B, R, R, R), got "
                            f"{_shape(logits)} and {_shape(target_occ)}")
    return F.binary_cross_entropy_with_logits(logits, target_occ.to(logits.dtype))


def chamfer_loss(pred_points, gt_points):
    """Squared Chamfer distance between (B, N, 3) and (B, M, 3) clouds -> scalar.

    mean_b [ mean_i min_j |p_i - g_j|^2 + mean_j min_i |g_j - p_i|^2 ]: the two directions are summed,
    not averaged (PyTorch3D `chamfer_distance` and the assignment's loss).
    """
    for name, pts in (("pred_points", pred_points), ("gt_points", gt_points)):
        if not torch.is_tensor(pts) or pts.ndim != 3 or pts.shape[-1] != 3 or pts.shape[1] == 0:
            raise ShapeLabError(f"chamfer_loss: {name} must have shape (B, N>0, 3), got {_shape(pts)}")
    if pred_points.shape[0] != gt_points.shape[0]:
        raise ShapeLabError(f"chamfer_loss: batch sizes differ, pred {pred_points.shape[0]} vs "
                            f"gt {gt_points.shape[0]}")
    return chamfer_distance(pred_points, gt_points.to(pred_points.dtype))[0]


def mesh_fit_loss(verts, faces, gt_points, n_points=5000, w_chamfer=1.0, w_smooth=0.1, w_edge=0.0, w_normal=0.0):
    """The assignment's mesh loss -> (loss scalar, terms dict of detached scalars).

    Args:
        verts: (B, V, 3) predicted vertices; faces: (F, 3) int64 shared by the batch (or a list of B).
        gt_points: (B, M, 3) target surface points (the caller samples the target mesh, as the seed does
            with `sample_points_from_meshes(gt, n_points)` every step).
        n_points: points sampled on each predicted mesh (area-uniform, differentiable in the vertices).
        w_chamfer, w_smooth, w_edge, w_normal: weights of Chamfer, uniform Laplacian smoothing
            (PyTorch3D `mesh_laplacian_smoothing`), `mesh_edge_loss` (target length 0) and
            `mesh_normal_consistency`; a term with weight 0 is not computed.
    """
    if not torch.is_tensor(verts) or verts.ndim != 3 or verts.shape[-1] != 3:
        raise ShapeLabError(f"mesh_fit_loss: verts must have shape (B, V, 3), got {_shape(verts)}")
    if int(n_points) < 1:
        raise ShapeLabError(f"mesh_fit_loss: n_points={n_points}, expected >= 1")
    faces_list = list(faces) if isinstance(faces, (list, tuple)) else [faces] * verts.shape[0]
    meshes = Meshes(list(verts), faces_list)
    terms = {}
    loss = verts.new_zeros(())
    if w_chamfer:
        terms["chamfer"] = chamfer_loss(sample_points_from_meshes(meshes, int(n_points)), gt_points)
        loss = loss + w_chamfer * terms["chamfer"]
    if w_smooth:
        terms["smooth"] = mesh_laplacian_smoothing(meshes, method="uniform")
        loss = loss + w_smooth * terms["smooth"]
    if w_edge:
        terms["edge"] = mesh_edge_loss(meshes)
        loss = loss + w_edge * terms["edge"]
    if w_normal:
        terms["normal"] = mesh_normal_consistency(meshes)
        loss = loss + w_normal * terms["normal"]
    return loss, {k: v.detach() for k, v in terms.items()}


def implicit_loss(logits, occ):
    """Mean BCE of occupancy logits (B, Q) at query points against 0/1 labels (B, Q)."""
    if not torch.is_tensor(logits) or not torch.is_tensor(occ) or logits.shape != occ.shape or logits.ndim != 2:
        raise ShapeLabError(f"implicit_loss: expected logits and occupancies of the same shape (B, Q), got "
                            f"{_shape(logits)} and {_shape(occ)}")
    return F.binary_cross_entropy_with_logits(logits, occ.to(logits.dtype))


def fit_loss(fit_type, prediction, target, n_points=5000, w_chamfer=1.0, w_smooth=0.1, w_edge=0.0, w_normal=0.0):
    """One fitting objective (the seed's `fit_data.py`) -> (loss, terms dict).

    fit_type "vox": prediction logits (1, R, R, R), target occupancy of the same shape.
    fit_type "point": prediction points (1, N, 3), target points (1, M, 3); Chamfer.
    fit_type "mesh": prediction (verts (1, V, 3), faces (F, 3)), target points (1, M, 3); `mesh_fit_loss`.
    """
    if fit_type == "vox":
        loss = voxel_loss(prediction, target)
        return loss, {"bce": loss.detach()}
    if fit_type == "point":
        loss = chamfer_loss(prediction, target)
        return loss, {"chamfer": loss.detach()}
    if fit_type == "mesh":
        verts, faces = prediction
        return mesh_fit_loss(verts, faces, target, n_points, w_chamfer, w_smooth, w_edge, w_normal)
    raise ShapeLabError(f"--type {fit_type!r}: expected one of {', '.join(FIT_TYPES)}")
