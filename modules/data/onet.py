"""Occupancy Networks (ONet / ConvONet) dataset files: read and write.

Layout under ROOT:
    metadata.yaml                          {synset: {id: synset, name: category}}
    <synset>/{train,val,test}.lst          one model id per line
    <synset>/<id>/pointcloud.npz           points (N,3), normals (N,3) float16, loc (3,), scale ()
    <synset>/<id>/points.npz               points (N,3) float16 uniform in the padded box,
                                           occupancies np.packbits(bool (N,)), loc, scale
    <synset>/<id>/model.off                the watertight mesh
    <synset>/<id>/model.binvox             Choy's 32^3 voxels in the ORIGINAL frame (header: translate/scale)
    <synset>/<id>/img_choy2016/NNN.jpg     137x137 views on white (R2N2's renders, sorted order);
                                           cameras.npz: world_mat_i (3,4), camera_mat_i (3,3)

Frames (measured on the real release): `pointcloud.npz` / `points.npz` hold NORMALISED coordinates p
with original = scale * p + loc (loc = bounding-box centre, scale = largest extent of the source mesh);
`model.binvox` and the cameras live in the original (ShapeNet v1) frame; `camera_mat` is in pixel
units (f = 149.84375, c = 68.5). `read_cameras(..., loc, scale)` returns cameras of the normalised frame.

Axes: the files are in FRAME = ShapeNet v1 axes (y up, front +x), as the real release. Every reader turns
them into the canonical frame (y up, front +z; `modules.geometry.frames`) by default -- points, normals,
loc and the cameras' world_mat together, so cameras still project the points -- and every writer takes
canonical data and writes FRAME. `frame=` names another frame of the files (a name of
`frames.DATASET_FRAMES` or an (up, front) pair); frame="canonical" reads/writes the files as they are.
"""
import os

import numpy as np
import yaml

from modules.data.npz import check_array, load_npz, save_npz
from modules.geometry.frames import (from_canonical_rotation, load_mesh_in_frame, rotate_camera, rotate_points,
                                     rotate_world_mat, to_canonical_rotation)
from modules.utils import ShapeLabError, atomic_write, require_file

SPLITS = ("train", "val", "test")
FRAME = "shapenet_v1"     # the frame of the real release's files (built from ShapeNetCore v1 without rotation)


def read_pointcloud_npz(path, frame=FRAME):
    """(points float32 (N,3), normals float32 (N,3)) of a `pointcloud.npz`, in the canonical frame (the file
    is in `frame`)."""
    d = load_npz(path, ["points", "normals"], "ONet pointcloud.npz")
    points = check_array(d["points"], (None, 3), path, "points").astype(np.float32)
    normals = check_array(d["normals"], (len(points), 3), path, "normals").astype(np.float32)
    R = to_canonical_rotation(frame)
    return rotate_points(points, R), rotate_points(normals, R)


def write_pointcloud_npz(path, points, normals, loc=(0, 0, 0), scale=1.0, frame=FRAME):
    """Canonical points, normals, loc -> a `pointcloud.npz` in `frame`."""
    R = from_canonical_rotation(frame)
    save_npz(path, points=np.asarray(rotate_points(np.asarray(points, np.float64), R), np.float16),
             normals=np.asarray(rotate_points(np.asarray(normals, np.float64), R), np.float16),
             loc=np.asarray(rotate_points(np.asarray(loc, np.float64), R), np.float32), scale=np.float32(scale))


def read_loc_scale(path, frame=FRAME):
    """(loc float64 (3,), scale float) of a `pointcloud.npz` / `points.npz` (original = scale * p + loc),
    loc in the canonical frame (the file is in `frame`)."""
    d = load_npz(path, ["loc", "scale"], "ONet npz with loc/scale")
    loc = check_array(np.asarray(d["loc"], np.float64).reshape(-1), (3,), path, "loc")
    scale = float(np.asarray(d["scale"]).reshape(-1)[0]) if np.asarray(d["scale"]).size == 1 else None
    if scale is None or not np.isfinite(scale) or scale <= 0:
        raise ShapeLabError(f"{path}: field 'scale' must be one positive number, got {d['scale']!r}")
    return rotate_points(loc, to_canonical_rotation(frame)), scale


def read_points_npz(path, frame=FRAME, select=None):
    """(points float32 (N,3), occupancies bool (N,)) of a `points.npz`; packed or plain occupancies. Points in
    the canonical frame (the file is in `frame`). select(N) -> indices: only those rows are converted and
    turned (a loader drawing 2048 of 100k points per sample would otherwise turn all of them every time)."""
    d = load_npz(path, ["points", "occupancies"], "ONet points.npz")
    points = check_array(d["points"], (None, 3), path, "points")
    occ = np.asarray(d["occupancies"])
    n = len(points)
    if occ.dtype == np.uint8 and occ.ndim == 1 and len(occ) == (n + 7) // 8 and n != len(occ):
        occ = np.unpackbits(occ)[:n]
    elif occ.shape != (n,):
        raise ShapeLabError(f"{path}: field 'occupancies' must be np.packbits of {n} booleans "
                            f"({(n + 7) // 8} bytes) or {n} values, got dtype {occ.dtype} shape {occ.shape}")
    if select is not None:
        idx = select(n)
        points, occ = points[idx], occ[idx]
    return rotate_points(points.astype(np.float32), to_canonical_rotation(frame)), occ.astype(bool)


def write_points_npz(path, points, occupancies, loc=(0, 0, 0), scale=1.0, frame=FRAME):
    """Canonical points and loc -> a `points.npz` in `frame` (occupancies bit-packed)."""
    R = from_canonical_rotation(frame)
    occ = np.asarray(occupancies, dtype=bool)
    save_npz(path, points=np.asarray(rotate_points(np.asarray(points, np.float64), R), np.float16),
             occupancies=np.packbits(occ), loc=np.asarray(rotate_points(np.asarray(loc, np.float64), R), np.float32),
             scale=np.float32(scale))


def _world_to_canonical(world_mat, frame):
    R = to_canonical_rotation(frame)
    return rotate_world_mat(world_mat, R).astype(np.float32)


def read_cameras_npz(path, num_views=None, frame=FRAME):
    """[(world_mat (3,4), camera_mat (3,3)), ...] in view order from `img_choy2016/cameras.npz`; world_mat
    maps canonical-frame original coordinates (the file's maps `frame` coordinates)."""
    path = os.fspath(path)
    require_file(path, "ONet cameras.npz")
    try:
        with np.load(path) as data:
            keys = set(data.files)
            n = len([k for k in keys if k.startswith("world_mat_")])
            if num_views is not None and n != num_views:
                raise ShapeLabError(f"{path}: expected {num_views} world_mat_i entries, found {n}")
            out = []
            for i in range(n):
                for k in (f"world_mat_{i}", f"camera_mat_{i}"):
                    if k not in keys:
                        raise ShapeLabError(f"{path}: field '{k}' missing")
                world = check_array(data[f"world_mat_{i}"], (3, 4), path, f"world_mat_{i}").astype(np.float32)
                out.append((_world_to_canonical(world, frame),
                            check_array(data[f"camera_mat_{i}"], (3, 3), path, f"camera_mat_{i}").astype(np.float32)))
            return out
    except ShapeLabError:
        raise
    except Exception as err:
        raise ShapeLabError(f"{path}: not a readable cameras.npz ({type(err).__name__}: {err})") from err


def read_camera_npz(path, view, frame=FRAME):
    """(world_mat (3,4), camera_mat (3,3)) float32 of one view of a cameras.npz (reads only those two arrays);
    world_mat of canonical coordinates (see `read_cameras_npz`)."""
    d = load_npz(path, [f"world_mat_{view}", f"camera_mat_{view}"], f"ONet cameras.npz (view {view})")
    world = check_array(d[f"world_mat_{view}"], (3, 4), path, f"world_mat_{view}").astype(np.float32)
    return (_world_to_canonical(world, frame),
            check_array(d[f"camera_mat_{view}"], (3, 3), path, f"camera_mat_{view}").astype(np.float32))


def read_cameras(path, width=137, height=137, loc=None, scale=None, units="pixels", num_views=None, frame=FRAME):
    """[Camera, ...] of a cameras.npz over canonical coordinates; with loc/scale (see `read_loc_scale`, same
    `frame`) they project the normalised points that `read_pointcloud_npz` returns."""
    from modules.geometry.cameras import Camera  # deferred: torch; the writers' workers stay torch-free
    return [Camera.from_onet(w, c, width, height, loc=loc, scale=scale, units=units)
            for w, c in read_cameras_npz(path, num_views, frame)]


def write_cameras(path, cameras, frame=FRAME):
    """cameras.npz of a list of `Camera`s over canonical original coordinates (pixel K; world_mat written for
    `frame` coordinates), reproducible bytes."""
    from modules.geometry.cameras import onet_camera_arrays  # deferred: torch (see read_cameras)
    R = from_canonical_rotation(frame)
    save_npz(path, **onet_camera_arrays([rotate_camera(c, R) for c in cameras]))


def write_cameras_npz(path, world_mats, camera_mats):
    """cameras.npz of raw arrays, written as given (world_mats already of the files' frame)."""
    arrays = {}
    for i, (w, c) in enumerate(zip(world_mats, camera_mats)):
        arrays[f"world_mat_{i}"] = np.asarray(w, np.float32)[:3, :4]
        arrays[f"camera_mat_{i}"] = np.asarray(c, np.float32)[:3, :3]
    save_npz(path, **arrays)


def read_lst(path):
    """Model ids of a `.lst` split file (blank lines ignored)."""
    path = require_file(os.fspath(path), "ONet split list")
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def write_lst(path, ids):
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        f.write("\n".join(ids) + ("\n" if ids else ""))


def read_split(root, split, synsets=None):
    """[(synset, id), ...] of a split over the synset folders (all with a `<split>.lst` by default)."""
    if split not in SPLITS:
        raise ShapeLabError(f"split must be one of {SPLITS}, got {split!r}")
    if synsets is None:
        require_file(root, "ONet dataset folder")
        synsets = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, f"{split}.lst")))
        if not synsets:
            raise ShapeLabError(f"{root}: no <synset>/{split}.lst files found")
    return [(s, i) for s in synsets for i in read_lst(os.path.join(root, s, f"{split}.lst"))]


def read_metadata(root):
    path = require_file(os.path.join(root, "metadata.yaml"), "ONet metadata.yaml")
    with open(path) as f:
        meta = yaml.safe_load(f)
    if not isinstance(meta, dict):
        raise ShapeLabError(f"{path}: expected a mapping synset -> {{id, name}}")
    return meta


def write_metadata(root, synset_names):
    """synset_names: {synset: name}."""
    meta = {s: {"id": s, "name": n} for s, n in sorted(synset_names.items())}
    with atomic_write(os.path.join(root, "metadata.yaml")) as tmp, open(tmp, "w") as f:
        yaml.safe_dump(meta, f, sort_keys=True)


def read_mesh(path, frame=FRAME, allow_empty=False):
    """The model.off mesh (trimesh.Trimesh) with its vertices in the canonical frame (the file is in `frame`)."""
    return load_mesh_in_frame(path, frame, allow_empty)
