"""Neural Parts losses, as defined in the original code (paschalidoud/neural_parts `losses/`).

Weights and settings of `config/dfaust_6.yaml`: reconstruction (`true_chamfer_loss`) 0.3,
normal consistency 0.01, occupancy (`implicit_surface_loss`) 1.0, coverage (`min_points_loss`)
0.01, overlap (`non_overlapping_regularizer`) 0.1; sharpness 250 (tau = 0.004), k = 10,
max shared points 1.95.

Shapes: B batch, M primitives, S points per primitive, N volume points, N2 target surface points.
phi < 0 inside a primitive. Each loss is a pure function returning a scalar tensor.
"""
import torch
import torch.nn.functional as F

from modules.geometry import knn_points
from modules.utils import ShapeLabError

DEFAULT_WEIGHTS = {"reconstruction": 0.3, "normal_consistency": 0.01, "occupancy": 1.0,
                   "coverage": 0.01, "overlap": 0.1}


def _nn_dist(p1, p2):
    """Euclidean (not squared) distance from each point of p1 (B,P1,3) to its nearest in p2 (B,P2,3)."""
    return torch.sqrt(knn_points(p1, p2, K=1).dists[..., 0].clamp_min(1e-12))


def _per_point(t, name, B, N):
    """Labels / weights given as (B, N) or (B, N, 1) -> (B, N, 1)."""
    if t.shape == (B, N):
        t = t[..., None]
    if t.shape != (B, N, 1):
        raise ShapeLabError(f"neural parts loss: {name} of shape {tuple(t.shape)}, expected ({B}, {N})")
    return t


def true_chamfer_loss(y_prim, on_surface, target_points, target_to_prim_weight=1.0,
                      prim_to_target_weight=1.0):
    """Euclidean Chamfer between the primitives' surface points and the target surface.

    y_prim (B,S,M,3), on_surface (B,S,M) bool, target_points (B,N2,3).
    target->prim: mean over target points of the distance to the nearest of all S*M points
    (the original computes a masked copy but takes the min over the unmasked distances).
    prim->target: nearest-target distance of the on-surface points, internal ones set to 0,
    mean over all B*S*M, divided by the on-surface fraction (0 when no point is on the surface;
    the original gives NaN there).
    """
    B, S, M, D = y_prim.shape
    prim = y_prim.reshape(B, S * M, D)
    target_to_prim = _nn_dist(target_points, prim).mean()
    prim_dists = _nn_dist(prim, target_points).view(B, S, M).masked_fill(~on_surface, 0.0)
    frac = on_surface.to(prim_dists.dtype).mean()
    prim_to_target = torch.where(frac > 0, prim_dists.mean() / frac.clamp_min(1e-12), prim_dists.sum() * 0)
    return target_to_prim_weight * target_to_prim + prim_to_target_weight * prim_to_target


def normal_consistency_loss(phi_surface, surface_points, normals):
    """mean(1 - <n_gt, grad phi / |grad phi|>), phi of the primitive with the smallest phi^2.

    phi_surface (B,N2,M) computed from surface_points (B,N2,3) (which must require grad),
    normals (B,N2,3) unit outward normals. The gradient is taken with create_graph=True so the
    loss trains the network.
    """
    if not surface_points.requires_grad:
        raise ShapeLabError("normal_consistency_loss: surface_points must be the tensor phi_surface was "
                            "computed from, with requires_grad (NeuralParts.forward returns it)")
    owner = torch.square(phi_surface).argmin(dim=2, keepdim=True)           # (B, N2, 1)
    phi_owner = phi_surface.gather(2, owner)
    grad = torch.autograd.grad(phi_owner.sum(), surface_points, retain_graph=True, create_graph=True)[0]
    n_hat = grad / torch.sqrt(torch.square(grad).sum(-1, keepdim=True)).clamp_min(1e-12)
    return (1 - (normals * n_hat).sum(-1)).mean()


def implicit_surface_loss(phi_volume, labels, weights=None, sharpness=250.0, smooth_max=False):
    """Weighted BCE of the union's occupancy: logits = max_m sharpness * (-phi_m).

    phi_volume (B,N,M), labels (B,N) in {0,1} (1 inside), weights (B,N) or None (all 1).
    smooth_max uses logsumexp instead of max (an option of the original, off by default).
    """
    B, N, _ = phi_volume.shape
    labels = _per_point(labels, "labels", B, N).to(phi_volume.dtype)
    logits = sharpness * (-phi_volume)
    union = torch.logsumexp(logits, -1, keepdim=True) if smooth_max else logits.max(-1, keepdim=True)[0]
    loss = F.binary_cross_entropy_with_logits(union, labels, reduction="none")
    if weights is not None:
        loss = _per_point(weights, "weights", B, N).to(loss.dtype) * loss
    return loss.mean()


def min_points_loss(phi_volume, labels, k=10, sharpness=250.0):
    """Coverage: each primitive should contain its k innermost target-interior points.

    phi_volume (B,N,M), labels (B,N). Outside points get +1e6, the k smallest phi per primitive
    (along N) are kept, loss = mean(-log(sigmoid(-sharpness * phi) + 1e-6)).
    """
    B, N, _ = phi_volume.shape
    if not 1 <= int(k) <= N:
        raise ShapeLabError(f"min_points_loss: k={k} with {N} volume points; expected 1 <= k <= N")
    labels = _per_point(labels, "labels", B, N).to(phi_volume.dtype)
    implicit = phi_volume + (1 - labels) * 1e6
    implicit = torch.topk(implicit, int(k), dim=1, largest=False, sorted=False)[0]
    return -torch.log(torch.sigmoid(-sharpness * implicit) + 1e-6).mean()


def non_overlapping_regularizer(phi_volume, max_shared_points=1.95, sharpness=250.0):
    """Overlap: mean over points of relu(sum_m sigmoid(-sharpness * phi_m) - max_shared_points)."""
    return (torch.sigmoid(sharpness * (-phi_volume)).sum(-1) - max_shared_points).relu().mean()


def neural_parts_loss(pred, batch, weights=None, sharpness=250.0, min_n_points=10,
                      max_shared_points=1.95, points_on_primitives_key="points_on_primitives"):
    """The original's weighted sum of the five losses.

    pred: NeuralParts.forward output (points_on_primitives, on_surface, phi_volume, phi_surface,
    surface_points). batch: "occ" (B,N) volume labels, optional "weights" (B,N),
    "surface_points" (B,N2,3), "surface_normals" (B,N2,3).
    weights: dict overriding DEFAULT_WEIGHTS; a weight of 0 switches that term off (it is not
    computed, so its inputs need not exist), e.g. for the ablation.
    Returns (total, {name: unweighted term}) for the terms that are on.
    """
    w = dict(DEFAULT_WEIGHTS)
    if weights:
        unknown = sorted(set(weights) - set(w))
        if unknown:
            raise ShapeLabError(f"neural_parts_loss weights: unknown term(s) {unknown}; expected {sorted(w)}")
        w.update({name: float(v) for name, v in weights.items()})

    def need(src, key, where):
        if key not in src:
            raise ShapeLabError(f"neural_parts_loss: {where} has no '{key}' (needed by an active term)")
        return src[key]

    terms = {}
    if w["reconstruction"]:
        terms["reconstruction"] = true_chamfer_loss(
            need(pred, points_on_primitives_key, "pred"), need(pred, "on_surface", "pred"),
            need(batch, "surface_points", "batch"))
    if w["normal_consistency"]:
        terms["normal_consistency"] = normal_consistency_loss(
            need(pred, "phi_surface", "pred"), need(pred, "surface_points", "pred"),
            need(batch, "surface_normals", "batch"))
    if w["occupancy"] or w["coverage"] or w["overlap"]:
        phi_volume = need(pred, "phi_volume", "pred")
        if w["occupancy"]:
            terms["occupancy"] = implicit_surface_loss(phi_volume, need(batch, "occ", "batch"),
                                                       batch.get("weights"), sharpness)
        if w["coverage"]:
            terms["coverage"] = min_points_loss(phi_volume, need(batch, "occ", "batch"), min_n_points, sharpness)
        if w["overlap"]:
            terms["overlap"] = non_overlapping_regularizer(phi_volume, max_shared_points, sharpness)
    if not terms:
        raise ShapeLabError("neural_parts_loss: every weight is 0; switch at least one term on")
    total = sum(w[name] * value for name, value in terms.items())
    return total, terms
