"""3D-R2N2 style files (ShapeNetRendering + ShapeNetVox32): read and write.

Layout under ROOT:
    ShapeNetRendering/<synset>/<id>/rendering/NN.png          137x137 RGBA (transparent background), NN = 00..23
    ShapeNetRendering/<synset>/<id>/rendering/renderings.txt   the PNG names, one per line
    ShapeNetRendering/<synset>/<id>/rendering/rendering_metadata.txt
        one line per view, 5 numbers: azimuth elevation in-plane distance-ratio fov (degrees); R2N2 draws
        azimuth U[0,360), elevation U[25,30), ratio U[0.65,0.95) and writes in-plane 0, fov 25 (a value
        its Blender script ignores: the real lens is 35 mm on 32 mm, a 49.1 degree field of view)
    ShapeNetVox32/<synset>/<id>/model.binvox                   32^3 voxels; header translate/scale place them
                                                               on the mesh (binvox: bbox min corner, largest side)
    ShapeNetCore.v1/<synset>/<id>/model.off                    the mesh in the v1 frame (y up, bbox-centred;
                                                               OFF, not OBJ, in the embedded data)
    split.json     {"train"|"val"|"test": {synset: {id: [view indices]}}} (PyTorch3D R2N2 split format)

Cameras: `read_cameras` computes them from the metadata as PyTorch3D's R2N2 dataset does
(`modules.geometry.cameras.r2n2_camera`: distance = 1.75 * ratio, fixed intrinsics), in the mesh's frame.
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


def image_path(root, synset, shape_id, view):
    return os.path.join(rendering_dir(root, synset, shape_id), f"{int(view):02d}.png")


def read_rendering_metadata(path):
    """(V,5) float32: azimuth, elevation, in-plane rotation, distance ratio, fov per view."""
    path = require_file(os.fspath(path), "R2N2 rendering_metadata.txt")
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.replace("[", " ").replace("]", " ").replace(",", " ").split()
            if len(fields) != 5:
                raise ShapeLabError(f"{path}:{lineno}: expected 5 columns (azimuth elevation in-plane distance-ratio "
                                    f"fov), got {len(fields)}")
            try:
                rows.append([float(x) for x in fields])
            except ValueError:
                raise ShapeLabError(f"{path}:{lineno}: expected 5 numbers, got {line.strip()[:60]!r}") from None
    if not rows:
        raise ShapeLabError(f"{path}: no views (expected one line of 5 numbers per view)")
    table = np.asarray(rows)
    if not np.all(np.isfinite(table)) or np.any(table[:, 3] <= 0):
        raise ShapeLabError(f"{path}: expected finite numbers and a positive distance ratio (column 4)")
    return table.astype(np.float32)


def read_cameras(root, synset, shape_id, size=137):
    """[Camera, ...] of every view (PyTorch3D's R2N2 convention, see `modules.geometry.cameras.r2n2_camera`)."""
    from modules.geometry.cameras import r2n2_camera  # deferred: torch; the writers' workers stay torch-free
    meta = read_rendering_metadata(os.path.join(rendering_dir(root, synset, shape_id), "rendering_metadata.txt"))
    return [r2n2_camera(az, el, ratio, size=size) for az, el, _, ratio, _ in meta.astype(np.float64)]


def write_rendering_metadata(path, rows):
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        for row in rows:
            f.write(" ".join(f"{float(v):.6g}" for v in row) + "\n")


def read_image(path, mode="RGBA", allow_no_alpha=False, size=None):
    """uint8 (H,W,C) array of a rendering; mode "RGBA", "RGB" or "L".

    Grey and palette images are converted to RGB(A). An image WITHOUT an alpha channel where RGBA is
    asked for is refused (the alpha of R2N2 renders is the object mask) unless allow_no_alpha=True, which
    makes it opaque (alpha 255). size: expected (width, height), checked."""
    path = require_file(os.fspath(path), "image")
    try:
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            if mode == "RGBA" and not has_alpha and not allow_no_alpha:
                raise ShapeLabError(f"{path}: image mode {im.mode} has no alpha channel, expected RGBA (R2N2 renders "
                                    f"carry the object mask in alpha; allow_no_alpha=True treats it as opaque)")
            if size is not None and tuple(im.size) != tuple(size):
                raise ShapeLabError(f"{path}: image is {im.size[0]}x{im.size[1]}, expected {size[0]}x{size[1]}")
            return np.asarray(im.convert(mode))
    except ShapeLabError:
        raise
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
    images = np.stack([read_image(image_path(root, synset, shape_id, i)) for i in range(len(meta))])
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
