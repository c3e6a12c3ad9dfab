"""The binvox voxel format (Patrick Min's binvox / viewvox; ShapeNet and R2N2 `model.binvox`).

File layout: an ASCII header

    #binvox 1
    dim D H W
    translate tx ty tz
    scale s
    data

then run-length-encoded bytes: pairs (value 0|1, count 1..255). The voxels are stored with y running
fastest, then z, then x (index = x*W*H + z*W + y), i.e. a C-order array of shape (D, H, W) indexed
[x, z, y]. `read_binvox` returns the grid indexed [x, y, z] (the `fix_coords=True` convention of the
common binvox_rw reader); the world position of voxel centre (i, j, k) is
translate + (index + 0.5) / dim * scale, see `binvox_voxel_centers`. The binvox tool sets translate to
the minimum corner of the model's bounding box and scale to its largest side (the voxels tile that cube),
so real files (ShapeNetVox32, ShapeNet's own voxelisations) are NOT the unit box: `place_binvox` puts a
grid where its header says, into a grid over any box (e.g. [-0.5, 0.5]^3 of the mesh's frame).
"""
import numpy as np

from modules.utils import ShapeLabError, atomic_write, require_file


def read_binvox(path, expected_dims=None):
    """-> (grid bool (X,Y,Z) indexed [x,y,z], translate float64 (3,), scale float).

    expected_dims: e.g. (32, 32, 32) (ShapeNetVox32); another size is a ShapeLabError naming the file."""
    path = require_file(str(path), "binvox file")
    with open(path, "rb") as f:
        raw = f.read()
    header, dims, translate, scale = [], None, None, None
    pos = 0
    for _ in range(16):  # the header has five lines; allow a few comment lines
        end = raw.find(b"\n", pos)
        if end < 0:
            raise ShapeLabError(f"{path}: binvox header ends before the 'data' line")
        line = raw[pos:end].decode("ascii", errors="replace").strip()
        pos = end + 1
        header.append(line)
        if len(header) == 1:
            if not line.startswith("#binvox"):
                raise ShapeLabError(f"{path}: not a binvox file (first line {line[:40]!r}, expected '#binvox 1')")
            continue
        key, _, rest = line.partition(" ")
        try:
            if key == "dim":
                dims = tuple(int(v) for v in rest.split())
            elif key == "translate":
                translate = np.array([float(v) for v in rest.split()], dtype=np.float64)
            elif key == "scale":
                scale = float(rest)
            elif key == "data":
                break
        except ValueError as err:
            raise ShapeLabError(f"{path}: bad binvox header line {line!r} ({err})") from err
    else:
        raise ShapeLabError(f"{path}: binvox header has no 'data' line")
    if dims is None or len(dims) != 3 or min(dims) <= 0:
        raise ShapeLabError(f"{path}: binvox header needs 'dim D H W' with three positive integers, got {dims}")
    if expected_dims is not None and tuple(dims) != tuple(expected_dims):
        raise ShapeLabError(f"{path}: binvox grid is {'x'.join(map(str, dims))}, expected "
                            f"{'x'.join(map(str, expected_dims))}")
    if translate is None or translate.shape != (3,):
        raise ShapeLabError(f"{path}: binvox header needs 'translate tx ty tz'")
    if scale is None or not np.isfinite(scale) or scale <= 0 or not np.all(np.isfinite(translate)):
        raise ShapeLabError(f"{path}: binvox header needs 'scale s' with s > 0 and a finite translate, "
                            f"got scale {scale}, translate {translate}")
    body = np.frombuffer(raw, dtype=np.uint8, offset=pos)
    if len(body) % 2:
        raise ShapeLabError(f"{path}: binvox data has an odd number of bytes ({len(body)}), expected (value, count) pairs")
    values, counts = body[0::2], body[1::2]
    total = int(counts.sum(dtype=np.int64))
    if total != dims[0] * dims[1] * dims[2]:
        raise ShapeLabError(f"{path}: binvox run lengths cover {total} voxels, dim {dims} needs "
                            f"{dims[0] * dims[1] * dims[2]}")
    if values.size and values.max() > 1:
        raise ShapeLabError(f"{path}: binvox run values must be 0 or 1, found {int(values.max())}")
    flat = np.repeat(values.astype(bool), counts)
    grid = flat.reshape(dims).transpose(0, 2, 1)  # file [x, z, y] -> [x, y, z]
    return np.ascontiguousarray(grid), translate, scale


def write_binvox(path, grid, translate=(0.0, 0.0, 0.0), scale=1.0):
    """Write a bool grid indexed [x,y,z] as a binvox file (run-length encoded, xzy order). Atomic."""
    grid = np.asarray(grid)
    if grid.ndim != 3 or min(grid.shape) == 0:
        raise ShapeLabError(f"{path}: binvox grid must be a non-empty 3-D array, got shape {grid.shape}")
    translate = np.asarray(translate, dtype=np.float64).reshape(-1)
    if translate.shape != (3,):
        raise ShapeLabError(f"{path}: translate must have 3 values, got {translate.shape}")
    flat = grid.astype(bool).transpose(0, 2, 1).reshape(-1)  # [x, y, z] -> file [x, z, y]
    dims = (grid.shape[0], grid.shape[2], grid.shape[1])
    # Runs of equal values, each split into pieces of at most 255 (the count is one byte).
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    run_values = flat[starts].astype(np.uint8)
    pieces = (lengths + 254) // 255
    values = np.repeat(run_values, pieces)
    counts = np.full(values.size, 255, dtype=np.int64)
    last = np.cumsum(pieces) - 1
    counts[last] = lengths - 255 * (pieces - 1)
    body = np.empty(2 * values.size, dtype=np.uint8)
    body[0::2], body[1::2] = values, counts
    header = (f"#binvox 1\ndim {dims[0]} {dims[1]} {dims[2]}\n"
              f"translate {' '.join(repr(float(t)) for t in translate)}\nscale {float(scale)!r}\ndata\n")
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header.encode("ascii"))
            f.write(body.tobytes())


def binvox_voxel_centers(grid, translate, scale):
    """World coordinates (N,3) of the occupied voxels' centres, in [x,y,z] index order."""
    idx = np.argwhere(np.asarray(grid))
    return np.asarray(translate, dtype=np.float64) + (idx + 0.5) / np.asarray(grid.shape) * float(scale)


def place_binvox(grid, translate, scale, resolution=32, box=(-0.5, 0.5), eps=1e-6):
    """Resample a binvox grid, placed by its header, into a bool (R,R,R) grid over `box`^3 (indexed [x,y,z]).

    Source voxel i (axis a) covers translate[a] + [i, i+1] / dim[a] * scale. A target cell is occupied when
    an occupied source voxel overlaps it with positive volume (a conservative resampling: identical grids
    map one to one, coarser targets keep thin parts). box: (lo, hi) scalars or (3,) arrays; parts outside
    the box are cut. eps: overlaps shorter than eps cells count as touching, not overlapping.
    """
    grid = np.asarray(grid, dtype=bool)
    if grid.ndim != 3:
        raise ShapeLabError(f"place_binvox: grid must be 3-D, got shape {grid.shape}")
    translate = np.asarray(translate, np.float64).reshape(3)
    lo = np.broadcast_to(np.asarray(box[0], np.float64), (3,))
    hi = np.broadcast_to(np.asarray(box[1], np.float64), (3,))
    if not np.all(hi > lo) or not float(scale) > 0:
        raise ShapeLabError(f"place_binvox: need box hi > lo and scale > 0, got box {box}, scale {scale}")
    res = int(resolution)
    out = grid
    # Separable: along each axis, target cell i is "any" over the source voxels it overlaps, a range
    # [first, last] taken from prefix sums (no BLAS: tiny products are slow with threads on a busy machine).
    for a in range(3):
        n = grid.shape[a]
        cell_edges = lo[a] + np.arange(res + 1) * (hi[a] - lo[a]) / res
        u = (cell_edges - translate[a]) / float(scale) * n                  # in source voxel units
        first = np.clip(np.floor(u[:-1] + eps).astype(np.int64), 0, n)
        last = np.clip(np.ceil(u[1:] - eps).astype(np.int64) - 1, -1, n - 1)
        moved = np.moveaxis(out, a, 0).astype(np.int32)
        cs = np.concatenate([np.zeros((1,) + moved.shape[1:], np.int32), np.cumsum(moved, axis=0)])
        count = cs[np.maximum(last + 1, first)] - cs[first]                 # empty ranges count 0
        out = np.moveaxis(count > 0, 0, a)
    return np.ascontiguousarray(out)
