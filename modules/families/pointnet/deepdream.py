"""DeepDream for point clouds: gradient ascent on the coordinates of a cloud so that chosen
channels of the PointNet segmenter fire more (or a part's score rises).

Objectives (one scalar per step, maximised):
- channels: mean over layers l in `layer_ids` of mean_{c in channel_ids, points} feature_l[c]^2
  (the original's MSE(activation, 0)), layers 0-5 = 64, 128, 128, 512, 2048, 2048 channels;
- parts (`part_ids`): mean over the given parts and all points of the part's score (logit).
  The original squared the scores, which rewards large negative logits as much as positive ones.
Step: x <- x + lr * g / std(g), with g the gradient w.r.t. the coordinates. The original also
subtracted the mean of g, which only translates the whole cloud; we keep the translation out.
"""
import os

import numpy as np
import torch

from modules import vis
from modules.data import categories
from modules.engine.input_optimization import optimize_inputs
from modules.families.pointnet.nst import LAYER_CHANNELS, NUM_LAYERS, load_shape, run_segmenter
from modules.families.pointnet.weights import load_segmenter
from modules.geometry.io import save_point_cloud
from modules.utils import ShapeLabError


def check_objective(layer_ids, channel_ids, part_ids, category, channels=LAYER_CHANNELS):
    """Validate the objective; returns (layer_ids, channel_ids, part_ids) as lists."""
    layer_ids, channel_ids, part_ids = list(layer_ids or []), list(channel_ids or []), list(part_ids or [])
    if part_ids:
        for pid in part_ids:
            categories.check_part_id(category, pid)
        return [], [], part_ids
    if not layer_ids:
        raise ShapeLabError("deepdream: give --layer_ids (with --channel_ids) or --part_ids")
    for layer in layer_ids:
        if not 0 <= int(layer) < NUM_LAYERS:
            raise ShapeLabError(f"--layer_ids: layer id {layer} out of range; valid layer ids are 0-5 "
                                f"(channels {', '.join(map(str, channels))})")
    for layer in layer_ids:
        for ch in channel_ids:
            if not 0 <= int(ch) < channels[int(layer)]:
                raise ShapeLabError(f"--channel_ids: channel {ch} out of range for layer {layer} "
                                    f"({channels[int(layer)]} channels: 0-{channels[int(layer)] - 1})")
    return [int(v) for v in layer_ids], [int(v) for v in channel_ids], []


def dream_objective(feats, scores, layer_ids, channel_ids, part_ids):
    """The scalar to maximise (see module docstring). Empty channel_ids = all channels of the layer."""
    if part_ids:
        return scores[0, part_ids].mean()
    terms = []
    for layer in layer_ids:
        f = feats[layer]
        if channel_ids:
            f = f[:, channel_ids]
        terms.append(f.pow(2).mean())
    return torch.stack(terms).mean()


def objective_and_grad(model, points, category, layer_ids, channel_ids, part_ids):
    """(objective value, gradient (N,3) w.r.t. the points) at `points`."""
    x = points.detach().requires_grad_(True)
    with torch.enable_grad():
        feats, scores = run_segmenter(model, x, category)
        objective = dream_objective(feats, scores, layer_ids, channel_ids, part_ids)
        grad, = torch.autograd.grad(objective, x)
    return float(objective.detach()), grad.detach()


def deepdream(model, points, category, layer_ids=(), channel_ids=(), part_ids=(), lr=0.01, num_iters=10,
              callback=None, callback_every=1, out_dir=None, progress=False):
    """Normalised gradient ascent on (N,3) points through the shared input-optimisation loop
    (modules.engine.input_optimization, step rule `normalized`). Returns (points, objective values at
    steps 0..num_iters).

    `callback(step, points, gradient (N,3), objective)` is called at step 0, every `callback_every`
    steps and at num_iters, with the cloud after `step` ascent steps and the gradient at it. With
    `out_dir`, the loop's checkpoint and TensorBoard summary are written there.
    """
    layer_ids, channel_ids, part_ids = check_objective(layer_ids, channel_ids, part_ids, category,
                                                       getattr(model, "feature_channels", LAYER_CHANNELS))
    x = points.detach().clone().requires_grad_(True)

    def objective(it):
        feats, scores = run_segmenter(model, x, category)
        return dream_objective(feats, scores, layer_ids, channel_ids, part_ids), {}

    final = {}

    def on_snapshot(step, tag, logs):
        value, grad = objective_and_grad(model, x.detach(), category, layer_ids, channel_ids, part_ids)
        if tag == "final":
            final["value"] = value
        if callback is not None and tag != "interrupted":
            callback(step, x.detach(), grad, value)

    history = optimize_inputs({"points": x}, objective, num_iters, out_dir, step_rule="normalized", lr=lr,
                              maximize=True, snapshot_every=callback_every, on_snapshot=on_snapshot,
                              resume=False, progress=progress, desc="deepdream")
    return x.detach(), [h["loss"] for h in history] + [final["value"]]


def run_deepdream(obj_path, obj_cat, out_dir, layer_ids=(), channel_ids=(), part_ids=(), lr=0.01, num_iters=10,
                  visualize_every=2, num_points=5000, pretrained=None, width_multiplier=1.0, seed=0, model=None):
    """Load, dream, and write every `visualize_every` steps step_XXXX.xyz / .ply / .png (coloured by the
    per-point gradient summed over x, y, z: red positive, blue negative) plus progress.gif at the end.
    Returns dict(points, history, files)."""
    category = categories.category_name(obj_cat)
    categories.category_index(category)
    check_objective(layer_ids, channel_ids, part_ids, category)
    if visualize_every < 1:
        raise ShapeLabError(f"--visualize_every must be >= 1, got {visualize_every}")
    torch.manual_seed(seed)
    if model is None:
        model = load_segmenter(pretrained, width_multiplier)
    shape = load_shape(obj_path, category, num_points, np.random.default_rng(seed))
    os.makedirs(out_dir, exist_ok=True)
    frames, files = [], []

    def save(step, pts, grad, objective):
        colors = vis.attribution_colors(grad.sum(dim=1).cpu().numpy(), "negpos")
        stem = os.path.join(out_dir, f"step_{step:04d}")
        save_point_cloud(stem + ".xyz", pts.cpu().numpy())
        save_point_cloud(stem + ".ply", pts.cpu().numpy(), colors=colors)
        vis.save_point_cloud_png(stem + ".png", pts.cpu().numpy(), colors, title=f"step {step}: {objective:.4g}")
        frames.append(stem + ".png")
        files.extend([stem + ".xyz", stem + ".ply", stem + ".png"])

    points, history = deepdream(model, shape["points"], category, layer_ids, channel_ids, part_ids, lr,
                                num_iters, save, visualize_every, out_dir)
    gif = os.path.join(out_dir, "progress.gif")
    vis.save_gif(gif, frames)
    files.append(gif)
    return dict(points=points, history=history, files=files)
