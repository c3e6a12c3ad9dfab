"""IF-Net (and AIR-Nets) dataset files: read and write.

Layout under ROOT:
    split.npz                                   train / val / test: arrays of '<synset>/<id>' paths
    <synset>/<id>/isosurf_scaled.off            mesh centred, longest bbox edge 1
    <synset>/<id>/surface_30000_samples.npy     (30000,3) surface points
    <synset>/<id>/boundary_{0.1,0.01}_samples.npz   points (N,3), occupancies (N,) (float32/bool here,
                                                  float64 in the original; grid_coords omitted)

Axes: FRAME = ShapeNet v1 (y up, front +x): IF-Net's data are DISN's isosurfaces of ShapeNetCore v1 meshes,
centred and scaled without rotation (inference). Readers return the canonical frame (y up, front +z) by
default, writers take canonical points and write FRAME (`frame=` another frame; "canonical" = as stored).
"""
import os

import numpy as np

from modules.data.npz import check_array, load_npz, save_npz
from modules.geometry.frames import from_canonical_rotation, load_mesh_in_frame, rotate_points, to_canonical_rotation
from modules.utils import ShapeLabError, atomic_write, require_file

SIGMAS = (0.1, 0.01)
SPLITS = ("train", "val", "test")
FRAME = "shapenet_v1"


def boundary_name(sigma):
    return f"boundary_{sigma}_samples.npz"


def read_boundary_samples(path, frame=FRAME):
    """(points float32 (N,3) canonical frame, occupancies bool (N,)); the file is in `frame`."""
    d = load_npz(path, ["points", "occupancies"], "IF-Net boundary samples")
    points = check_array(d["points"], (None, 3), path, "points").astype(np.float32)
    occ = check_array(d["occupancies"], (len(points),), path, "occupancies")
    return rotate_points(points, to_canonical_rotation(frame)), occ.astype(bool)


def write_boundary_samples(path, points, occupancies, frame=FRAME):
    pts = rotate_points(np.asarray(points, np.float64), from_canonical_rotation(frame))
    save_npz(path, points=np.asarray(pts, np.float32), occupancies=np.asarray(occupancies, bool))


def read_surface_samples(path, frame=FRAME):
    """(N,3) float32 from `surface_30000_samples.npy`, canonical frame (the file is in `frame`)."""
    path = require_file(os.fspath(path), "IF-Net surface samples")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:
        raise ShapeLabError(f"{path}: not a readable .npy ({type(err).__name__}: {err})") from err
    points = check_array(arr, (None, 3), path, "surface samples").astype(np.float32)
    return rotate_points(points, to_canonical_rotation(frame))


def write_surface_samples(path, points, frame=FRAME):
    pts = rotate_points(np.asarray(points, np.float64), from_canonical_rotation(frame))
    with atomic_write(path) as tmp:
        np.save(tmp, np.asarray(pts, np.float32))


def read_split_npz(path):
    """{'train': [...], 'val': [...], 'test': [...]} of '<synset>/<id>' strings."""
    d = load_npz(path, list(SPLITS), "IF-Net split.npz")
    return {k: [str(x) for x in np.asarray(v).reshape(-1)] for k, v in d.items()}


def write_split_npz(path, splits):
    # fixed-width unicode arrays: np.load works without allow_pickle
    save_npz(path, **{k: np.asarray(list(splits.get(k, [])), dtype="U") for k in SPLITS})


def read_mesh(path, frame=FRAME, allow_empty=False):
    """The isosurf_scaled.off mesh (trimesh.Trimesh) with its vertices in the canonical frame (the file is in `frame`)."""
    return load_mesh_in_frame(path, frame, allow_empty)
