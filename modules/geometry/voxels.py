"""Voxelisation of meshes and point clouds on a regular grid of R^3 cells covering a box.

Cell (i, j, k) (axis 0 = x) spans box_min + [i, i+1] * h with h = (box_max - box_min) / R, centre at
box_min + (i + 0.5) * h -- the same layout as binvox with translate = box_min, scale = box_max - box_min.
"""
import numpy as np
import trimesh

from modules.geometry.io import check_mesh_arrays
from modules.geometry.mesh_contains import mesh_contains
from modules.utils import ShapeLabError


def voxel_centers(resolution, box=(-0.5, 0.5)):
    """(R,R,R,3) float32 cell centres."""
    lo, hi = _box(box)
    h = (hi - lo) / resolution
    axis = lo + (np.arange(resolution) + 0.5) * h
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).astype(np.float32)


def points_to_cells(points, resolution, box=(-0.5, 0.5)):
    """Integer cell index (N,3) of each point and a bool (N,) saying whether it lies inside the box."""
    lo, hi = _box(box)
    idx = np.floor((np.asarray(points, dtype=np.float64) - lo) / (hi - lo) * resolution).astype(np.int64)
    on_hi_face = np.isclose(points, hi)  # points exactly on the upper face belong to the last cell
    idx[on_hi_face] = resolution - 1
    valid = np.all((idx >= 0) & (idx < resolution), axis=1)
    return idx, valid


def voxelize_points(points, resolution, box=(-0.5, 0.5)):
    """bool (R,R,R): cells containing at least one point. Points outside the box are ignored."""
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ShapeLabError(f"voxelize_points: points must have shape (N,3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ShapeLabError("voxelize_points: points contain NaN or inf")
    grid = np.zeros((resolution,) * 3, dtype=bool)
    idx, valid = points_to_cells(points, resolution, box)
    idx = idx[valid]
    grid[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return grid


def surface_voxels(vertices, faces, resolution, box=(-0.5, 0.5)):
    """bool (R,R,R): cells the surface passes through.

    The mesh is subdivided until every edge is at most a quarter of a cell, and the cells holding the
    resulting vertices are marked (the approach of trimesh's `voxelize_subdivide`). A triangle sliver
    crossing a cell corner can be missed by this sampling; it never marks a cell the surface misses.
    """
    vertices, faces = check_mesh_arrays(vertices, faces, name="surface_voxels mesh")
    if len(faces) == 0:
        return np.zeros((resolution,) * 3, dtype=bool)
    lo, hi = _box(box)
    cell = (hi - lo) / resolution
    dense_vertices, _ = trimesh.remesh.subdivide_to_size(vertices.astype(np.float64), faces, max_edge=cell / 4,
                                                         max_iter=20)
    return voxelize_points(dense_vertices, resolution, box)


def voxelize_mesh(vertices, faces, resolution, box=(-0.5, 0.5), fill=True, method="auto"):
    """bool (R,R,R) occupancy of a mesh: surface voxels, plus (fill=True) cells whose centre is inside.

    The inside test is `mesh_contains` at the cell centres (`method` as there: ray casting for a
    watertight mesh, the winding number otherwise).
    """
    vertices, faces = check_mesh_arrays(vertices, faces, name="voxelize_mesh mesh")
    grid = surface_voxels(vertices, faces, resolution, box)
    if fill and len(faces):
        centres = voxel_centers(resolution, box).reshape(-1, 3)
        grid |= mesh_contains(vertices, faces, centres, method=method).reshape(grid.shape)
    return grid


def _box(box):
    lo, hi = float(box[0]), float(box[1])
    if not hi > lo:
        raise ShapeLabError(f"box must be (min, max) with max > min, got {box}")
    return lo, hi
