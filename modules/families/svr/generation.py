"""Predictions of the single-view family as files and pictures, and its generator (generate.py for task `svr`).

Output layout (next to the occupancy family's): <exp>/evaluation_<ckpt>_@<spec>/generation/<synset>/<id>/
  input.png                     the view the model saw (image_size x image_size RGB)
  surface_reconstruction.off    the predicted surface (vox: marching cubes of the probabilities at the cell
                                centres; mesh: the offset ico-sphere; implicit: MISE; parametric: the patches'
                                UV-grid triangulation), so evaluate.py can read every type but point
  prediction.obj                the same mesh as OBJ (mesh, parametric)
  prediction.binvox / .npy      vox: the thresholded 32^3 grid (binvox over [-0.5,0.5]^3) and the probabilities
  points.ply                    point / parametric: the predicted cloud
  reconstruction.png            input image | prediction | ground truth
  turntable.gif                 prediction | ground truth, 360 degrees (the first `gifs` objects)
<spec> = the decoder type (implicit: `implicit_<mise_res>x<mise_steps>`).
"""
import itertools
import os
import time

import numpy as np
import torch
from tqdm import tqdm

from modules.geometry import mise
from modules.geometry.binvox import write_binvox
from modules.geometry.io import save_mesh, save_point_cloud
from modules.geometry.mise import marching_cubes
from modules.metrics import sample_mesh_surface
from modules.models.svr import SingleViewModel
from modules.utils import ShapeLabError
from modules.vis import save_gif, save_panels_png
from modules.vis.figures import bounds_of, figure_to_array, new_figure
from modules.vis.meshes import draw_mesh
from modules.vis.pointclouds import draw_point_cloud
from modules.vis.render import save_image_png

IMPLICIT_BOX = (-0.55, 0.55)   # ONet's box 1 + padding 0.1, where the implicit decoder's queries were drawn


def model_device(model):
    return next(itertools.chain(model.parameters(), model.buffers())).device


def voxel_mesh(probs, threshold=0.5):
    """Marching cubes of a (R,R,R) probability grid sampled at the cell centres -> (vertices, faces)."""
    R = probs.shape[0]
    half = 0.5 - 0.5 / R
    return marching_cubes(np.asarray(probs, np.float64), threshold, -half, half)


@torch.no_grad()
def predict(model, image, n_points=None, mise_res=32, mise_steps=2, grid_res=None, batch_points=100000,
            seed=0):
    """One image (3,H,W) -> dict of numpy arrays: `points` (N,3) for point/parametric, `vertices`/`faces` for
    every type that has a surface (all but point), `probs` (R,R,R) for vox. The model is used in eval mode."""
    if not isinstance(model, SingleViewModel):
        raise ShapeLabError(f"the single-view generator needs a SingleViewModel, got {type(model).__name__}")
    model.eval()
    x = image[None].to(model_device(model))
    t = model.type
    out = {}
    if t == "vox":
        out["probs"] = torch.sigmoid(model(x)[0]).cpu().numpy()
        out["vertices"], out["faces"] = voxel_mesh(out["probs"], model.threshold)
    elif t == "point":
        out["points"] = model(x)[0].cpu().numpy()
    elif t == "mesh":
        out["vertices"], out["faces"] = model(x)[0].cpu().numpy(), model.faces.cpu().numpy()
    elif t == "implicit":
        feat = model.encode(x)

        def logits(q):
            return model.decode(feat, queries=q[None])[0]
        v, f, _ = mise.mise_extract(logits, mise_res, mise_steps, model.logit_threshold, batch_points,
                                    IMPLICIT_BOX, device=x.device)
        out["vertices"], out["faces"] = np.asarray(v, np.float32), np.asarray(f, np.int64)
    elif t == "parametric":
        feat = model.encode(x)
        g = torch.Generator(device=x.device).manual_seed(seed)
        out["points"] = model.decoder.sample(feat, n_points or model.n_points, generator=g)[0].cpu().numpy()
        v, f = model.decoder.mesh(feat, grid_res or model.grid_res)
        out["vertices"], out["faces"] = v[0].cpu().numpy(), f.cpu().numpy()
    return out


def surface_samples(model, prediction, n_points, seed=0):
    """Points to score a prediction with (the seed's evaluation) -> (points (n,3) float64, normals or None).

    point: the predicted points themselves; parametric: `n_points` points at random uv (from `predict`);
    vox / mesh / implicit: `n_points` area-uniform samples of the predicted surface (with face normals).
    An empty surface gives (0,3) points."""
    if model.type in ("point", "parametric"):
        return np.asarray(prediction["points"], np.float64), None
    v, f = prediction["vertices"], prediction["faces"]
    if len(f) == 0:
        return np.zeros((0, 3)), None
    return sample_mesh_surface(v, f, n_points, seed=seed)


def gt_panel(sample, title="ground truth"):
    """The best ground truth a sample carries: its mesh, else its cloud, else its voxels' surface."""
    if "mesh.vertices" in sample:
        return {"vertices": _np(sample["mesh.vertices"]), "faces": _np(sample["mesh.faces"]), "title": title}
    if "pointcloud" in sample:
        return {"points": _np(sample["pointcloud"]), "title": title}
    if "voxels" in sample:
        v, f = voxel_mesh(_np(sample["voxels"]).astype(np.float64), 0.5)
        return {"vertices": v, "faces": f, "title": title}
    return None


def prediction_panel(prediction, title="prediction"):
    if "points" in prediction:
        return {"points": prediction["points"], "title": title}
    if len(prediction["faces"]) == 0:
        return {"points": np.zeros((1, 3)), "title": title + " (empty)"}
    return {"vertices": prediction["vertices"], "faces": prediction["faces"], "title": title}


def picture_panels(model, sample, n_points=None, prediction=None):
    """[input image, prediction, ground truth] panels of one sample for `save_panels_png`."""
    prediction = predict(model, sample["image"], n_points) if prediction is None else prediction
    panels = [{"image": _np(sample["image"]).transpose(1, 2, 0), "title": "input"}, prediction_panel(prediction)]
    gt = gt_panel(sample)
    if gt is not None:
        panels.append(gt)
    return panels


def save_side_by_side_gif(path, panels, n_frames=24, fps=8, elev=20, panel_size=2.5, dpi=80):
    """360-degree turntable GIF of 3-D panels side by side (e.g. source | target), one shared box."""
    geometry = [np.asarray(p["points"] if "points" in p else p["vertices"], np.float64) for p in panels]
    bounds = bounds_of(geometry)
    frames = []
    for k in range(n_frames):
        azim = -60 + 360.0 * k / n_frames
        fig = new_figure((panel_size * len(panels), panel_size), dpi)
        for i, p in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
            if "points" in p:
                draw_point_cloud(ax, p["points"], None, None, elev, azim, p.get("title"), bounds)
            else:
                draw_mesh(ax, p["vertices"], p["faces"], None, None, elev, azim, p.get("title"), bounds)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.02)
        frames.append(figure_to_array(fig))
    return save_gif(path, frames, fps=fps)


def _np(x):
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def write_prediction(obj_dir, model, prediction, image):
    """The files of one prediction (see the module docstring) -> list of paths."""
    paths = [os.path.join(obj_dir, "input.png")]
    save_image_png(paths[0], (np.clip(_np(image).transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8))
    if "probs" in prediction:
        grid = prediction["probs"] > model.threshold
        paths.append(os.path.join(obj_dir, "prediction.binvox"))
        write_binvox(paths[-1], grid, translate=(-0.5, -0.5, -0.5), scale=1.0)
        paths.append(os.path.join(obj_dir, "prediction_probs.npy"))
        np.save(paths[-1], prediction["probs"].astype(np.float32))
    if "points" in prediction:
        paths.append(os.path.join(obj_dir, "points.ply"))
        save_point_cloud(paths[-1], prediction["points"])
    if "faces" in prediction:
        paths.append(os.path.join(obj_dir, "surface_reconstruction.off"))
        save_mesh(paths[-1], prediction["vertices"], prediction["faces"])
        if model.type in ("mesh", "parametric"):
            paths.append(os.path.join(obj_dir, "prediction.obj"))
            save_mesh(paths[-1], prediction["vertices"], prediction["faces"])
    return paths


def generate(model, dataset, out_dir, n_points=None, mise_res=32, mise_steps=2, pictures=True, gifs=3,
             overwrite=False, progress=True, log=print):
    """Predict every item of `dataset` (a SingleViewDataset) into out_dir/generation/<synset>/<id>/.
    Returns {"done", "skipped", "failed": [(item, message)], "seconds": [...]}."""
    if len(dataset) == 0:
        raise ShapeLabError("no objects to generate: the split is empty")
    summary = {"done": 0, "skipped": 0, "failed": [], "seconds": []}
    for i in tqdm(range(len(dataset)), desc="generate", disable=not progress):
        synset, sid = dataset.object_key(i)
        obj_dir = os.path.join(out_dir, "generation", synset, sid)
        marker = os.path.join(obj_dir, "input.png")
        if os.path.exists(marker) and not overwrite:
            summary["skipped"] += 1
            continue
        try:
            sample = dataset[i]
            start = time.perf_counter()
            prediction = predict(model, sample["image"], n_points, mise_res, mise_steps)
            summary["seconds"].append(time.perf_counter() - start)
            if pictures:
                panels = picture_panels(model, sample, n_points, prediction)
                save_panels_png(os.path.join(obj_dir, "reconstruction.png"), panels, panel_size=2.5)
                if i < gifs:
                    save_side_by_side_gif(os.path.join(obj_dir, "turntable.gif"), panels[1:])
            write_prediction(obj_dir, model, prediction, sample["image"])   # input.png last: the done marker
            summary["done"] += 1
        except ShapeLabError as err:
            log(f"error: {synset}/{sid}: {err} (skipped)")
            summary["failed"].append((f"{synset}/{sid}", str(err)))
    return summary


class SingleViewGenerator:
    """generate.py for task `svr`: uses the options threshold (vox/implicit), mise_res, mise_steps (implicit),
    seed, pictures, overwrite; GIFs for the first 3 objects."""

    def __init__(self, section):
        self.cfg = section["config"]

    def spec(self, opts):
        kind = self.cfg["model"]["name"][len("svr_"):]
        return f"{kind}_{opts['mise_res']}x{opts['mise_steps']}" if kind == "implicit" else kind

    def run(self, model, dataset, out_dir, opts, device):
        if not isinstance(model, SingleViewModel):
            raise ShapeLabError(f"the single-view generator needs a SingleViewModel, got {type(model).__name__}")
        if opts.get("threshold") is not None:
            if not 0.0 < float(opts["threshold"]) < 1.0:
                raise ShapeLabError(f"-threshold {opts['threshold']}: expected a probability in (0, 1)")
            model.threshold = float(opts["threshold"])
        summary = generate(model, dataset, out_dir, None, opts["mise_res"], opts["mise_steps"], opts["pictures"],
                           overwrite=opts["overwrite"])
        summary["info"] = {"type": model.type, "threshold": model.threshold}
        return summary
