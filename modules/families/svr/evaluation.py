"""Evaluation of single-view models (the seed's eval_model.py) and image attribution on them (the seed's
gradcam.py), as library functions the scripts call.

`evaluate`: for every held-out object, the prediction's surface samples against `n_points` samples of the
ground truth, in the data frame ([-0.5,0.5]^3; no re-centring): precision / recall / F1 at
tau = 0.01..0.05 (the seed's definitions, `modules.metrics.eval_pointcloud`), ONet's Chamfer-L1 / L2 and, for
predictions with a surface, normal consistency; IoU for vox (32^3 grid vs the ground-truth voxels) and implicit
(occupancy at ONet's points.npz points, or uniform points labelled by the voxels on the R2N2 layout).
Writes into out_dir:
  evaluation_results.csv       one row per object
  evaluation_summary.yaml/.md  means over objects (and per category)
  eval_<type>.png              F1 (and precision, recall) against tau, as the seed's HEAD
  vis/<k>_<synset>_<id>.png    input | prediction | ground truth, every `vis_freq` objects
  vis/<k>_<synset>_<id>.gif    prediction | ground truth turntable, for the first `gifs` pictured objects
`run_attribution` writes overlays of one method for the first `max_iter` images (see attribution_main).
"""
import csv
import io
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

from modules.attribution import images as attr
from modules.engine.generation import build_dataset, checkpoint_config, load_trained_model
from modules.families.svr import config
from modules.families.svr.generation import model_device, picture_panels, predict, save_side_by_side_gif, surface_samples
from modules.metrics import F1_THRESHOLDS, empty_prediction_metrics, eval_pointcloud, iou
from modules.utils import (EXIT_PARTIAL, ROOT, ShapeLabError, atomic_write, check_output_dir, get_device,
                           plain_name, save_yaml)
from modules.vis import save_loss_curve_png, save_panels_png
from modules.vis.images import save_heatmap_overlays, save_image_grid

PRETRAINED = {"point": os.path.join(ROOT, "pretrained_models", "svr_point_chairs.pt")}
HEADLINE = ["f1@0.05", "precision@0.05", "recall@0.05", "f1@0.01", "chamfer-L1", "normals", "iou"]


def check_n_points(n_points, flag="--n_points"):
    if n_points is not None and (isinstance(n_points, bool) or int(n_points) != n_points or n_points < 1):
        raise ShapeLabError(f"{flag} {n_points}: expected a positive integer")


def load_model(model_type, checkpoint_path=None, device="cpu"):
    """The model of a checkpoint, refusing one of another decoder type -> (model, config, path)."""
    if model_type not in config.TYPES:
        raise ShapeLabError(f"--type {model_type!r}: expected one of {', '.join(config.TYPES)}")
    path = checkpoint_path or PRETRAINED.get(model_type)
    if path is None:
        raise ShapeLabError(f"--checkpoint_path is required for --type {model_type} (only the point decoder ships "
                            f"pretrained weights)")
    expect = config.MODEL_NAMES[model_type]
    _, cfg = checkpoint_config(path, expect)     # refuses another decoder's checkpoint by its model name
    if cfg["model"]["name"] != expect:
        raise ShapeLabError(f"checkpoint {path} holds a '{cfg['model']['name']}' model, not '{expect}' (--type)")
    model, cfg = load_trained_model(path, device, expect)
    return model, cfg, path


def eval_targets(model_type):
    targets = ["pointcloud", "mesh"]
    if model_type == "vox":
        targets.append("voxels")
    if model_type == "implicit":
        targets.append("points")
    return targets


def evaluation_dataset(cfg, model_type, split="test", n_points=None, data_root=None, data_format=None,
                       categories=None, max_objects=0, iou_points=100000):
    """The held-out split of the checkpoint's data with the ground truth evaluation needs."""
    data = dict(cfg["data"])
    overrides = {"root": data_root, "format": data_format, "categories": categories, "max_items": max_objects,
                 "targets": eval_targets(model_type), "n_points": n_points or data["n_points"],
                 "n_queries": iou_points if model_type == "implicit" else data.get("n_queries")}
    dataset, section = build_dataset(data, split, **overrides)
    return dataset, section


def evaluate(model, dataset, out_dir, n_points=1000, vis_freq=100, gifs=3, mise_res=32, mise_steps=2,
             progress=True, log=print):
    """Score every object (see the module docstring) -> (rows, summary)."""
    check_n_points(n_points)
    if len(dataset) == 0:
        raise ShapeLabError("no objects to evaluate: the split is empty")
    model.eval()
    rows, pictured, failed = [], 0, []
    vis_dir = os.path.join(out_dir, "vis")
    for i in tqdm(range(len(dataset)), desc="evaluate", disable=not progress):
        synset, sid = dataset.object_key(i)
        try:        # one unreadable object is reported and skipped, not the end of the run
            sample = dataset[i]
        except ShapeLabError as err:
            failed.append((f"{synset}/{sid}", str(err)))
            continue
        with torch.no_grad():
            pred = predict(model, sample["image"], n_points, mise_res, mise_steps)
        pts, nrm = surface_samples(model, pred, n_points, seed=i)
        gt = sample["pointcloud"].double().numpy()
        gt_nrm = sample["pointcloud.normals"].double().numpy() if "pointcloud.normals" in sample else None
        if len(pts) == 0:
            m = empty_prediction_metrics(with_normals=nrm is not None and gt_nrm is not None)
        elif nrm is not None and gt_nrm is not None:
            m = eval_pointcloud(pts, gt, nrm, gt_nrm)
        else:
            m = eval_pointcloud(pts, gt)
        if model.type == "vox":
            m["iou"] = iou(pred["probs"] > model.threshold, sample["voxels"].numpy() > 0.5)
        elif model.type == "implicit":
            with torch.no_grad():
                x = sample["image"][None].to(model_device(model))
                logits = model(x, queries=sample["points"][None].to(x.device))[0].cpu()
            m["iou"] = iou((logits > model.logit_threshold).numpy(), sample["points.occ"].numpy() > 0.5)
        rows.append({"category": synset, "model": sid, "points": len(pts), **m})
        if vis_freq and i % vis_freq == 0:
            panels = picture_panels(model, sample, n_points, pred)
            stem = os.path.join(vis_dir, f"{i:04d}_{synset}_{sid}")
            save_panels_png(stem + ".png", panels, panel_size=2.5)
            if pictured < gifs:
                save_side_by_side_gif(stem + ".gif", panels[1:])
            pictured += 1
    if not rows:
        raise ShapeLabError(f"all {len(failed)} objects failed to load; first: {failed[0][0]}: {failed[0][1]}")
    summary = summarize(rows)
    summary["failed"] = [f"{key}: {msg}" for key, msg in failed]
    write_results(out_dir, model.type, rows, summary)
    return rows, summary


def summarize(rows):
    keys = [k for k in rows[0] if k not in ("category", "model")]
    mean = {k: float(np.mean([r[k] for r in rows if k in r])) for k in keys}
    per_class = {}
    for c in sorted({r["category"] for r in rows}):
        sub = [r for r in rows if r["category"] == c]
        per_class[c] = {"objects": len(sub), **{k: float(np.mean([r[k] for r in sub if k in r])) for k in HEADLINE
                                                if k in sub[0]}}
    return {"objects": len(rows), "mean": mean, "per_category": per_class}


def markdown(model_type, summary):
    m = summary["mean"]
    lines = [f"| {model_type} | objects | " + " | ".join(k for k in HEADLINE if k in m) + " |",
             "|---|---|" + "---|" * sum(k in m for k in HEADLINE),
             f"| mean | {summary['objects']} | " + " | ".join(f"{m[k]:.4g}" for k in HEADLINE if k in m) + " |"]
    lines += ["", "| tau | " + " | ".join(f"{t:g}" for t in F1_THRESHOLDS) + " |",
              "|---|" + "---|" * len(F1_THRESHOLDS)]
    for name in ("precision", "recall", "f1"):
        lines.append(f"| {name} | " + " | ".join(f"{m[f'{name}@{t:g}']:.2f}" for t in F1_THRESHOLDS) + " |")
    return "\n".join(lines) + "\n"


def write_results(out_dir, model_type, rows, summary):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(os.path.join(out_dir, "evaluation_results.csv")) as tmp, open(tmp, "w") as f:
        f.write(buf.getvalue())
    save_yaml({"type": model_type, **summary}, os.path.join(out_dir, "evaluation_summary.yaml"))
    with atomic_write(os.path.join(out_dir, "evaluation_summary.md")) as tmp, open(tmp, "w") as f:
        f.write(markdown(model_type, summary))
    m = summary["mean"]
    taus = list(F1_THRESHOLDS)
    curves = {name: [m[f"{name}@{t:g}"] for t in taus] for name in ("f1", "precision", "recall")}
    save_loss_curve_png(os.path.join(out_dir, f"eval_{model_type}.png"), {k: taus for k in curves}, curves,
                        title=f"{model_type}: F1 vs threshold ({summary['objects']} objects)", ylabel="%",
                        xlabel="threshold tau")


def eval_main(args):
    """eval_model.py: --type, --checkpoint_path, --output_dir, --vis_freq, --n_points (+ data overrides);
    with --visualizer it runs image attribution instead (the seed's gradcam.py spelling)."""
    check_n_points(args.n_points)
    if args.id:
        plain_name(args.id, "--id")
    check_output_dir(args.output_dir, "--output_dir")
    if getattr(args, "visualizer", None):
        return attribution_main(args)
    device = get_device(args.device)
    model, cfg, path = load_model(args.type, args.checkpoint_path, device)
    n_points = args.n_points or cfg["data"]["n_points"]
    if args.type == "point" and args.n_points and args.n_points != model.n_points:
        print(f"note: the point decoder predicts {model.n_points} points; --n_points {args.n_points} sets the "
              f"ground-truth samples")
    dataset, _ = evaluation_dataset(cfg, args.type, args.split, n_points, args.data_root, args.format,
                                    _categories(args.categories), args.max_objects)
    out_dir = os.path.join(args.output_dir, f"{args.id}_{args.type}" if args.id else args.type)
    check_output_dir(os.path.join(out_dir, "vis"), "--output_dir")
    rows, summary = evaluate(model, dataset, out_dir, n_points, args.vis_freq, args.gifs, args.mise_res,
                             args.mise_steps, progress=not args.no_progress)
    print(markdown(args.type, summary))
    print(f"checkpoint {path}; wrote {out_dir}/evaluation_results.csv, evaluation_summary.md, eval_{args.type}.png, vis/")
    if summary["failed"]:
        print(f"error: {len(summary['failed'])} of {len(dataset)} objects failed and were skipped: "
              + "; ".join(summary["failed"][:3]) + (" ..." if len(summary["failed"]) > 3 else ""), file=sys.stderr)
        sys.exit(EXIT_PARTIAL)
    return rows, summary


def _categories(text):
    return [c for c in text.split(",") if c] if text else None


def attribution_main(args):
    """Image attribution for a single-view checkpoint (what attribution.py should call for image models).

    Flags used: --type, --checkpoint_path, --visualizer (gradcam | gradcam++ | hirescam | gbp | ig),
    --max_iter (number of test images), --output_dir, --target (loss | occupancy), --layer, --n_steps,
    --split, --data_root, --categories, --randomization_check, --device.
    Writes <output_dir>/<visualizer>_<type>_<target>.png (overlays, one panel per image), ..._inputs.png,
    ..._maps.npy ((N,H,W) float32) and, with --randomization_check, ..._randomized.png and the Spearman
    correlations in ..._randomization.yaml.
    """
    method = args.visualizer
    if method not in attr.METHODS:
        raise ShapeLabError(f"--visualizer {method!r}: expected one of {', '.join(attr.METHODS)}")
    if args.max_iter is None or args.max_iter < 1:
        raise ShapeLabError(f"--max_iter {args.max_iter}: expected the number of images to explain (>= 1)")
    target_name = getattr(args, "target", "loss") or "loss"
    if target_name not in attr.TARGETS:
        raise ShapeLabError(f"--target {target_name!r}: expected one of {', '.join(attr.TARGETS)}")
    device = get_device(getattr(args, "device", "cpu"))
    model, cfg, path = load_model(args.type, args.checkpoint_path, device)
    dataset, _ = evaluation_dataset(cfg, args.type, getattr(args, "split", "test"), None,
                                    getattr(args, "data_root", None), getattr(args, "format", None), _categories(getattr(args, "categories", None)),
                                    max_objects=args.max_iter, iou_points=cfg["data"].get("n_queries") or 2048)
    batch = dataset.collate([dataset[i] for i in range(len(dataset))])
    images = batch["image"].to(device)
    kwargs = {"layer": getattr(args, "layer", "layer4") or "layer4", "n_steps": getattr(args, "n_steps", 32)}
    if target_name == "loss":
        target = attr.loss_target(args.type, {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()},
                                  faces=model.faces if args.type == "mesh" else None)
        if args.type == "implicit":
            kwargs["queries"] = batch["points"].to(device)
    else:
        target = attr.occupancy_target(args.type)
        if args.type == "implicit":
            kwargs["queries"] = attr.occupancy_queries(len(images)).to(device)
    if args.type == "parametric":
        kwargs["n_points"] = model.n_points
    result = attr.attribute(method, model, images, target, **kwargs)
    shown = attr.display_map(method, result.map).cpu()
    stem = os.path.join(args.output_dir, f"{method}_{args.type}_{target_name}")
    titles = [f"{c[-4:]}/{m}" for c, m in zip(batch["category"], batch["model"])]
    save_heatmap_overlays(stem + ".png", images.cpu(), shown, titles=titles, shared_scale=False)
    save_image_grid(stem + "_inputs.png", images.cpu(), titles=titles, nrow=4)
    with atomic_write(stem + "_maps.npy") as tmp:
        np.save(tmp, result.map.cpu().numpy().astype(np.float32))
    out = {"maps": result.map, "paths": [stem + ".png", stem + "_inputs.png", stem + "_maps.npy"]}
    if getattr(args, "randomization_check", False):
        check = attr.randomization_check(method, model, images, target, **kwargs)
        save_heatmap_overlays(stem + "_randomized.png", images.cpu(), check["maps"][1], titles=titles,
                              shared_scale=False)
        save_yaml({"method": method, "checkpoint": path, "spearman_per_image": [float(x) for x in check["spearman"]],
                   "spearman_mean": check["mean"]}, stem + "_randomization.yaml")
        out["randomization"] = check
        out["paths"] += [stem + "_randomized.png", stem + "_randomization.yaml"]
        print(f"model-parameter randomisation check ({method}): mean Spearman correlation trained vs re-initialised "
              f"encoder = {check['mean']:.3f} over {len(images)} images (near 0: the maps depend on the weights)")
    print(f"{method} on {len(images)} images of {path} (target: {target_name}) -> " + ", ".join(out["paths"]))
    return out
