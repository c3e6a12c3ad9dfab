"""genren-style data: a shape folder of `X.PC.pt` / `X.normals.pt` tensors and an image folder of masked RGBA PNGs.

Layout under ROOT:
    <category>/shapes/<id>.PC.pt        float32 tensor (NP,3)
    <category>/shapes/<id>.normals.pt   float32 tensor (NP,3)
    <category>/images/<id>_NN.png       RGBA, alpha = object mask (background transparent)
"""
import glob
import io
import os

import numpy as np
import torch

from modules.utils import ShapeLabError, atomic_write, require_file


def _load_tensor(path, what):
    path = require_file(os.fspath(path), what)
    try:
        t = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ShapeLabError(f"{path}: not a readable torch tensor file ({type(err).__name__}: {err})") from err
    if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[1] != 3:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ShapeLabError(f"{path}: {what} must be a (NP,3) tensor, got {shape}")
    return t.float()


def read_shape(shapes_dir, shape_id):
    """(points (NP,3), normals (NP,3)) float32 tensors."""
    pc = _load_tensor(os.path.join(shapes_dir, shape_id + ".PC.pt"), "genren point cloud")
    nrm = _load_tensor(os.path.join(shapes_dir, shape_id + ".normals.pt"), "genren normals")
    if nrm.shape != pc.shape:
        raise ShapeLabError(f"{shapes_dir}/{shape_id}.normals.pt: shape {tuple(nrm.shape)} differs from "
                            f"the point cloud's {tuple(pc.shape)}")
    return pc, nrm


def list_shapes(shapes_dir):
    return sorted(os.path.basename(p)[:-len(".PC.pt")] for p in glob.glob(os.path.join(shapes_dir, "*.PC.pt")))


def _save_tensor(path, tensor):
    # torch.save into memory first so the bytes (and the atomic rename) do not depend on the file name
    buf = io.BytesIO()
    torch.save(torch.as_tensor(np.asarray(tensor, np.float32)).contiguous(), buf)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getvalue())


def write_shape(shapes_dir, shape_id, points, normals):
    _save_tensor(os.path.join(shapes_dir, shape_id + ".PC.pt"), points)
    _save_tensor(os.path.join(shapes_dir, shape_id + ".normals.pt"), normals)


def list_images(images_dir):
    return sorted(glob.glob(os.path.join(images_dir, "*.png")))
