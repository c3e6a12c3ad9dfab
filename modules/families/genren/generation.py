"""genren inference, the seed's loadtest.py modes, and the generator of generate.py for task `genren`.

img_recon (vision cycle) writes, per input image NAME.png:
  NAME.ply              the reconstructed mesh, posed canonically (the predicted pose undone), vertex colours
  NAME-texture.png      the inferred 64² UV texture image (most probable hypothesis)
  NAME-rerender.png     the re-render with the most probable pose (RGBA)
  NAME-input.png        the input as the model saw it (64², RGBA)
  vision_grid.png       input | reconstruction from 3 views | re-render, one row per image, titled columns
shape_recon (graphics cycle) writes, per input shape ID:
  ID-render-K.png       K = 0..n_renders-1 renders with a random pose and a random texture (RGBA)
  graphics_grid.png     input points | mesh AE (both grey, shaded, same 3/4 view) | the renders, one row per shape,
                        titled columns
Both check every input before writing, and write a new output folder under a temporary name that is renamed at the
end (nothing half-written); an existing folder is refused unless allow_overwrite, then files are replaced.
"""
import os
import shutil
import tempfile
import time

import numpy as np
import torch
from torchvision.utils import save_image

from modules.data import genren as genren_io
from modules.families.genren.evaluation import (graphics_grid, reconstruction_grid, save_textured_ply,
                                                to_display)
from modules.families.genren.training import GenrenUnpairedDataset, load_rgba, normalize_cloud
from modules.utils import ShapeLabError, atomic_write


def _save_png(path, image):
    with atomic_write(path) as tmp:
        save_image(image, tmp, format="png")


class OutputFolder:
    """Context manager: a new folder is built under a temporary sibling name and renamed on success; an existing
    one is refused unless allow_overwrite (then written in place, file by file, atomically)."""

    def __init__(self, path, allow_overwrite):
        self.path, self.allow = os.path.abspath(path), bool(allow_overwrite)
        if os.path.exists(self.path) and not self.allow:
            raise ShapeLabError(f"output folder {path} exists; pass --allow_overwrite True to write into it")
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ShapeLabError(f"output folder {path} is a file")

    def __enter__(self):
        if os.path.isdir(self.path):
            self.tmp = None
            return self.path
        parent = os.path.dirname(self.path)
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(self.path) + "-", dir=parent)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if self.tmp is None:
            return False
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def set_inference_mode(model, bn_mode, batch_size=2):
    """'running' = eval mode (BatchNorm running statistics); 'batch' = train-mode BatchNorm on the batch (the
    original's advice: "evaluations should be done in batches in train mode"), dropout off. A batch of one image
    has no batch statistics: it uses the running ones."""
    if bn_mode not in ("batch", "running"):
        raise ShapeLabError(f"--bn_mode {bn_mode}: expected batch or running")
    model.eval()
    if bn_mode == "batch" and batch_size > 1:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.train()
                m.momentum = 0.0          # use batch statistics, leave the stored running statistics untouched


def list_image_files(imgs_dir, n=None):
    if not imgs_dir or not os.path.isdir(imgs_dir):
        raise ShapeLabError(f"--imgs_dir {imgs_dir}: no such folder of .png images")
    files = genren_io.list_images(imgs_dir)
    if not files:
        raise ShapeLabError(f"--imgs_dir {imgs_dir}: no .png files")
    return files[:n] if n else files


@torch.no_grad()
def img_recon(model, image_files, out_dir, allow_overwrite=False, no_alpha="error", batch_size=16, bn_mode="batch"):
    """Vision cycle on image files (see the module docstring). Returns {"images": n, "seconds": s}."""
    device = model.template_verts.device
    size = model.image_size
    images = torch.stack([load_rgba(p, size, no_alpha) for p in image_files])     # every input checked first
    names = [os.path.splitext(os.path.basename(p))[0] for p in image_files]
    faces = model.template_faces.cpu().numpy()
    t0 = time.time()
    grids = []
    with OutputFolder(out_dir, allow_overwrite) as out:
        for a in range(0, len(images), batch_size):
            x = images[a:a + batch_size].to(device)
            set_inference_mode(model, bn_mode, x.shape[0])
            res = model.cycle_2(x)
            best = model.best_hypothesis(res)
            idx = torch.arange(x.shape[0], device=device)
            for k in range(x.shape[0]):
                name, b = names[a + k], int(best[k])
                save_textured_ply(os.path.join(out, f"{name}.ply"), res["verts"][k].cpu().numpy(), faces,
                                  res["colors"][k, b].cpu().numpy())
                _save_png(os.path.join(out, f"{name}-texture.png"), res["texture_images"][k, b].cpu())
                _save_png(os.path.join(out, f"{name}-rerender.png"), to_display(res["renders"][idx, best][k:k + 1])[0].cpu())
                _save_png(os.path.join(out, f"{name}-input.png"), to_display(x[k:k + 1])[0].cpu())
            grids.append(reconstruction_grid(model, x).cpu())
        _save_png(os.path.join(out, "vision_grid.png"), torch.cat(grids, 1))
    return {"images": len(images), "seconds": time.time() - t0}


def load_shapes(shapes_dir, n_points, n=None, seed=0, failed=None):
    """(ids, points (K,n_points,3), normals) from a folder of X.PC.pt / X.normals.pt (every file checked).

    failed: None -> the first unreadable shape is a ShapeLabError; a list -> (id, message) of each unreadable
    shape is appended to it and the shape skipped (a batch that reports what it could not do)."""
    if not shapes_dir or not os.path.isdir(shapes_dir):
        raise ShapeLabError(f"--shapes_dir {shapes_dir}: no such folder of X.PC.pt / X.normals.pt files")
    ids = genren_io.list_shapes(shapes_dir)
    if not ids:
        raise ShapeLabError(f"--shapes_dir {shapes_dir}: no .PC.pt files")
    rng = np.random.default_rng(seed)
    if n and n < len(ids):
        ids = sorted(rng.choice(ids, n, replace=False).tolist())
    pts, nrms = [], []
    good = []
    for sid in ids:
        try:
            p, q = genren_io.read_shape(shapes_dir, sid)
            if len(p) < n_points:
                raise ShapeLabError(f"{shapes_dir}/{sid}.PC.pt: {len(p)} points, {n_points} needed")
        except ShapeLabError as err:
            if failed is None:
                raise
            failed.append((sid, str(err)))
            continue
        good.append(sid)
        sel = torch.from_numpy(rng.choice(len(p), n_points, replace=False))
        pts.append(normalize_cloud(p)[0][sel])
        nrms.append(torch.nn.functional.normalize(q, dim=1)[sel])
    if not good:
        first = f"; first: {failed[0][1]}" if failed else ""
        raise ShapeLabError(f"--shapes_dir {shapes_dir}: none of the {len(ids)} shapes could be read{first}")
    return good, torch.stack(pts), torch.stack(nrms)


@torch.no_grad()
def shape_recon(model, ids, points, normals, out_dir, allow_overwrite=False, n_renders=3, seed=0, batch_size=16,
                bn_mode="batch"):
    """Graphics cycle: n_renders random-pose, random-texture renders per shape (see the module docstring)."""
    device = model.template_verts.device
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    grids = []
    with OutputFolder(out_dir, allow_overwrite) as out:
        for a in range(0, len(ids), batch_size):
            p, q = points[a:a + batch_size].to(device), normals[a:a + batch_size].to(device)
            set_inference_mode(model, bn_mode, p.shape[0])
            for r in range(n_renders):
                xi_p = torch.randn(p.shape[0], model.dim_xi_p, generator=g).to(device)
                xi_T = torch.randn(p.shape[0], model.dim_xi_T, generator=g).to(device)
                renders = to_display(model.shape_to_image(p, q, xi_p=xi_p, xi_T=xi_T)["renders"]).cpu()
                for k in range(p.shape[0]):
                    _save_png(os.path.join(out, f"{ids[a + k]}-render-{r}.png"), renders[k])
            grids.append(graphics_grid(model, p, q, n_renders, seed=seed).cpu())
        _save_png(os.path.join(out, "graphics_grid.png"), torch.cat(grids, 1))
    return {"shapes": len(ids), "seconds": time.time() - t0}


class GenRenGenerator:
    """generate.py for task `genren`: img_recon on the images of the chosen split (up to -max_objects, default 16),
    written to <exp>/evaluation_<ckpt>_@img_recon/generation/."""

    def __init__(self, section):
        self.cfg = section["config"]

    def spec(self, opts):
        return "img_recon"

    def build_inputs(self, section, split):
        return GenrenUnpairedDataset(
            split, root=section["root"], categories=section["categories"], img_data_dir=section["img_data_dir"],
            shape_data_dir=section["shape_data_dir"], img_size=section["img_size"], n_points=section["n_pc_points"],
            held_out=section["held_out"], no_alpha=section["no_alpha"], max_items=section.get("max_items") or 16)

    def run(self, model, dataset, out_dir, opts, device):
        files = [p for p, _ in dataset.images]
        t0 = time.time()
        res = img_recon(model, files, os.path.join(out_dir, "generation"), allow_overwrite=True,
                        no_alpha=dataset.no_alpha)
        per = (time.time() - t0) / max(1, len(files))
        return {"done": res["images"], "skipped": 0, "failed": [], "empty": [], "seconds": [per] * len(files),
                "info": {"mode": "img_recon"}}


__all__ = ["img_recon", "shape_recon", "load_shapes", "list_image_files", "GenRenGenerator", "OutputFolder"]
