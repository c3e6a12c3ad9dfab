"""Inside/outside tests of points against a triangle mesh.

Two methods:
- "raycast": open3d's Embree `RaycastingScene.compute_occupancy`, which counts ray crossings and is
  only correct for watertight, non-self-intersecting meshes. We use `nsamples` (odd) jittered rays per
  point with a majority vote, so a ray grazing an edge or vertex does not flip a point.
- "winding": the generalised winding number (Jacobson et al. 2013), the sum over triangles of the
  signed solid angle each subtends at the point, / 4 pi. It is ~1 inside and ~0 outside a closed
  surface and degrades gracefully for holes, open boundaries and triangle soups; a point is inside
  when |w| > 0.5 (abs, so a mesh whose faces all point inwards still works). Exact summation costs
  O(points x faces) (vectorised, chunked NumPy); above 2e7 point-triangle pairs `fast_winding_number`
  is used instead (exact near the surface, a two-level dipole far field elsewhere, error < 0.01 in our
  tests). Either way it is much slower than ray casting on large inputs.
"auto" uses "raycast" when the mesh is watertight and consistently oriented (`is_watertight`, after
merging duplicate vertices) and "winding" otherwise.
"""
import math

import numpy as np
import torch

from modules.geometry.io import check_mesh_arrays
from modules.utils import ShapeLabError

# Point-triangle pairs per block in the winding-number path: small enough to stay in cache.
_WINDING_CHUNK_PAIRS = 50_000
# Above this many point-triangle pairs the winding number uses the clustered approximation.
_FAST_MIN_PAIRS = 20_000_000


def is_watertight(vertices, faces):
    """Closed and consistently oriented, after merging vertices at the same position.

    Every directed edge (a, b) occurs exactly once and its reverse (b, a) exactly once (what trimesh's
    `is_watertight` and `is_winding_consistent` check together), computed in NumPy without building a
    trimesh object, so the check costs milliseconds next to the ray casting.
    """
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return False
    if _closed_and_oriented(faces):
        return True
    # Duplicated vertices (triangle soups, OBJ seams) split edges; merge identical positions and retry.
    _, merged = np.unique(np.asarray(vertices), axis=0, return_inverse=True)
    return _closed_and_oriented(merged.reshape(-1)[faces])


def _closed_and_oriented(f):
    if np.any((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 2] == f[:, 0])):
        return False  # a collapsed triangle: not a closed 2-manifold surface
    a = f.reshape(-1)
    b = f[:, [1, 2, 0]].reshape(-1)
    n = int(f.max()) + 1
    directed = np.sort(a * n + b)
    if np.any(directed[1:] == directed[:-1]):
        return False  # an edge used twice in the same direction (inconsistent or non-manifold)
    reverse = np.sort(b * n + a)
    return bool(np.array_equal(directed, reverse))


def mesh_contains(vertices, faces, points, method="auto", nsamples=3):
    """Which `points` lie inside the mesh (vertices (V,3), faces (F,3)).

    Args:
        vertices, faces, points: numpy arrays or torch tensors; points (P,3).
        method: "auto" | "raycast" | "winding" (see the module docstring for which is used when).
        nsamples: odd number of jittered rays for the ray-casting majority vote.
    Returns:
        bool (P,) -- a numpy array, or a torch tensor on the points' device when points is a tensor.
    """
    as_torch = isinstance(points, torch.Tensor)
    device = points.device if as_torch else None
    vertices, faces = check_mesh_arrays(_np(vertices), _np(faces), name="mesh_contains mesh")
    points = _np(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ShapeLabError(f"mesh_contains: points must have shape (P,3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ShapeLabError("mesh_contains: points contain NaN or inf")
    if method not in ("auto", "raycast", "winding"):
        raise ShapeLabError(f"mesh_contains: method {method!r}, expected auto, raycast or winding")
    if nsamples < 1 or nsamples % 2 == 0:
        raise ShapeLabError(f"mesh_contains: nsamples must be a positive odd number, got {nsamples}")

    if len(faces) == 0 or len(points) == 0:
        inside = np.zeros(len(points), dtype=bool)
    else:
        if method == "auto":
            method = "raycast" if is_watertight(vertices, faces) else "winding"
        if method == "raycast":
            inside = _raycast_occupancy(vertices, faces, points, nsamples)
        else:
            inside = np.abs(winding_number(vertices, faces, points)) > 0.5
    return torch.from_numpy(inside).to(device) if as_torch else inside


def winding_number(vertices, faces, points, fast=None):
    """Generalised winding number of each point (P,) w.r.t. the triangles (numpy float64 result).

    Solid angle of triangle (a,b,c) seen from p, with A=a-p, B=b-p, C=c-p (Van Oosterom & Strackee):
    tan(omega/2) = A.(BxC) / (|A||B||C| + (A.B)|C| + (B.C)|A| + (C.A)|B|).
    fast=False sums this over every (point, triangle) pair. fast=True uses `fast_winding_number` (a
    clustered far-field approximation, Barill et al. 2018 style); fast=None picks it when there are more
    than _FAST_MIN_PAIRS (point, triangle) pairs.
    """
    vertices, faces, points = _np(vertices), _np(faces), _np(points)
    if fast is None:
        fast = len(points) * len(faces) > _FAST_MIN_PAIRS
    if fast:
        return fast_winding_number(vertices, faces, points)
    tri = vertices.astype(np.float32)[faces]  # (F,3,3)
    corner = [[tri[None, :, k, i] for i in range(3)] for k in range(3)]  # corner[k][i]: (1,F)
    points = points.astype(np.float32)
    chunk = max(1, _WINDING_CHUNK_PAIRS // max(1, len(tri)))
    out = np.empty(len(points), dtype=np.float64)
    for start in range(0, len(points), chunk):
        q = points[start:start + chunk]
        rel = [[corner[k][i] - q[:, i:i + 1] for i in range(3)] for k in range(3)]
        out[start:start + chunk] = _solid_angle_sum(rel)
    return out


def _solid_angle_sum(rel):
    """rel[k][i]: coordinate i of corner k minus the point, arrays (n, m) -> winding sum over m, (n,).

    Plain per-coordinate arithmetic: cache-sized blocks of these measured ~3x faster than (.., 3)-shaped
    torch reductions, and single-threaded NumPy does not suffer from thread contention on a shared CPU.
    """
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = rel
    la = np.sqrt(ax * ax + ay * ay + az * az)
    lb = np.sqrt(bx * bx + by * by + bz * bz)
    lc = np.sqrt(cx * cx + cy * cy + cz * cz)
    det = ax * (by * cz - bz * cy) + ay * (bz * cx - bx * cz) + az * (bx * cy - by * cx)
    denom = (la * lb * lc + (ax * bx + ay * by + az * bz) * lc + (bx * cx + by * cy + bz * cz) * la
             + (cx * ax + cy * ay + cz * az) * lb)
    # omega = 2 atan2(det, denom); w = sum(omega) / (4 pi)
    return np.arctan2(det, denom).sum(1, dtype=np.float64) / (2.0 * math.pi)


def fast_winding_number(vertices, faces, points, cluster_size=32, beta=3.0):
    """Approximate generalised winding number: exact near the surface, dipole far field elsewhere.

    Triangles are sorted along a Morton curve and cut into clusters of `cluster_size` triangles, and the
    clusters into groups of `cluster_size` clusters (a two-level tree). A node whose centre is farther
    than `beta` x its radius from a point contributes its first-order (dipole) term,
    sum(area vectors) . (centre - p) / (4 pi |centre - p|^3) (Barill et al. 2018, first order); groups that
    are near are opened into their clusters, clusters that are near into their triangles, summed exactly.
    With beta = 3 the absolute error stayed below 0.01 on closed and open test meshes (see the tests),
    far below the 0.5 inside threshold.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    points = np.asarray(points, dtype=np.float64)
    m = int(cluster_size)
    tri = vertices[faces]
    tri = tri[np.argsort(_morton_codes(tri.mean(1)), kind="stable")]
    pad = (-len(tri)) % (m * m)
    if pad:  # degenerate triangles (three equal corners) subtend no solid angle and have no area
        tri = np.concatenate([tri, np.repeat(tri[-1:, :1], 3, axis=1).repeat(pad, axis=0)])
    clusters = tri.reshape(-1, m, 3, 3)  # (K, m, 3, 3)
    area_vec = 0.5 * np.cross(clusters[:, :, 1] - clusters[:, :, 0], clusters[:, :, 2] - clusters[:, :, 0])
    dipole1, centre1 = _node_moments(area_vec, clusters.mean(2))
    radius1 = np.linalg.norm(clusters - centre1[:, None, None], axis=-1).max(axis=(1, 2))
    dipole2, centre2 = _node_moments(dipole1.reshape(-1, m, 3), centre1.reshape(-1, m, 3),
                                     np.linalg.norm(area_vec, axis=-1).sum(1).reshape(-1, m))
    radius2 = (np.linalg.norm(centre1.reshape(-1, m, 3) - centre2[:, None], axis=-1)
               + radius1.reshape(-1, m)).max(1)
    clusters32 = clusters.astype(np.float32)
    out = np.zeros(len(points), dtype=np.float64)
    chunk = max(1, _WINDING_CHUNK_PAIRS // len(centre2))
    for start in range(0, len(points), chunk):
        q = points[start:start + chunk]
        n = len(q)
        # level 2: groups of clusters
        far2, group_idx = _far_field(q, np.repeat(np.arange(n), len(centre2)), np.tile(np.arange(len(centre2)), n),
                                     centre2, dipole2, radius2, beta, n)
        result = far2.copy()
        # level 1: clusters of the near groups
        pi = np.repeat(group_idx[0], m)
        ki = (group_idx[1][:, None] * m + np.arange(m)).reshape(-1)
        for b in range(0, len(pi), _WINDING_CHUNK_PAIRS):
            far1, near = _far_field(q, pi[b:b + _WINDING_CHUNK_PAIRS], ki[b:b + _WINDING_CHUNK_PAIRS],
                                    centre1, dipole1, radius1, beta, n)
            result += far1
            # triangles of the near clusters, exactly
            block = max(1, _WINDING_CHUNK_PAIRS // m)
            for c in range(0, len(near[0]), block):
                npi, nki = near[0][c:c + block], near[1][c:c + block]
                qb = q[npi].astype(np.float32)
                rel = [[clusters32[nki, :, k, i] - qb[:, i:i + 1] for i in range(3)] for k in range(3)]
                result += np.bincount(npi, weights=_solid_angle_sum(rel), minlength=n).astype(np.float64)
        out[start:start + chunk] = result
    return out


def _node_moments(area_vectors, centres, weights=None):
    """Dipole (sum of area vectors) and area-weighted centre of each node from its children (N, m, 3)."""
    if weights is None:
        weights = np.linalg.norm(area_vectors, axis=-1)
    total = weights.sum(1, keepdims=True)
    weighted = (weights[..., None] * centres).sum(1) / np.maximum(total, 1e-300)
    return area_vectors.sum(1), np.where(total > 0, weighted, centres.mean(1))


def _far_field(q, point_idx, node_idx, centre, dipole, radius, beta, n):
    """Dipole terms of the (point, node) pairs that are far -> (sum per point (n,), (point, node) near pairs)."""
    d = centre[node_idx] - q[point_idx]
    dist = np.sqrt((d * d).sum(-1))
    far = dist > beta * radius[node_idx]
    terms = (d[far] * dipole[node_idx[far]]).sum(-1) / dist[far] ** 3 / (4.0 * math.pi)
    sums = np.bincount(point_idx[far], weights=terms, minlength=n).astype(np.float64)  # int64 when empty
    return sums, (point_idx[~far], node_idx[~far])


def _morton_codes(xyz):
    """30-bit Morton (Z-order) codes of points quantised to 1024 cells per axis of their bounding box."""
    lo, hi = xyz.min(0), xyz.max(0)
    q = ((xyz - lo) / np.maximum(hi - lo, 1e-12) * 1023).astype(np.uint64)

    def spread(v):  # insert two zero bits between the 10 bits of v
        v = (v | (v << np.uint64(16))) & np.uint64(0x030000FF)
        v = (v | (v << np.uint64(8))) & np.uint64(0x0300F00F)
        v = (v | (v << np.uint64(4))) & np.uint64(0x030C30C3)
        return (v | (v << np.uint64(2))) & np.uint64(0x09249249)

    return spread(q[:, 0]) | (spread(q[:, 1]) << np.uint64(1)) | (spread(q[:, 2]) << np.uint64(2))


def _raycast_occupancy(vertices, faces, points, nsamples):
    import open3d as o3d  # imported here: open3d is slow to import and only this path needs it

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)))
    occ = scene.compute_occupancy(o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32)),
                                  nsamples=int(nsamples))
    return occ.numpy() > 0.5


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
