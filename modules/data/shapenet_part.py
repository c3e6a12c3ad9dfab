"""ShapeNet-Part (`shapenetcore_partanno_segmentation_benchmark_v0`) files: read and write.

Layout under ROOT:
    synsetoffset2category.txt                      "Name<TAB>synset" per line
    <synset>/points/<id>.pts                       "x y z" per line
    <synset>/points_label/<id>.seg                 one local label 1..k per line
    train_test_split/shuffled_{train,val,test}_file_list.json   ["shape_data/<synset>/<id>", ...]
Global part id = category offset + local label - 1 (`modules.data.categories`).

Axes: FRAME = ShapeNet v1 (y up, front +x): loaders of the real files apply no permutation (PointNet++,
torch-points3d), KPConv swaps y and z to get z-up, and registering the .pts to ShapeNetCore v2 takes the
v1 -> v2 rotation, so the points share v1's axes up to scale and offset (inference). `read_shape` returns
the canonical frame (y up, front +z) by default and `write_shape` writes FRAME (`frame=` another frame of
the files; "canonical" = as stored). `read_pts` reads a file as it is.
"""
import json
import os

import numpy as np

from modules.data import categories
from modules.geometry.frames import from_canonical_rotation, rotate_points, to_canonical_rotation
from modules.geometry.io import load_point_cloud, load_seg, save_point_cloud, save_seg
from modules.utils import ShapeLabError, atomic_write, require_file

SPLITS = ("train", "val", "test")
FRAME = "shapenet_v1"


def read_synsetoffset2category(root):
    """{category name: synset} from `synsetoffset2category.txt` (names lower-cased)."""
    path = require_file(os.path.join(root, "synsetoffset2category.txt"), "ShapeNet-Part category file")
    out = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit():
                raise ShapeLabError(f"{path}:{lineno}: expected 'Name<TAB>synset', got {line.strip()!r}")
            out[fields[0].lower()] = fields[1]
    if not out:
        raise ShapeLabError(f"{path}: no categories listed")
    return out


def write_synsetoffset2category(root, names):
    with atomic_write(os.path.join(root, "synsetoffset2category.txt")) as tmp, open(tmp, "w") as f:
        for name in names:
            f.write(f"{name.capitalize()}\t{categories.SYNSETS[name]}\n")


def read_pts(path):
    """(N,3) float32 points of a `.pts` file."""
    return load_point_cloud(path)["points"]


def read_seg(path, num_points=None, num_parts=None):
    """(N,) int64 local labels 1..k of a `.seg` file; checks the count and the range when given."""
    labels = load_seg(path)
    if num_points is not None and len(labels) != num_points:
        raise ShapeLabError(f"{path}: {len(labels)} labels but the .pts file has {num_points} points")
    if len(labels) and labels.min() < 1:
        raise ShapeLabError(f"{path}: labels must be local part labels >= 1, found {labels.min()}")
    if num_parts is not None and len(labels) and labels.max() > num_parts:
        raise ShapeLabError(f"{path}: label {labels.max()} out of range 1..{num_parts} for this category")
    return labels


def shape_paths(root, synset, shape_id):
    return (os.path.join(root, synset, "points", shape_id + ".pts"),
            os.path.join(root, synset, "points_label", shape_id + ".seg"))


def read_shape(root, synset, shape_id, frame=FRAME):
    """dict(points (N,3) float32 in the canonical frame, labels (N,) global part ids int64, category name);
    the files are in `frame`."""
    name = categories.category_name(synset)
    pts_path, seg_path = shape_paths(root, synset, shape_id)
    points = rotate_points(read_pts(pts_path), to_canonical_rotation(frame))
    local = read_seg(seg_path, num_points=len(points), num_parts=len(categories.part_names(name)))
    offset = categories.part_ids(name)[0]
    return dict(points=points, labels=local + offset - 1, category=name)


def write_shape(root, synset, shape_id, points, global_labels, frame=FRAME):
    """Canonical points (N,3) and global part ids -> .pts (in `frame`) and .seg."""
    name = categories.category_name(synset)
    local = np.asarray(global_labels, dtype=np.int64) - categories.part_ids(name)[0] + 1
    pts_path, seg_path = shape_paths(root, synset, shape_id)
    save_point_cloud(pts_path, rotate_points(np.asarray(points), from_canonical_rotation(frame)))
    save_seg(seg_path, local)


def read_split(root, split):
    """[(synset, id), ...] from `train_test_split/shuffled_<split>_file_list.json`."""
    if split not in SPLITS:
        raise ShapeLabError(f"split must be one of {SPLITS}, got {split!r}")
    path = require_file(os.path.join(root, "train_test_split", f"shuffled_{split}_file_list.json"),
                        "ShapeNet-Part split file")
    try:
        with open(path) as f:
            entries = json.load(f)
    except json.JSONDecodeError as err:
        raise ShapeLabError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(entries, list):
        raise ShapeLabError(f"{path}: expected a JSON list of 'shape_data/<synset>/<id>' strings")
    out = []
    for entry in entries:
        parts = str(entry).split("/")
        if len(parts) != 3 or parts[0] != "shape_data":
            raise ShapeLabError(f"{path}: entry {entry!r} is not of the form 'shape_data/<synset>/<id>'")
        out.append((parts[1], parts[2]))
    return out


def write_split(root, split, items):
    """items: [(synset, id), ...]."""
    path = os.path.join(root, "train_test_split", f"shuffled_{split}_file_list.json")
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump([f"shape_data/{s}/{i}" for s, i in items], f)
