"""Normalisations of point clouds (rotations between frames: modules.geometry.frames)."""
import numpy as np


def normalize_unit_sphere(points):
    """Centre at the centroid and scale so the farthest point is at radius 1 (PVCNN/PointNet).

    points: (N,3) or (B,N,3), numpy array or tensor; returns the same type and shape.
    """
    if isinstance(points, np.ndarray):
        centred = points - points.mean(axis=-2, keepdims=True)
        radius = np.linalg.norm(centred, axis=-1).max(axis=-1)[..., None, None]
        return centred / np.maximum(radius, 1e-12)
    centred = points - points.mean(dim=-2, keepdim=True)
    radius = centred.norm(dim=-1).amax(dim=-1)[..., None, None]
    return centred / radius.clamp_min(1e-12)

