"""DFAUST-style human sequences in the layout Neural Parts trains on: read and write.

Layout under ROOT:
    d-faust_splits.csv                           header "id,split"; id = '<sequence>/<frame>'
    <sequence>/mesh_seq/NNNNN.off                per-frame watertight mesh
    <sequence>/surface_points_seq/NNNNN.npz      points (N,3), normals (N,3) float16, and optionally labels
                                                 (N,) int16 (global part ids 50.. of modules.data.categories;
                                                 absent for real, unlabelled bodies: only part-label
                                                 consumers need them)
    <sequence>/points_seq/NNNNN.npz              points (N,3) float16 uniform in the padded box,
                                                 occupancies np.packbits(bool (N,))
    <sequence>/renderings-downsampled/NNNNN.png  224x224 RGB render from a fixed camera (Neural Parts' DFAUST
                                                 renders: white background, grey mesh, camera (1,1.5,3) ->
                                                 (0,0.5,0), up y, 45 degrees, light at the camera)
    <sequence>/renderings-downsampled/camera.npz world_mat (3,4), camera_mat (3,3) pixel units (as ONet's
                                                 cameras.npz), of the frame the meshes and points are stored in
"""
import csv
import os

import numpy as np

from modules.data.npz import check_array, load_npz, save_npz
from modules.data import onet
from modules.utils import ShapeLabError, atomic_write, require_file

# DFAUST's axes (y up, front +z) are the canonical ones: readers and writers leave points as they are.
FRAME = "dfaust"


def read_points_npz(path, frame=FRAME):
    """(points float32 (N,3), occupancies bool (N,)): ONet's packed-occupancy file, in the human layout's frame."""
    return onet.read_points_npz(path, frame=frame)


def write_points_npz(path, points, occupancies, frame=FRAME):
    onet.write_points_npz(path, points, occupancies, frame=frame)

__all__ = ["read_surface_points", "write_surface_points", "read_points_npz", "write_points_npz",
           "read_splits_csv", "write_splits_csv", "frame_paths", "read_camera", "write_camera"]


def frame_paths(root, sequence, frame):
    name = f"{int(frame):05d}"
    base = os.path.join(root, sequence)
    return dict(mesh=os.path.join(base, "mesh_seq", name + ".off"),
                surface=os.path.join(base, "surface_points_seq", name + ".npz"),
                points=os.path.join(base, "points_seq", name + ".npz"),
                render=os.path.join(base, "renderings-downsampled", name + ".png"),
                camera=os.path.join(base, "renderings-downsampled", "camera.npz"))


def read_surface_points(path):
    """(points float32 (N,3), normals float32 (N,3), labels int64 (N,) or None when the file has no labels)."""
    d = load_npz(path, ["points", "normals"], "surface points")
    points = check_array(d["points"], (None, 3), path, "points").astype(np.float32)
    normals = check_array(d["normals"], (len(points), 3), path, "normals").astype(np.float32)
    with np.load(path, allow_pickle=False) as z:   # labels are optional: read them only when stored
        labels = np.asarray(z["labels"]) if "labels" in z.files else None
    if labels is not None:
        labels = check_array(labels, (len(points),), path, "labels").astype(np.int64)
    return points, normals, labels


def write_surface_points(path, points, normals, labels=None):
    """labels None: an unlabelled frame (the file has no `labels` field)."""
    fields = dict(points=np.asarray(points, np.float16), normals=np.asarray(normals, np.float16))
    if labels is not None:
        fields["labels"] = np.asarray(labels, np.int16)
    save_npz(path, **fields)


def read_splits_csv(path):
    """{split: [(sequence, frame int), ...]}."""
    path = require_file(os.fspath(path), "human splits csv")
    out = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"id", "split"} <= set(reader.fieldnames):
            raise ShapeLabError(f"{path}: expected a header with columns 'id,split', got {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            seq, _, frame = row["id"].rpartition("/")
            if not seq or not frame.isdigit():
                raise ShapeLabError(f"{path}:{lineno}: id {row['id']!r} is not '<sequence>/<frame number>'")
            out.setdefault(row["split"], []).append((seq, int(frame)))
    return out


def write_splits_csv(path, rows):
    """rows: [(sequence, frame, split), ...]."""
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "split"])
        for seq, frame, split in rows:
            w.writerow([f"{seq}/{int(frame):05d}", split])


def read_camera(path, width=224, height=224):
    """The sequence's fixed render camera (a `Camera` of the stored frame)."""
    from modules.geometry.cameras import Camera  # deferred: torch; the writers' workers stay torch-free
    d = load_npz(path, ["world_mat", "camera_mat"], "human render camera.npz")
    return Camera.from_onet(check_array(d["world_mat"], (3, 4), path, "world_mat"),
                            check_array(d["camera_mat"], (3, 3), path, "camera_mat"), width, height)


def write_camera(path, camera):
    world_mat, camera_mat = camera.to_onet()
    save_npz(path, world_mat=world_mat, camera_mat=camera_mat)
