"""Mesh extraction from implicit functions: marching cubes on a grid, dense extraction, and MISE.

Grid convention everywhere: a grid of R samples per axis covers [box_min, box_max]^3 with sample i at
box_min + i * (box_max - box_min) / (R - 1) (samples on the corners), axis 0 = x, 1 = y, 2 = z.
Values greater than the threshold are inside; extracted triangles face outwards.
"""
import mcubes
import numpy as np

from modules.utils import ShapeLabError


def marching_cubes(values, threshold, box_min=-0.5, box_max=0.5):
    """PyMCubes on a (R,R,R) grid -> (vertices float32 (V,3) in world coordinates, faces int64 (F,3)).

    The grid is padded by one cell of "outside" so a shape touching the box gives a closed surface.
    An empty result (nothing crosses the threshold) returns (0,3) arrays.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3 or min(values.shape) < 2:
        raise ShapeLabError(f"marching_cubes: values must be a 3-D grid with at least 2 samples per axis, "
                            f"got shape {values.shape}")
    if np.isnan(values).any():
        raise ShapeLabError("marching_cubes: values contain NaN")
    outside = min(float(values.min()), threshold) - 1.0
    padded = np.pad(values, 1, mode="constant", constant_values=outside)
    vertices, faces = mcubes.marching_cubes(padded, float(threshold))
    vertices = vertices - 1.0  # undo the padding shift
    step = (np.asarray(box_max, dtype=np.float64) - box_min) / (np.asarray(values.shape) - 1)
    vertices = box_min + vertices * step
    return vertices.astype(np.float32), faces.astype(np.int64).reshape(-1, 3)
