"""What `attribution.py` does for the PointNet family: load a cloud and a PointNet, compute one attribution map, write
PNG + coloured .ply + raw .npy. Kept here so the script only parses arguments."""
import os

import numpy as np
import torch

from modules.attribution.pointcloud import METHODS, attribute, class_score_target, part_score_target
from modules.data import categories as cats
from modules.families.pointnet.training import predict_parts
from modules.families.pointnet.weights import load_classifier, load_segmenter
from modules.geometry.io import load_point_cloud, save_point_cloud
from modules.geometry.transforms import normalize_unit_sphere
from modules.models.pointnet import make_input
from modules.utils import ShapeLabError, atomic_write
from modules.vis import attribution_colors, part_colors, save_point_cloud_png

DEFAULT_LAYER = {"seg": 7, "cls": 2}


def load_cloud(path, num_samples, seed=0):
    """Read .pts/.xyz/.ply/.npz, draw `num_samples` distinct points, normalise to the unit sphere.

    Fewer stored points than `num_samples` is an error (duplicated points would get duplicated
    attributions); the message says how many are needed.
    """
    points = load_point_cloud(path)["points"]
    n = len(points)
    if num_samples < 1:
        raise ShapeLabError(f"--num_samples must be >= 1, got {num_samples}")
    if n < num_samples:
        raise ShapeLabError(f"{path}: the cloud has {n} points but --num_samples {num_samples} needs at least "
                            f"{num_samples} (lower --num_samples or use a denser cloud)")
    rng = np.random.default_rng(seed)
    choice = np.sort(rng.choice(n, num_samples, replace=False))
    return normalize_unit_sphere(points[choice].astype(np.float32))


def resolve_class(target_class, names):
    if str(target_class).lstrip("-").isdigit():
        idx = int(target_class)
        if not 0 <= idx < len(names):
            raise ShapeLabError(f"--target_class {idx} out of range: classes are "
                                + ", ".join(f"{i} ({n})" for i, n in enumerate(names)))
        return idx
    name = cats.category_name(target_class)
    if name not in names:
        raise ShapeLabError(f"--target_class {target_class}: the classifier knows {', '.join(names)}")
    return names.index(name)


def run(args):
    """Compute and write one map. Returns a dict with the map, the points and the output paths."""
    if args.mode not in METHODS:
        raise ShapeLabError(f"--mode {args.mode}: expected one of {', '.join(METHODS)}")
    classifier = args.target_class is not None
    if not classifier and args.obj_cat is None:
        raise ShapeLabError("--obj_cat is required for the segmenter; categories: " + ", ".join(cats.CATEGORIES))
    category = cats.category_name(args.obj_cat) if args.obj_cat is not None else None
    if category is not None:
        cats.category_index(category)                  # one of the 16 the segmenter knows
    if not classifier:
        part_id = cats.part_ids(category)[0] if args.part_id is None else cats.check_part_id(category, args.part_id)
    points = load_cloud(args.obj_path, args.num_samples, seed=args.seed)
    pts = torch.from_numpy(points)[None]
    torch.manual_seed(args.seed)

    if classifier:
        model, names = load_classifier(args.pretrained)
        cls_idx = resolve_class(args.target_class, names)
        inputs, target = pts.transpose(1, 2).contiguous(), class_score_target(cls_idx)
        layer = DEFAULT_LAYER["cls"] if args.layer_id is None else args.layer_id
        what = f"class {names[cls_idx]}"
        tag = f"class{cls_idx}"
    else:
        model = load_segmenter(args.pretrained, frozen=False)
        inputs = make_input(pts, torch.tensor([cats.category_index(category)]))
        target = part_score_target(part_id, cats.part_ids(category))
        layer = DEFAULT_LAYER["seg"] if args.layer_id is None else args.layer_id
        what = f"part {part_id} ({cats.part_table(category)[part_id]})"
        tag = f"part{part_id}"
    result = attribute(args.mode, model, inputs, target, layer=layer, n_steps=args.n_steps,
                       smoothgrad=args.smoothgrad, stdev=args.stdev)
    amap = result.map[0].numpy()
    if args.vis_magnitude:
        shown = (result.raw[0].norm(dim=0).numpy() if args.mode in ("gbp", "ig") else np.abs(amap))
        colour_mode = "magnitude"
    else:
        shown, colour_mode = amap, "negpos"
    colors = attribution_colors(shown, colour_mode)

    stem = os.path.splitext(os.path.basename(args.obj_path))[0]
    method = args.mode + (f"_smoothgrad{args.smoothgrad}" if args.smoothgrad else "")
    base = os.path.join(args.out_dir, f"{stem}_{method}_{tag}")
    os.makedirs(args.out_dir, exist_ok=True)
    save_point_cloud_png(base + ".png", points, colors, title=f"{method}: {what}")
    save_point_cloud(base + ".ply", points, colors=colors)
    with atomic_write(base + ".npy") as tmp:
        np.save(tmp, amap.astype(np.float32))
    out = {"map": amap, "points": points, "png": base + ".png", "ply": base + ".ply", "npy": base + ".npy"}
    if result.raw is not None:
        with atomic_write(base + "_raw.npy") as tmp:
            np.save(tmp, result.raw[0].numpy().astype(np.float32))
        out["raw_npy"] = base + "_raw.npy"
    if not classifier:
        with torch.no_grad():
            scores = model(inputs)
        pred = predict_parts(scores, torch.tensor([cats.category_index(category)]))[0].numpy()
        save_point_cloud_png(base + "_pred.png", points, part_colors(pred), title="predicted parts")
        out["pred_png"] = base + "_pred.png"
        out["predicted_share"] = float((pred == part_id).mean())
    print(f"{method} map of {what} on {args.obj_path} ({len(points)} points, layer {layer if args.mode in ('grad_cam', 'hirescam') else '-'}): "
          f"sum {amap.sum():.4g}, min {amap.min():.4g}, max {amap.max():.4g} -> {base}.{{png,ply,npy}}")
    return out
