"""Exact greedy farthest point sampling (PointNet++), vectorised over the batch in torch."""
import numpy as np
import torch

from modules.geometry.knn import _check_batch, single_thread_on_cpu
from modules.utils import ShapeLabError


# The torch-only loop (used on GPU) also runs on CPU when this is False; tests use it to cover that path.
_NUMPY_ARGMAX_ON_CPU = True


def masked_gather(points, idx):
    """points (N, P, D), idx (N, K) with -1 padding -> (N, K, D), padded rows 0. Differentiable."""
    N, _, D = points.shape
    safe = idx.clamp(min=0)
    out = points.gather(1, safe[..., None].expand(-1, -1, D))
    return out.masked_fill((idx < 0)[..., None], 0.0)


@torch.no_grad()
def _fps_indices(points, lengths, k_max, start):
    """Greedy FPS on all clouds at once: one min-distance update and one argmax per step.

    On CPU the per-step work is tiny (N*P floats), so torch runs single-threaded for the call
    (fork/join per step costs more than it saves and stalls when cores are shared) and the
    argmax is numpy's, which is SIMD-vectorised and ~10x faster than torch's row argmax on CPU.
    """
    N, P, D = points.shape
    device = points.device
    on_cpu = device.type == "cpu" and _NUMPY_ARGMAX_ON_CPU
    with single_thread_on_cpu(device):
        coords = [points[..., d].contiguous() for d in range(D)]  # D x (N, P), contiguous for speed
        # Padded points get -1 so argmax never prefers them over a valid point (valid ones are >= 0).
        min_d = torch.full((N, P), float("inf"), dtype=points.dtype, device=device)
        min_d.masked_fill_(torch.arange(P, device=device)[None, :] >= lengths[:, None], -1.0)
        dist = torch.empty_like(min_d)
        tmp = torch.empty_like(min_d)
        idx = torch.empty((N, k_max), dtype=torch.int64, device=device)
        if on_cpu:
            coords_np = [c.numpy() for c in coords]
            min_np = min_d.numpy()
            idx_np = idx.numpy()
            rows = np.arange(N)
            sel = start.numpy().copy()
        else:
            rows = torch.arange(N, device=device)
            sel = start
        for i in range(k_max):
            if on_cpu:
                idx_np[:, i] = sel
            else:
                idx[:, i] = sel
            if i == k_max - 1:
                break
            # squared distance to the last selected point, coordinates summed in a fixed order
            for d in range(D):
                last = torch.from_numpy(coords_np[d][rows, sel]) if on_cpu else coords[d][rows, sel]
                out = dist if d == 0 else tmp
                torch.sub(coords[d], last[:, None], out=out)
                out.mul_(out)
                if d > 0:
                    dist.add_(tmp)
            torch.minimum(min_d, dist, out=min_d)
            # first maximum on ties, as PyTorch3D's kernel
            sel = min_np.argmax(axis=1) if on_cpu else min_d.argmax(dim=1)
    return idx


def sample_farthest_points(points, lengths=None, K=50, random_start_point=False, start_idx=None):
    """Iterative farthest point sampling with PyTorch3D semantics.

    Args:
        points: (N, P, D) padded clouds.  lengths: (N,) valid points per cloud or None.
        K: int, list or (N,) tensor of samples per cloud.
        random_start_point: start each cloud at a uniformly random valid point.
        start_idx: int or (N,) start index (default 0; overrides random_start_point).
    Returns:
        selected points (N, max K, D) (padded rows 0) and indices (N, max K) int64, padded with -1
        where K_n or lengths[n] is smaller than max K. Each step picks the point with the largest
        squared distance to the already selected set (first index on ties). Indices are computed
        without gradient; the gathered points are differentiable in `points`.
    """
    lengths = _check_batch("points", points, lengths, "lengths")
    N, P, _ = points.shape
    device = points.device
    if isinstance(K, int):
        K = torch.full((N,), K, dtype=torch.int64, device=device)
    K = torch.as_tensor(K, dtype=torch.int64, device=device)
    if K.shape != (N,):
        raise ShapeLabError(f"K: expected an int or {N} values, got shape {tuple(K.shape)}")
    if (K < 1).any():
        raise ShapeLabError(f"K: every value must be >= 1, got {K.tolist()}")
    if (lengths == 0).any():
        raise ShapeLabError(f"points: clouds {torch.nonzero(lengths == 0)[:, 0].tolist()} are empty")
    if start_idx is not None:
        start = torch.as_tensor(start_idx, dtype=torch.int64, device=device).expand(N).clone()
        if (start < 0).any() or (start >= lengths).any():
            raise ShapeLabError(f"start_idx={start.tolist()}: must lie in [0, length) of each cloud")
    elif random_start_point:
        start = (torch.rand(N, device=device) * lengths).long().clamp(max=lengths - 1)
    else:
        start = torch.zeros(N, dtype=torch.int64, device=device)
    k_max = int(K.max())
    idx = _fps_indices(points.detach(), lengths, k_max, start)
    keep = torch.arange(k_max, device=device)[None, :] < torch.minimum(K, lengths)[:, None]
    idx = idx.masked_fill(~keep, -1)
    return masked_gather(points, idx), idx


def farthest_point_indices_naive(points, k, start=0):
    """Reference for tests and benchmarks: the textbook greedy loop on one (P,D) NumPy cloud,
    distances summed over coordinates in order. Returns the list of k indices."""
    min_d = np.full(points.shape[0], np.inf, dtype=points.dtype)
    out = [start]
    for _ in range(1, k):
        last = points[out[-1]]
        d = np.zeros(points.shape[0], dtype=points.dtype)
        for c in range(points.shape[1]):
            d = d + (points[:, c] - last[c]) ** 2
        min_d = np.minimum(min_d, d)
        out.append(int(np.argmax(min_d)))
    return out
