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

    The grid is padded by one cell of "far outside" so a shape touching the box gives a closed surface
    lying on the box boundary.
    An empty result (nothing crosses the threshold) returns (0,3) arrays.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3 or min(values.shape) < 2:
        raise ShapeLabError(f"marching_cubes: values must be a 3-D grid with at least 2 samples per axis, "
                            f"got shape {values.shape}")
    if np.isnan(values).any():
        raise ShapeLabError("marching_cubes: values contain NaN")
    # Far outside (as ONet's -1e6 padding): the closing surface sits on the box boundary, not half a cell out.
    outside = threshold - 1e6 * (1.0 + float(np.abs(values).max()) + abs(float(threshold)))
    padded = np.pad(values, 1, mode="constant", constant_values=outside)
    vertices, faces = mcubes.marching_cubes(padded, float(threshold))
    vertices = vertices - 1.0  # undo the padding shift
    step = (np.asarray(box_max, dtype=np.float64) - box_min) / (np.asarray(values.shape) - 1)
    vertices = box_min + vertices * step
    return vertices.astype(np.float32), faces.astype(np.int64).reshape(-1, 3)


def dense_extract(fn, resolution, threshold=0.5, batch_points=400000, box=(-0.5, 0.5), device=None):
    """Evaluate `fn` on a dense grid of `resolution` samples per axis over box^3 and run marching cubes.

    Returns (vertices, faces, num_evaluations). `fn` as in `mise_extract`.
    """
    lo, hi = float(box[0]), float(box[1])
    grid = grid_points(resolution, lo, hi).reshape(-1, 3)
    values = _evaluate(fn, grid, batch_points, device).reshape((resolution,) * 3)
    vertices, faces = marching_cubes(values, threshold, lo, hi)
    return vertices, faces, len(grid)


def mise_extract(fn, resolution0=64, upsampling_steps=2, threshold=0.5, batch_points=400000, box=(-0.5, 0.5),
                 device=None, return_values=False):
    """Multiresolution IsoSurface Extraction (Occupancy Networks, Mescheder et al. 2019).

    1. Evaluate `fn` on the coarse grid of resolution0 cells ((resolution0+1)^3 corner samples).
    2. For each of `upsampling_steps` steps, halve the cell size: every cell whose samples straddle
       the threshold (some > threshold, some <= threshold) is "active" and its new samples are
       evaluated. After the new samples are in, a cell whose refined samples now straddle (the surface
       entered it through a face shared with an active neighbour) is made active too, until nothing
       changes -- so the refined region has no cracks.
    3. Samples never evaluated are filled by propagation from the coarser level (trilinear interpolation
       of the parent cell's corners, which all lie on the same side of the threshold, so the fill never
       creates a surface).
    4. Marching cubes at the final resolution resolution0 * 2**upsampling_steps cells
       (64 -> 257^3 samples for 2 steps).

    Args:
        fn: batched callable, points (M,3) float32 -> values (M,) (numpy or torch); larger = inside.
            Points are numpy arrays, or torch tensors on `device` when `device` is given.
        box: (min, max) of the cube to extract from.
    Returns:
        (vertices float32 (V,3), faces int64 (F,3), num_evaluations) [+ final value grid if return_values]
    """
    if resolution0 < 1 or upsampling_steps < 0:
        raise ShapeLabError(f"mise_extract: need resolution0 >= 1 and upsampling_steps >= 0, "
                            f"got {resolution0}, {upsampling_steps}")
    lo, hi = float(box[0]), float(box[1])
    n = resolution0
    # float32 grid: networks give float32 anyway, and a 513^3 grid (3 steps) stays at ~0.5 GB
    values = _evaluate(fn, grid_points(n + 1, lo, hi).reshape(-1, 3), batch_points, device)
    values = values.astype(np.float32).reshape((n + 1,) * 3)
    evaluations = values.size
    for _ in range(upsampling_steps):
        fine_n = 2 * n
        values = _upsample_trilinear(values)
        known = np.zeros(values.shape, dtype=bool)
        known[::2, ::2, ::2] = True
        fine_axis = np.linspace(lo, hi, fine_n + 1)
        active = _straddling_cells(values[::2, ::2, ::2], threshold)
        refined = np.zeros_like(active)
        while True:
            todo = active & ~refined
            if not todo.any():
                break
            need = _cell_samples(todo) & ~known
            idx = np.argwhere(need)
            if len(idx):
                pts = np.stack([fine_axis[idx[:, 0]], fine_axis[idx[:, 1]], fine_axis[idx[:, 2]]], 1)
                values[need] = _evaluate(fn, pts.astype(np.float32), batch_points, device)
                known |= need
                evaluations += len(idx)
            refined |= todo
            # consistency: coarse cells whose refined samples straddle (fine cells straddling inside them)
            fine_straddle = _straddling_cells(values, threshold)
            active = active | fine_straddle.reshape(n, 2, n, 2, n, 2).any(axis=(1, 3, 5))
        n = fine_n
    vertices, faces = marching_cubes(values, threshold, lo, hi)
    if return_values:
        return vertices, faces, evaluations, values
    return vertices, faces, evaluations


def grid_points(samples, box_min=-0.5, box_max=0.5):
    """(S,S,S,3) float32 grid of `samples` per axis with samples on the box corners (axis 0 = x)."""
    axis = np.linspace(box_min, box_max, samples)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).astype(np.float32)


def _evaluate(fn, points, batch_points, device):
    """fn over `points` in batches -> float64 (M,); torch outputs are detached; NaN raises."""
    import torch

    out = []
    for start in range(0, len(points), int(batch_points)):
        batch = points[start:start + int(batch_points)]
        if device is not None:
            with torch.no_grad():
                val = fn(torch.from_numpy(batch).to(device))
        else:
            val = fn(batch)
        if isinstance(val, torch.Tensor):
            val = val.detach().float().cpu().numpy()
        val = np.asarray(val, dtype=np.float64).reshape(-1)
        if val.shape[0] != len(batch):
            raise ShapeLabError(f"mesh extraction: fn returned {val.shape[0]} values for {len(batch)} points")
        out.append(val)
    values = np.concatenate(out) if out else np.zeros(0)
    if np.isnan(values).any():
        raise ShapeLabError("mesh extraction: fn returned NaN values")
    return values


def _upsample_trilinear(coarse):
    """(n+1)^3 corner samples -> (2n+1)^3 by trilinear interpolation (even indices copy the coarse ones)."""
    out = coarse
    for axis in range(3):
        shape = list(out.shape)
        shape[axis] = 2 * shape[axis] - 1
        fine = np.empty(shape, dtype=coarse.dtype)
        even = [slice(None)] * 3
        odd = [slice(None)] * 3
        even[axis], odd[axis] = slice(0, None, 2), slice(1, None, 2)
        fine[tuple(even)] = out
        left = [slice(None)] * 3
        right = [slice(None)] * 3
        left[axis], right[axis] = slice(0, -1), slice(1, None)
        fine[tuple(odd)] = 0.5 * (out[tuple(left)] + out[tuple(right)])
        out = fine
    return out


def _straddling_cells(values, threshold):
    """bool (n,n,n) for an (n+1)^3 sample grid: cells with corners on both sides of the threshold."""
    inside = values > threshold
    any_in = np.zeros(tuple(s - 1 for s in values.shape), dtype=bool)
    all_in = np.ones_like(any_in)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                corner = inside[dx:dx + any_in.shape[0], dy:dy + any_in.shape[1], dz:dz + any_in.shape[2]]
                any_in |= corner
                all_in &= corner
    return any_in & ~all_in


def _cell_samples(cells):
    """bool (2n+1)^3: the fine samples lying in (or on the boundary of) the given coarse cells (n^3)."""
    n = cells.shape[0]
    fine_cells = cells.repeat(2, 0).repeat(2, 1).repeat(2, 2)  # (2n)^3
    samples = np.zeros((2 * n + 1,) * 3, dtype=bool)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                samples[dx:dx + 2 * n, dy:dy + 2 * n, dz:dz + 2 * n] |= fine_cells
    return samples
