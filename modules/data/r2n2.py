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

Axes: FRAME = ShapeNet v1 (y up, front +x): the meshes are v1 model files, the voxels' axes are v1's, and
the metadata's azimuth is measured in v1 (azimuth 0 = camera on +x, in front of the object). Readers turn
meshes, voxels and cameras into the canonical frame (y up, front +z) together (`view_camera(...)`, frame=);
the images do not change with the frame. `metadata_rows_in_frame` turns canonical view rows into FRAME's.
"""
import json
import os

import numpy as np
from PIL import Image

from modules.geometry.frames import from_canonical_rotation, load_mesh_in_frame, rotate_camera, to_canonical_rotation
from modules.utils import ShapeLabError, atomic_write, require_file

SPLITS = ("train", "val", "test")
FRAME = "shapenet_v1"


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


def view_camera(row, size=137, frame=FRAME, **kwargs):
    """The Camera of one metadata row (azimuth, elevation, in-plane, ratio, fov) over CANONICAL coordinates:
    PyTorch3D's R2N2 camera of the row in `frame` (the frame the metadata is measured in), turned with it."""
    from modules.geometry.cameras import r2n2_camera  # deferred: torch; the writers' workers stay torch-free
    az, el, _, ratio, _ = (float(x) for x in row)
    return rotate_camera(r2n2_camera(az, el, ratio, size=size, **kwargs), to_canonical_rotation(frame))


def read_cameras(root, synset, shape_id, size=137, frame=FRAME):
    """[Camera, ...] of every view over canonical coordinates (PyTorch3D's R2N2 convention, see `view_camera`)."""
    meta = read_rendering_metadata(os.path.join(rendering_dir(root, synset, shape_id), "rendering_metadata.txt"))
    return [view_camera(row, size, frame) for row in meta.astype(np.float64)]


def metadata_rows_in_frame(rows, frame=FRAME):
    """(V,5) metadata rows whose azimuth/elevation are measured in the canonical frame -> the same cameras
    measured in `frame` (the camera centre turned into `frame`; elevation, ratio and the rest unchanged).
    Only frames with the same up axis can be written this way (R2N2's cameras orbit the up axis)."""
    R = from_canonical_rotation(frame)
    rows = np.array(rows, np.float64)
    if not np.allclose(R[:, 1], [0, 1, 0]):
        raise ShapeLabError(f"R2N2 metadata in frame {frame!r}: its up axis must be y (the cameras orbit y)")
    az = np.radians(rows[:, 0])
    x, z = np.cos(az), np.sin(az)                    # azimuth 0 on +x, 90 on +z (r2n2_eye)
    xr, zr = R[0, 0] * x + R[0, 2] * z, R[2, 0] * x + R[2, 2] * z
    rows[:, 0] = np.mod(np.round(np.degrees(np.arctan2(zr, xr)), 9), 360.0)   # (rounded: no 360 for -1e-14)
    return rows


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


def read_mesh(path, frame=FRAME, allow_empty=False):
    """The ShapeNetCore.v1 model.off mesh (trimesh.Trimesh) with its vertices in the canonical frame (the file is in `frame`)."""
    return load_mesh_in_frame(path, frame, allow_empty)
