"""DeepDream for point clouds: gradient ascent on the coordinates of a cloud so that chosen
channels of the PointNet segmenter fire more (or a part's score rises).

Objectives (one scalar per step, maximised):
- channels: mean over layers l in `layer_ids` of mean_{c in channel_ids, points} feature_l[c]^2
  (the original's MSE(activation, 0)), layers 0-5 = 64, 128, 128, 512, 2048, 2048 channels;
- parts (`part_ids`): mean over the given parts and all points of the part's score (logit).
  The original squared the scores, which rewards large negative logits as much as positive ones.
Step rule: Adam with maximize=True on the coordinates (lr 0.01 by default), through the shared loop
(modules.engine.input_optimization). The original's x <- x + lr * (g - mean g) / std(g) let the few
points with the largest gradients jump by many lr (up to ~20x): on the synthetic lamp its lampshade
objective fell at the first step (5.83 -> 4.70 at lr 0.01). Adam moves each coordinate by about lr per
step whatever the gradient's scale, so no point jumps; the objective's history is checked and a fall
is reported (lower --lr then).
"""
import os

import numpy as np
import torch

from modules import vis
from modules.data import categories
from modules.engine.input_optimization import optimize_inputs
from modules.families.pointnet.nst import LAYER_CHANNELS, NUM_LAYERS, describe_shape, load_shape, run_segmenter
from modules.families.pointnet.outputs import EXPERIMENTS, check_name, file_stem, fresh_dir
from modules.families.pointnet.weights import describe_weights, load_segmenter
from modules.geometry.io import save_point_cloud
from modules.utils import ShapeLabError, get_device
from modules.vis.colors import attribution_scale


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
    """Gradient ascent (Adam, maximize) on (N,3) points through the shared input-optimisation loop
    (modules.engine.input_optimization). Returns (points, objective values at steps 0..num_iters).

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

    history = optimize_inputs({"points": x}, objective, num_iters, out_dir, step_rule="adam", lr=lr,
                              maximize=True, snapshot_every=callback_every, on_snapshot=on_snapshot,
                              resume=False, progress=progress, desc="deepdream")
    return x.detach(), [h["loss"] for h in history] + [final["value"]]


def describe_objective(layer_ids, channel_ids, part_ids, category):
    if part_ids:
        names = categories.part_table(category)
        return "mean logit of part " + ", ".join(f"{p} ({names[p]})" for p in part_ids)
    chans = "channels " + " ".join(map(str, channel_ids)) if channel_ids else "all channels"
    return f"mean squared activation of layer {' '.join(map(str, layer_ids))}, {chans}"


def objective_tag(layer_ids, channel_ids, part_ids):
    """Folder-name tag: part25, layer0_ch0-8-16, layer3_all."""
    if part_ids:
        return "part" + "-".join(map(str, part_ids))
    chans = "ch" + "-".join(map(str, channel_ids)) if channel_ids else "all"
    return "layer" + "-".join(map(str, layer_ids)) + "_" + chans


def falls(history):
    """Steps at which the objective went down: [(step, before, after)]."""
    return [(i + 1, a, b) for i, (a, b) in enumerate(zip(history, history[1:])) if b < a]


def run_deepdream(obj_path, obj_cat, out_dir=None, layer_ids=(), channel_ids=(), part_ids=(), lr=0.01, num_iters=10,
                  visualize_every=2, num_points=None, pretrained=None, width_multiplier=1.0, seed=0, model=None,
                  device="cpu", log=print):
    """Load, dream, and write every `visualize_every` steps step_XXXX.xyz / .ply / .png (coloured by the
    per-point gradient summed over x, y, z: red positive, blue negative, with a colour bar) plus
    progress.gif and dream.png (first and last step side by side) at the end.

    out_dir None: experiments/deepdream/<file stem>_<objective>; an existing non-empty folder is never
    overwritten (a numbered sibling is used, and `log` says so). num_points None: every point of the file
    once; more points than the file has is an error (no duplicated points). Everything is checked before
    anything is written. Returns dict(points, history, files, out_dir).
    """
    category = categories.category_name(obj_cat)
    categories.category_index(category)
    layer_ids, channel_ids, part_ids = check_objective(layer_ids, channel_ids, part_ids, category)
    if visualize_every < 1:
        raise ShapeLabError(f"--visualize_every must be >= 1, got {visualize_every}")
    if num_iters < 1:
        raise ShapeLabError(f"--num_iters must be >= 1, got {num_iters}")
    if not lr > 0 or not np.isfinite(lr):
        raise ShapeLabError(f"--lr must be a positive number, got {lr}")
    if num_points is not None and num_points < 1:
        raise ShapeLabError(f"--num_points must be >= 1 (or left out: every point of the file), got {num_points}")
    device = get_device(device)
    torch.manual_seed(seed)
    shape = load_shape(obj_path, category, num_points, np.random.default_rng(seed), allow_duplicates=False,
                       flag="--num_points")
    stem = os.path.splitext(os.path.basename(obj_path))[0]
    if out_dir is None:
        out_dir = os.path.join(EXPERIMENTS, "deepdream",
                               check_name(f"{file_stem(obj_path)}_{objective_tag(layer_ids, channel_ids, part_ids)}", "--obj_path"))
    out_dir, note = fresh_dir(out_dir, "--out_dir")
    if not width_multiplier > 0:
        raise ShapeLabError(f"--width_multiplier must be > 0, got {width_multiplier}")
    if model is None:
        model = load_segmenter(pretrained, width_multiplier, device)
    model = model.to(device)
    objective_text = describe_objective(layer_ids, channel_ids, part_ids, category)
    log(f"deepdream3d: segmenter with {describe_weights(model)}, device {device}\n"
        f"  cloud {describe_shape(shape, category)}\n"
        f"  maximising the {objective_text}: Adam ascent, lr {lr}, {num_iters} steps\n"
        f"  writing to {out_dir}" + (f"\n  note: {note}" if note else ""))
    os.makedirs(out_dir, exist_ok=True)
    frames, files, shown = [], [], []

    def save(step, pts, grad, objective):
        g = grad.sum(dim=1).cpu().numpy()
        pts = pts.cpu().numpy()
        scale = attribution_scale(g, 99.0)   # a few extreme points saturate instead of greying the rest
        colors = vis.attribution_colors(g, "negpos", scale)
        stem_path = os.path.join(out_dir, f"step_{step:04d}")
        save_point_cloud(stem_path + ".xyz", pts)
        save_point_cloud(stem_path + ".ply", pts, colors=colors)
        vis.save_point_cloud_png(stem_path + ".png", pts, colors, title=f"step {step}: objective {objective:.4g}",
                                 colorbar=dict(values=g, mode="negpos", scale=scale,
                                                       label="gradient (x+y+z), clipped at 99th pct"))
        frames.append(stem_path + ".png")
        shown.append((step, pts, colors, objective))
        files.extend([stem_path + ".xyz", stem_path + ".ply", stem_path + ".png"])

    points, history = deepdream(model, shape["points"].to(device), category, layer_ids, channel_ids, part_ids, lr,
                                num_iters, save, visualize_every, out_dir)
    gif = os.path.join(out_dir, "progress.gif")
    vis.save_gif(gif, frames)
    (s0, p0, c0, v0), (s1, p1, c1, v1) = shown[0], shown[-1]
    panel = os.path.join(out_dir, "dream.png")
    vis.save_panels_png(panel, [dict(points=p0, colors=c0, title=f"step {s0}: {v0:.4g}"),
                                dict(points=p1, colors=c1, title=f"step {s1}: {v1:.4g}")])
    files.extend([gif, panel])
    down = falls(history)
    if down:
        log(f"warning: the objective fell at {len(down)} of {num_iters} steps (first: step {down[0][0]}, "
            f"{down[0][1]:.4g} -> {down[0][2]:.4g}); lower --lr")
    return dict(points=points.cpu(), history=history, files=files, out_dir=out_dir, falls=down)
