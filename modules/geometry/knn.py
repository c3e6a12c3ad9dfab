"""Nearest-neighbour search: a scipy KD-tree path for NumPy callers and PyTorch3D-style `knn_points`.

`knn_search_numpy` is the one tree-based search everybody uses (metrics call it).
`knn_points` finds indices without building a graph (KD-tree on CPU for large inputs, chunked
`torch.cdist` on GPU or for tiny inputs), then gathers the neighbours and recomputes the distances
in torch so gradients flow to both clouds.
"""
from collections import namedtuple

import numpy as np
import torch
from scipy.spatial import cKDTree

from modules.utils import ShapeLabError

_KNN = namedtuple("KNN", ["dists", "idx", "knn"])

# Below this many distance evaluations (P1 * P2) per cloud a dense cdist beats building a tree.
_DENSE_MAX_PAIRS = 4_000_000
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
