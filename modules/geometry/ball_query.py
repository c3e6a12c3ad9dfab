"""Ball query (PointNet++ grouping) with PyTorch3D semantics: the first K points of p2, in index
order, whose squared distance to a query point is strictly below radius**2."""
import numpy as np
import torch
from scipy.spatial import cKDTree

from modules.geometry.knn import (_KNN, _CHUNK_PAIRS, _DENSE_MAX_PAIRS, _NeighbourDistance, _check_pair,
                                  knn_gather, single_thread_on_cpu)
from modules.utils import ShapeLabError


@torch.no_grad()
def _ball_idx_dense(p1, p2, lengths1, lengths2, K, r2):
    N, P1, _ = p1.shape
    P2 = p2.shape[1]
    k = min(K, P2)
    idx = torch.full((N, P1, K), -1, dtype=torch.int64, device=p1.device)
    order = torch.arange(P2, device=p1.device)
    valid2 = order[None, :] < lengths2[:, None]  # (N, P2)
    chunk = max(1, _CHUNK_PAIRS // max(1, N * P2))
    for s in range(0, P1, chunk):
        diff = p1[:, s:s + chunk, None, :] - p2[:, None, :, :]
        inside = ((diff * diff).sum(-1) < r2) & valid2[:, None, :]
        # smallest indices among the points inside: key = index if inside else P2 (sorts last)
        key = torch.where(inside, order, torch.full_like(order, P2))
        first = key.topk(k, dim=2, largest=False, sorted=True).values
        idx[:, s:s + chunk, :k] = torch.where(first < P2, first, torch.full_like(first, -1))
    return idx


@torch.no_grad()
def _ball_idx_tree(p1, p2, lengths1, lengths2, K, radius):
    N, P1, _ = p1.shape
    idx = torch.full((N, P1, K), -1, dtype=torch.int64)
    r2 = np.asarray(radius * radius, dtype=p1.detach().numpy().dtype)
    for n in range(N):
        l1, l2 = int(lengths1[n]), int(lengths2[n])
        if l1 == 0 or l2 == 0:
            continue
        ref = p2[n, :l2].detach().numpy()
        qry = p1[n, :l1].detach().numpy()
        # candidates within radius (<=, sorted by index), then the strict test in the input dtype
        lists = cKDTree(ref).query_ball_point(qry, r=radius, return_sorted=True, workers=-1)
        counts = np.fromiter((len(c) for c in lists), dtype=np.int64, count=l1)
        if counts.sum() == 0:
            continue
        cols = np.concatenate([np.asarray(c, dtype=np.int64) for c in lists])
        rows = np.repeat(np.arange(l1), counts)
        diff = qry[rows] - ref[cols]
        keep = (diff * diff).sum(-1) < r2
        rows, cols = rows[keep], cols[keep]
        # rank of each neighbour within its row (rows are grouped and sorted by column)
        starts = np.searchsorted(rows, np.arange(l1))
        rank = np.arange(rows.size) - starts[rows]
        first = rank < K
        idx[n, rows[first], rank[first]] = torch.from_numpy(cols[first])
    return idx


def ball_query(p1, p2, lengths1=None, lengths2=None, K=500, radius=0.2, return_nn=True):
    """Up to K neighbours of each p1 point inside a ball of `radius` in p2 (PyTorch3D semantics).

    Args:
        p1: (N, P1, D) query clouds, p2: (N, P2, D) reference clouds (padded); lengths1/2: (N,) or None.
        K: maximum neighbours per query; the FIRST K in p2's index order are kept (not the nearest).
        radius: a p2 point counts when its squared distance is strictly below radius**2.
    Returns:
        namedtuple (dists (N, P1, K) squared distances, idx (N, P1, K) int64, knn (N, P1, K, D) or None);
        missing neighbours have idx -1, dists 0 and knn 0. dists/knn are differentiable in p1 and p2.
    Candidate search uses a scipy KD-tree on CPU for large low-dimensional clouds, otherwise a chunked
    exact brute force.
    """
    if int(K) < 1:
        raise ShapeLabError(f"K={K}: expected K >= 1")
    if not radius > 0:
        raise ShapeLabError(f"radius={radius}: expected a positive radius")
    K = int(K)
    lengths1, lengths2 = _check_pair(p1, p2, lengths1, lengths2)
    N, P1, D = p1.shape
    big = int((lengths1 * lengths2).max()) > _DENSE_MAX_PAIRS
    with single_thread_on_cpu(p1.device):
        if p1.device.type == "cpu" and D <= 8 and big:
            idx = _ball_idx_tree(p1, p2, lengths1, lengths2, K, float(radius))
        else:
            idx = _ball_idx_dense(p1.detach(), p2.detach(), lengths1, lengths2, K, float(radius) ** 2)
        # query points past lengths1 have no neighbours
        idx = idx.masked_fill((torch.arange(P1, device=p1.device)[None, :] >= lengths1[:, None])[..., None], -1)
        missing = idx < 0
        safe = idx.clamp(min=0)
    dists = _NeighbourDistance.apply(p1, p2, safe, 2)
    with single_thread_on_cpu(p1.device):
        dists = dists.masked_fill(missing, 0.0)
        nn = knn_gather(p2, safe).masked_fill(missing[..., None], 0.0) if return_nn else None
    return _KNN(dists=dists, idx=idx, knn=nn)
