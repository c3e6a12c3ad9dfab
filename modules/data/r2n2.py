"""3D-R2N2 style files (ShapeNetRendering + ShapeNetVox32): read and write.

Layout under ROOT:
    ShapeNetRendering/<synset>/<id>/rendering/NN.png          137x137 RGBA, NN = 00..23
    ShapeNetRendering/<synset>/<id>/rendering/renderings.txt   the PNG names, one per line
    ShapeNetRendering/<synset>/<id>/rendering/rendering_metadata.txt
        one line per view: azimuth elevation in-plane-rotation distance-ratio fov (degrees; as R2N2)
    ShapeNetVox32/<synset>/<id>/model.binvox                   32^3 voxels
    ShapeNetCore.v1/<synset>/<id>/model.off                    the mesh (OFF, not OBJ: a copy of the ONet one)
    split.json     {"train"|"val"|"test": {synset: {id: [view indices]}}} (PyTorch3D R2N2 split format)
"""
import json
import os

import numpy as np
from PIL import Image

from modules.utils import ShapeLabError, atomic_write, require_file

SPLITS = ("train", "val", "test")


def rendering_dir(root, synset, shape_id):
    return os.path.join(root, "ShapeNetRendering", synset, shape_id, "rendering")


def binvox_path(root, synset, shape_id):
    return os.path.join(root, "ShapeNetVox32", synset, shape_id, "model.binvox")


def mesh_path(root, synset, shape_id):
    return os.path.join(root, "ShapeNetCore.v1", synset, shape_id, "model.off")


def read_rendering_metadata(path):
    """(V,5) float32: azimuth, elevation, in-plane rotation, distance ratio, fov per view."""
    path = require_file(os.fspath(path), "R2N2 rendering_metadata.txt")
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ShapeLabError(f"{path}: expected 5 numbers per line ({err})") from err
    if table.shape[1] != 5:
        raise ShapeLabError(f"{path}: expected 5 columns (azimuth elevation in-plane distance fov), "
                            f"got {table.shape[1]}")
    return table.astype(np.float32)


def write_rendering_metadata(path, rows):
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        for row in rows:
            f.write(" ".join(f"{float(v):.6g}" for v in row) + "\n")


def read_image(path, mode="RGBA"):
    """uint8 (H,W,C) array of a rendering."""
    path = require_file(os.fspath(path), "image")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except Exception as err:
        raise ShapeLabError(f"{path}: not a readable image ({type(err).__name__}: {err})") from err


def write_image(path, array, **save_kwargs):
    """uint8 (H,W,3|4) array -> image file (format from the extension). Atomic."""
    with atomic_write(path) as tmp:
        Image.fromarray(np.asarray(array, np.uint8)).save(tmp, **save_kwargs)


def read_renderings(root, synset, shape_id):
    """(images uint8 (V,137,137,4), metadata (V,5))."""
    d = rendering_dir(root, synset, shape_id)
    meta = read_rendering_metadata(os.path.join(d, "rendering_metadata.txt"))
    images = np.stack([read_image(os.path.join(d, f"{i:02d}.png")) for i in range(len(meta))])
    return images, meta


def read_split(path, split):
    """[(synset, id, [view indices]), ...] of `split.json`."""
    path = require_file(os.fspath(path), "R2N2 split.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ShapeLabError(f"{path}: not valid JSON ({err})") from err
    if split not in data:
        raise ShapeLabError(f"{path}: no '{split}' key (has {sorted(data)})")
    return [(s, i, list(v)) for s, models in sorted(data[split].items()) for i, v in sorted(models.items())]


def write_split(path, splits):
    """splits: {split: [(synset, id, views), ...]}."""
    data = {k: {} for k in SPLITS}
    for k, items in splits.items():
        for s, i, views in items:
            data[k].setdefault(s, {})[i] = list(views)
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, sort_keys=True)
