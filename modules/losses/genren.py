"""genren's loss terms as pure functions (the original's `losses.py`, `graphicsutils.py`, `meshutils.py`).

Weights are not applied here (the task multiplies by the config's w_* keys), except inside `mesh_regularization`,
whose internal weights (edge 1500, Laplacian 10, flatten 1) are fixed in the original too.

Shapes: verts (B,V,3); faces (F,3) long; points, normals (B,N,3); R (B,H,3,3); probs (B,H); images (B,C,S,S).
"""
import math

import torch
import torch.nn.functional as F

from modules.geometry.chamfer import chamfer_distance
from modules.geometry.meshes import Meshes
from modules.geometry.sample_points_from_meshes import sample_points_from_meshes


# --- template topology ---------------------------------------------------------------------------------------

def mesh_topology(faces, n_verts):
    """Precomputed topology of a closed fixed-topology template (faces (F,3)) -> dict:
    edges (E,2) unique undirected edges; opposite (E,2) the vertex opposite each edge in its two faces;
    degree (V,) float neighbour counts. Every edge must border exactly two faces (a closed manifold mesh)."""
    f = faces.long()
    directed = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], 0)               # (3F,2)
    opp = torch.cat([f[:, 2], f[:, 0], f[:, 1]], 0)                                   # (3F,)
    key = directed.min(1).values * n_verts + directed.max(1).values
    order = torch.argsort(key, stable=True)
    key, opp, directed = key[order], opp[order], directed[order]
    uniq, counts = torch.unique_consecutive(key, return_counts=True)
    if not bool((counts == 2).all()):
        raise ValueError("mesh_topology: the template must be a closed manifold mesh (each edge in two faces)")
    edges = torch.stack([uniq // n_verts, uniq % n_verts], 1)
    opposite = opp.view(-1, 2)
    degree = torch.zeros(n_verts).index_add_(0, edges.reshape(-1), torch.ones(edges.numel()))
    return {"edges": edges, "opposite": opposite, "degree": degree}


def laplacian_loss(verts, topology):
    """SoftRas's LaplacianLoss (average=True): sum over vertices of |x_i - mean of its neighbours|², averaged over
    the batch. (B,V,3) -> scalar. (PyTorch3D's mesh_laplacian_smoothing averages unsquared norms instead.)"""
    e, deg = topology["edges"].to(verts.device), topology["degree"].to(verts.device, verts.dtype)
    nb = torch.zeros_like(verts).index_add(1, e[:, 0], verts[:, e[:, 1]]).index_add(1, e[:, 1], verts[:, e[:, 0]])
    lap = verts - nb / deg[None, :, None]
    return lap.pow(2).sum() / verts.shape[0]


def flatten_loss(verts, topology, eps=1e-5):
    """SoftRas's FlattenLoss (average=True): sum over edges of (cos θ + 1)², θ the dihedral angle between the two
    faces at the edge (0 for a flat surface), averaged over the batch. (B,V,3) -> scalar."""
    e, o = topology["edges"].to(verts.device), topology["opposite"].to(verts.device)
    v0, v1, v2, v3 = verts[:, e[:, 0]], verts[:, e[:, 1]], verts[:, o[:, 0]], verts[:, o[:, 1]]

    def foot(b):
        a = v1 - v0
        bb = b - v0
        a2 = a.pow(2).sum(-1)
        ab = (a * bb).sum(-1)
        cosv = ab / ((a2 + eps).sqrt() * (bb.pow(2).sum(-1) + eps).sqrt() + eps)
        sinv = (1 - cosv.pow(2) + eps).sqrt()
        cb = bb - a * (ab / (a2 + eps))[..., None]
        return cb, (bb.pow(2).sum(-1) + eps).sqrt() * sinv

    cb1, l1 = foot(v2)
    cb2, l2 = foot(v3)
    cos = (cb1 * cb2).sum(-1) / (l1 * l2 + eps)
    return (cos + 1).pow(2).sum() / verts.shape[0]


def mean_squared_edge_length(verts, topology, threshold=1e-4):
    """Mean over batch and edges of the squared edge length, counting only edges with length² > threshold."""
    e = topology["edges"].to(verts.device)
    sq = (verts[:, e[:, 0]] - verts[:, e[:, 1]]).pow(2).sum(-1)
    return (sq * (sq > threshold)).mean()


def mesh_regularization(verts, topology, w_edge=1500.0, w_laplacian=10.0, w_flatten=1.0):
    """genren's MeshRegularizationLoss: 1500·mean squared edge length + 10·Laplacian + 1·flatten. -> scalar."""
    return (w_edge * mean_squared_edge_length(verts, topology) + w_laplacian * laplacian_loss(verts, topology)
            + w_flatten * flatten_loss(verts, topology))


def perturbation_variance(delta, faces):
    """Variance of the vertex offsets delta (B,V,3) within each face, summed over xyz, averaged over faces and batch
    (the original's perturbation_seq_regularizer with one impulse). -> scalar."""
    return delta[:, faces.long()].var(dim=2).sum(-1).mean()


# --- shapes --------------------------------------------------------------------------------------------------

def chamfer_and_normals(verts, faces, points, normals, n_samples=1000):
    """genren's mesh-to-cloud term (compute_cham_and_normals_loss) -> (chamfer, normals), unweighted scalars.

    chamfer = [squared Chamfer, both directions summed, of the vertices vs the points] + [the same for
    n_samples area-sampled surface points]; normals = -|n·n'| at nearest neighbours, both directions summed,
    between the sampled points' face normals and the target normals (in [-2, 0])."""
    direct, _ = chamfer_distance(verts, points)
    mesh = Meshes(verts, faces[None].expand(verts.shape[0], -1, -1))
    samples, sample_normals = sample_points_from_meshes(mesh, n_samples, return_normals=True)
    sampled, normal_term = chamfer_distance(samples, points, x_normals=sample_normals, y_normals=normals)
    return direct + sampled, normal_term - 2.0                      # chamfer_distance gives 1 - |cos| per direction


def sliced_wasserstein_to_normal(x, num_projections=150, generator=None):
    """Sliced Wasserstein-2 (squared, mean over projections and samples) between samples x (B,D) and as many
    N(0, I) samples, on random unit directions (the original's StdNormalSlicedWassersteinMatcher). -> scalar."""
    B, D = x.shape
    prior = torch.randn(B, D, device=x.device, dtype=x.dtype, generator=generator)
    proj = F.normalize(torch.randn(num_projections, D, device=x.device, dtype=x.dtype, generator=generator), dim=1)
    a = torch.sort((x @ proj.T).T, dim=1).values
    b = torch.sort((prior @ proj.T).T, dim=1).values
    return (a - b).pow(2).mean()


# --- rotations and poses -------------------------------------------------------------------------------------

def rotation_angle(R1, R2, eps=1e-6):
    """Geodesic angle in [0, pi] between rotations (...,3,3): arccos((tr(R1 R2^T) - 1)/2), clamped for gradients."""
    tr = (R1 * R2).sum(dim=(-1, -2))
    return torch.acos(((tr - 1.0) / 2.0).clamp(-1.0 + eps, 1.0 - eps))


def weighted_rotation_loss(R_true, R_hyp, probs):
    """sum_h p_h angle(R_true, R_h), averaged over the batch. R_true (B,1|H,3,3), R_hyp (B,H,3,3), probs (B,H)."""
    return (rotation_angle(R_true.expand_as(R_hyp), R_hyp) * probs).sum(1).mean()


def rotation_negentropy(R, probs):
    """-(1/pi) sum_ij p_i p_j angle(R_i, R_j), averaged over the batch: minimising it spreads the hypotheses."""
    D = rotation_angle(R[:, :, None], R[:, None, :])
    return -(probs[:, :, None] * probs[:, None, :] * D).sum(dim=(1, 2)).mean() / math.pi


def sinkhorn_divergence(cost_xy, cost_xx, cost_yy, blur=0.05, p=2, diameter=None, scaling=0.5, final_iters=20):
    """Debiased entropic optimal-transport divergence S(x,y) = OT(x,y) - OT(x,x)/2 - OT(y,y)/2 between uniform
    point clouds, from their cost matrices (N,M), (N,N), (M,M) (cost = distance^p / p as geomloss), with
    epsilon-scaling from diameter^p down to blur^p (geomloss's SamplesLoss('sinkhorn') schedule; log domain), then
    final_iters more iterations at blur^p.
    Differentiable in the costs. -> scalar."""
    diameter = diameter if diameter is not None else float(cost_xy.detach().max().clamp_min(1e-6)) ** (1.0 / p)
    eps_list = [diameter ** p]
    while eps_list[-1] > blur ** p:
        eps_list.append(max(eps_list[-1] * scaling ** p, blur ** p))

    def ot(C):
        n, m = C.shape
        la, lb = -math.log(n), -math.log(m)
        f = torch.zeros(n, dtype=C.dtype, device=C.device)
        g = torch.zeros(m, dtype=C.dtype, device=C.device)
        for eps in eps_list + [eps_list[-1]] * final_iters:      # Gauss-Seidel dual ascent (Sinkhorn in log domain)
            f = -eps * torch.logsumexp(lb + (g[None, :] - C) / eps, dim=1)
            g = -eps * torch.logsumexp(la + (f[:, None] - C) / eps, dim=0)
        return f.mean() + g.mean()
    return ot(cost_xy) - 0.5 * ot(cost_xx) - 0.5 * ot(cost_yy)


def pose_distribution_loss(R_fake, t_fake, R_real, t_real, t_scale=math.pi):
    """genren's Wasserstein3dPoseAdversary generator loss: Sinkhorn divergence (blur 0.05) between the generated
    rotations and the buffered real ones under the geodesic angle as cost (the original's custom cost, diameter
    pi), plus pi x the one between translations under |x - y|²/2 (p=2, diameter 2). R (N,3,3) / (P,3,3),
    t (N,3) / (P,3). -> scalar."""
    def rot_cost(a, b):
        return rotation_angle(a[:, None], b[None, :])

    def t_cost(a, b):
        return torch.cdist(a, b).pow(2) / 2
    r = sinkhorn_divergence(rot_cost(R_fake, R_real), rot_cost(R_fake, R_fake), rot_cost(R_real, R_real),
                            diameter=math.pi)
    t = sinkhorn_divergence(t_cost(t_fake, t_real), t_cost(t_fake, t_fake), t_cost(t_real, t_real), diameter=2.0)
    return r + t_scale * t


# --- images --------------------------------------------------------------------------------------------------

def weighted_image_l1(images, renders, probs):
    """Cycle-2 image loss: sum_h p_h · (mean over pixels of the channel-summed |I - I_h|), averaged over the batch.
    images (B,C,S,S), renders (B,H,C,S,S), probs (B,H)."""
    err = (images[:, None] - renders).abs().mean(dim=(-1, -2)).sum(-1)
    return (probs * err).sum(1).mean()


def weighted_feature_distance(features_a, features_b, probs):
    """Perceptual distance through a critic's normalised block features: sum over blocks of
    sum_h p_h mean |f_a - f_b|, averaged over the batch. features_*: lists of (B*H,C_k,h_k,w_k); probs (B,H)."""
    B, H = probs.shape
    total = 0.0
    for a, b in zip(features_a, features_b):
        total = total + (probs * (a - b).abs().mean(dim=(1, 2, 3)).view(B, H)).sum(1).mean()
    return total


def wgan_critic_loss_with_drift(real_scores, fake_scores, drift=0.01):
    """mean D(fake) - mean D(real) + drift·mean D(real)² (genren's wasserstein_loss_dis, drift 0.01)."""
    return fake_scores.mean() - real_scores.mean() + drift * real_scores.pow(2).mean()
