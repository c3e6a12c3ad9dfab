"""Nearest-neighbour search: a scipy KD-tree path for NumPy callers and PyTorch3D-style `knn_points`.

`knn_search_numpy` is the one tree-based search everybody uses (metrics call it).
`knn_points` finds indices without building a graph (KD-tree on CPU for large inputs, chunked
`torch.cdist` on GPU or for tiny inputs), then gathers the neighbours and recomputes the distances
in torch so gradients flow to both clouds.
"""
import contextlib
from collections import namedtuple

import numpy as np
import torch
from scipy.spatial import cKDTree

from modules.utils import ShapeLabError

_KNN = namedtuple("KNN", ["dists", "idx", "knn"])

# Below this many distance evaluations (P1 * P2) per cloud a dense cdist beats building a tree
# (measured on 2 cores: 512 x 512 about even, 1024 x 1024 K=16 tree 2x faster, 2048 x 2048 7x).
_DENSE_MAX_PAIRS = 512 * 512
# Pairs per cdist chunk (memory bound: ~4 bytes each).
_CHUNK_PAIRS = 16_000_000


def _check_cloud_numpy(name, pts):
    if not isinstance(pts, np.ndarray):
        pts = np.asarray(pts)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ShapeLabError(f"{name}: expected an array of shape (P, 3), got {tuple(pts.shape)}")
    if pts.shape[0] == 0:
        raise ShapeLabError(f"{name}: the point cloud is empty")
    if not np.isfinite(pts).all():
        raise ShapeLabError(f"{name}: contains NaN or infinite coordinates")
    return pts


def knn_search_numpy(query, ref, k=1, workers=-1):
    """K nearest neighbours of each `query` point in `ref` with scipy's cKDTree.

    Args:
        query: (P, 3) array.  ref: (R, 3) array.  k: neighbours per point (k <= R).
        workers: threads for the query (-1 = all cores).
    Returns:
        dists: (P, k) float64, unsquared Euclidean distances, ascending.
        idx:   (P, k) int64 indices into `ref`.
    """
    query = _check_cloud_numpy("query", query)
    ref = _check_cloud_numpy("ref", ref)
    if not 1 <= k <= ref.shape[0]:
        raise ShapeLabError(f"k={k}: expected 1 <= k <= number of reference points ({ref.shape[0]})")
    tree = cKDTree(np.asarray(ref, dtype=np.float64))
    dists, idx = tree.query(np.asarray(query, dtype=np.float64), k=k, workers=workers)
    dists = np.asarray(dists, dtype=np.float64).reshape(query.shape[0], k)
    idx = np.asarray(idx, dtype=np.int64).reshape(query.shape[0], k)
    return dists, idx


@contextlib.contextmanager
def single_thread_on_cpu(device):
    """Run small CPU tensor ops on one thread: at these sizes (~1e5 elements) splitting the work
    saves little, and when the cores are shared a parallel region waits on descheduled threads
    (measured: chamfer 30k backward 1 ms on one thread vs 170-290 ms on two under load)."""
    threads = torch.get_num_threads()
    if torch.device(device).type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _NeighbourDistance(torch.autograd.Function):
    """dists[n, i, k] = ||p1[n, i] - p2[n, idx[n, i, k]]|| (squared L2 or L1) with a hand-written,
    single-threaded-on-CPU backward (scatter-add into p2)."""

    @staticmethod
    def forward(ctx, p1, p2, idx, norm):
        ctx.save_for_backward(p1, p2, idx)
        ctx.norm = norm
        with single_thread_on_cpu(p1.device):
            diff = p1[:, :, None, :] - knn_gather(p2, idx)
            return (diff * diff).sum(-1) if norm == 2 else diff.abs().sum(-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        p1, p2, idx = ctx.saved_tensors
        N, P1, K = idx.shape
        with single_thread_on_cpu(p1.device):
            diff = p1[:, :, None, :] - knn_gather(p2, idx)
            g = (2.0 * diff if ctx.norm == 2 else diff.sign()) * grad[..., None]  # (N, P1, K, D)
            grad_p1 = g.sum(2) if ctx.needs_input_grad[0] else None
            grad_p2 = None
            if ctx.needs_input_grad[1]:
                D = p2.shape[2]
                grad_p2 = torch.zeros_like(p2).scatter_add_(
                    1, idx.reshape(N, P1 * K, 1).expand(-1, -1, D), -g.reshape(N, P1 * K, D))
        return grad_p1, grad_p2, None, None


def all_finite(t):
    """True when a tensor has no NaN/inf. On CPU via numpy: single-threaded, so it does not stall
    when the cores are shared (torch's threaded reductions then wait on busy cores)."""
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64):
        return bool(np.isfinite(t.detach().numpy()).all())
    return bool(torch.isfinite(t).all())


def _check_batch(name, pts, lengths, lengths_name):
    """Validate a padded batch (N, P, D) and its lengths; return int64 lengths on pts.device."""
    if not torch.is_tensor(pts) or pts.ndim != 3:
        shape = tuple(pts.shape) if torch.is_tensor(pts) else type(pts).__name__
        raise ShapeLabError(f"{name}: expected a tensor of shape (N, P, D), got {shape}")
    N, P, _ = pts.shape
    if P == 0:
        raise ShapeLabError(f"{name}: the point clouds are empty (P = 0)")
    if not all_finite(pts):
        raise ShapeLabError(f"{name}: contains NaN or infinite coordinates")
    if lengths is None:
        return torch.full((N,), P, dtype=torch.int64, device=pts.device)
    lengths = torch.as_tensor(lengths, device=pts.device)
    if lengths.shape != (N,):
        raise ShapeLabError(f"{lengths_name}: expected shape ({N},), got {tuple(lengths.shape)}")
    lengths = lengths.to(torch.int64)
    if (lengths < 0).any() or (lengths > P).any():
        raise ShapeLabError(f"{lengths_name}: values must lie in [0, {P}], got {lengths.tolist()}")
    return lengths


def _check_pair(p1, p2, lengths1, lengths2):
    """Validate two padded clouds (N,P1,D) and (N,P2,D) with their lengths; returns the lengths."""
    lengths1 = _check_batch("p1", p1, lengths1, "lengths1")
    lengths2 = _check_batch("p2", p2, lengths2, "lengths2")
    if p2.shape[0] != p1.shape[0] or p2.shape[2] != p1.shape[2]:
        raise ShapeLabError(f"p1 {tuple(p1.shape)} and p2 {tuple(p2.shape)}: expected the same N and D")
    return lengths1, lengths2


def _use_tree(p1, p2, lengths1, lengths2):
    """KD-tree on CPU for low-dimensional clouds that are big enough to amortise building it."""
    if p1.device.type != "cpu" or p1.shape[2] > 8:
        return False
    return int((lengths1 * lengths2).max()) > _DENSE_MAX_PAIRS


@torch.no_grad()
def _knn_idx_tree(p1, p2, lengths1, lengths2, norm, K):
    N, P1, _ = p1.shape
    idx = torch.zeros((N, P1, K), dtype=torch.int64)
    for n in range(N):
        l1, l2 = int(lengths1[n]), int(lengths2[n])
        k = min(K, l2)
        if l1 == 0 or k == 0:
            continue
        ref = p2[n, :l2].detach().numpy().astype(np.float64)  # numpy copies on one thread
        qry = p1[n, :l1].detach().numpy().astype(np.float64)
        _, nn = cKDTree(ref).query(qry, k=k, p=norm, workers=-1)
        idx[n, :l1, :k] = torch.from_numpy(np.asarray(nn, dtype=np.int64).reshape(l1, k))
    return idx


@torch.no_grad()
def _knn_idx_dense(p1, p2, lengths1, lengths2, norm, K):
    """Chunked brute force over cdist; padded p2 points get +inf."""
    N, P1, _ = p1.shape
    P2 = p2.shape[1]
    k = min(K, P2)
    idx = torch.zeros((N, P1, K), dtype=torch.int64, device=p1.device)
    # exact differences for 3D points on CPU (ties resolved like the naive reference); the matmul
    # form on GPU and for feature spaces (D > 8, e.g. DGCNN's dynamic graph), where it is much faster
    fast = p1.is_cuda or p1.shape[2] > 8
    mode = "use_mm_for_euclid_dist_if_necessary" if fast else "donot_use_mm_for_euclid_dist"
    pad2 = torch.arange(P2, device=p1.device)[None, :] >= lengths2[:, None]  # (N, P2)
    chunk = max(1, _CHUNK_PAIRS // max(1, N * P2))
    for start in range(0, P1, chunk):
        d = torch.cdist(p1[:, start:start + chunk], p2, p=float(norm), compute_mode=mode)
        d.masked_fill_(pad2[:, None, :], float("inf"))
        idx[:, start:start + chunk, :k] = d.topk(k, dim=2, largest=False, sorted=True).indices
    return idx


def _pad_mask(lengths1, lengths2, P1, K):
    """(N, P1, K) True where an entry is padding (query point past lengths1 or k >= lengths2)."""
    dev = lengths1.device
    m1 = torch.arange(P1, device=dev)[None, :] >= lengths1[:, None]
    m2 = torch.arange(K, device=dev)[None, :] >= lengths2[:, None]
    return m1[:, :, None] | m2[:, None, :]


def knn_gather(x, idx, lengths=None):
    """Gather neighbours: x (N, M, U), idx (N, L, K) -> (N, L, K, U).

    Entries with k >= lengths[n] (a cloud with fewer than K points) are set to 0, as in PyTorch3D.
    Differentiable in x.
    """
    N, M, U = x.shape
    _, L, K = idx.shape
    out = x.gather(1, idx.reshape(N, L * K, 1).expand(-1, -1, U)).view(N, L, K, U)
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=x.device)
        mask = torch.arange(K, device=x.device)[None, :] >= lengths[:, None]  # (N, K)
        if mask.any():
            out = out.masked_fill(mask[:, None, :, None], 0.0)
    return out


def knn_points(p1, p2, lengths1=None, lengths2=None, norm=2, K=1, return_nn=False, return_sorted=True):
    """K nearest neighbours of every point of p1 among the points of p2 (PyTorch3D semantics).

    Args:
        p1: (N, P1, D) padded query clouds.  p2: (N, P2, D) padded reference clouds.
        lengths1, lengths2: (N,) int valid points per cloud, or None for "all".
        norm: 2 -> squared Euclidean distances; 1 -> L1 (|dx|+|dy|+|dz|) distances.
        K: neighbours per point.  return_nn: also return the neighbour coordinates.
        return_sorted: results are always sorted by distance (a valid answer either way).
    Returns:
        namedtuple KNN(dists (N, P1, K), idx (N, P1, K) int64, knn (N, P1, K, D) or None).
        Padding (query points past lengths1, or k >= lengths2[n]) has dists 0, idx 0 and knn 0,
        exactly as PyTorch3D. dists are differentiable in both p1 and p2.
    Indices come from a scipy KD-tree on CPU for large low-dimensional clouds and from a chunked
    exact brute force otherwise (small inputs, GPU, D > 8); distances are recomputed in torch.
    """
    if norm not in (1, 2):
        raise ShapeLabError(f"norm={norm}: only 1 (L1) and 2 (squared L2) are supported")
    if int(K) < 1:
        raise ShapeLabError(f"K={K}: expected K >= 1")
    K = int(K)
    lengths1, lengths2 = _check_pair(p1, p2, lengths1, lengths2)
    return _knn_points_checked(p1, p2, lengths1, lengths2, norm, K, return_nn)


def _knn_points_checked(p1, p2, lengths1, lengths2, norm, K, return_nn):
    """knn_points on validated inputs (int64 lengths on p1's device)."""
    N, P1, D = p1.shape
    with single_thread_on_cpu(p1.device):
        if _use_tree(p1, p2, lengths1, lengths2):
            idx = _knn_idx_tree(p1, p2, lengths1, lengths2, norm, K)
        else:
            idx = _knn_idx_dense(p1, p2, lengths1, lengths2, norm, K)
        pad = _pad_mask(lengths1, lengths2, P1, K)
        idx = idx.masked_fill(pad, 0)
    dists = _NeighbourDistance.apply(p1, p2, idx, norm)  # (N, P1, K)
    with single_thread_on_cpu(p1.device):
        dists = dists.masked_fill(pad, 0.0)
        nn = knn_gather(p2, idx).masked_fill(pad[..., None], 0.0) if return_nn else None
    return _KNN(dists=dists, idx=idx, knn=nn)
