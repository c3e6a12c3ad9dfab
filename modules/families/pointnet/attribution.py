"""What `attribution.py` does for the PointNet family: load a cloud and a PointNet, compute one attribution map, write
PNG + coloured .ply + raw .npy. Kept here so the script only parses arguments."""
import os

import numpy as np
import torch

from modules.attribution.pointcloud import METHODS, attribute, class_score_target, part_score_target
from modules.data import categories as cats
from modules.families.pointnet.nst import check_cloud, read_cloud
from modules.families.pointnet.outputs import EXPERIMENTS, check_name, file_stem, fresh_dir
from modules.families.pointnet.training import predict_parts
from modules.families.pointnet.weights import describe_weights, load_classifier, load_segmenter
from modules.geometry.io import save_point_cloud
from modules.geometry.transforms import normalize_unit_sphere
from modules.models.pointnet import make_input
from modules.utils import ShapeLabError, atomic_write, get_device
from modules.vis import attribution_colors, part_colors, save_point_cloud_png

DEFAULT_LAYER = {"seg": 7, "cls": 2}


def load_cloud(path, num_samples, seed=0):
    """Read .pts/.xyz/.ply/.npz, draw `num_samples` distinct points, normalise to the unit sphere.

    Fewer stored points than `num_samples` is an error (duplicated points would get duplicated
    attributions); the message says how many are needed.
    """
    if num_samples < 1:
        raise ShapeLabError(f"--num_samples must be >= 1, got {num_samples}")
    points = check_cloud(read_cloud(path)["points"], path)
    n = len(points)
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


def _out_dir(args, tag):
    """(folder, note): --out_dir or experiments/attribution/<file>_<method>_<tag>, never an existing result."""
    stem = os.path.splitext(os.path.basename(args.obj_path))[0]
    method = args.mode + (f"_smoothgrad{args.smoothgrad}" if args.smoothgrad else "")
    out_dir = args.out_dir or os.path.join(EXPERIMENTS, "attribution", check_name(f"{file_stem(args.obj_path)}_{method}_{tag}", "--obj_path"))
    return fresh_dir(out_dir, "--out_dir")


def run(args):
    """Compute and write one map. Returns a dict with the map, the points and the output paths."""
    if args.mode not in METHODS:
        raise ShapeLabError(f"--mode {args.mode}: expected one of {', '.join(METHODS)}")
    if args.n_steps < 1:
        raise ShapeLabError(f"--n_steps must be >= 1 (integration steps of ig), got {args.n_steps}")
    if args.smoothgrad < 0:
        raise ShapeLabError(f"--smoothgrad must be >= 0 (number of noisy samples; 0 = off), got {args.smoothgrad}")
    if not np.isfinite(args.stdev) or args.stdev < 0 or (args.smoothgrad and args.stdev == 0):
        raise ShapeLabError(f"--stdev must be a finite number > 0 (SmoothGrad noise), got {args.stdev}")
    if args.smoothgrad and args.mode not in ("gbp", "ig"):
        raise ShapeLabError(f"--smoothgrad works with --mode gbp or ig, not {args.mode}")
    device = get_device(args.device)
    classifier = args.target_class is not None
    if not classifier and args.obj_cat is None:
        raise ShapeLabError("--obj_cat is required for the segmenter; categories: " + ", ".join(cats.CATEGORIES))
    category = cats.category_name(args.obj_cat) if args.obj_cat is not None else None
    if category is not None:
        cats.category_index(category)                  # one of the 16 the segmenter knows
    if not classifier:
        part_id = cats.part_ids(category)[0] if args.part_id is None else cats.check_part_id(category, args.part_id)
    points = load_cloud(args.obj_path, args.num_samples, seed=args.seed)
    pts = torch.from_numpy(points)[None].to(device)
    torch.manual_seed(args.seed)

    if classifier:
        model, names = load_classifier(args.pretrained, device)
        cls_idx = resolve_class(args.target_class, names)
        inputs, target = pts.transpose(1, 2).contiguous(), class_score_target(cls_idx)
        layer = DEFAULT_LAYER["cls"] if args.layer_id is None else args.layer_id
        what = f"class {names[cls_idx]}"
        tag = f"class{cls_idx}"
    else:
        tag = f"part{part_id}"
        out_dir, note = _out_dir(args, tag)          # checked before the (slow, maybe warning) model load
        model = load_segmenter(args.pretrained, frozen=False, device=device)
        inputs = make_input(pts, torch.tensor([cats.category_index(category)], device=device))
        target = part_score_target(part_id, cats.part_ids(category))
        layer = DEFAULT_LAYER["seg"] if args.layer_id is None else args.layer_id
        what = f"part {part_id} ({cats.part_table(category)[part_id]})"
    if classifier:
        out_dir, note = _out_dir(args, tag)
    stem = os.path.splitext(os.path.basename(args.obj_path))[0]
    method = args.mode + (f"_smoothgrad{args.smoothgrad}" if args.smoothgrad else "")
    network = "classifier" if classifier else "segmenter"
    print(f"attribution: {network} with {describe_weights(model)}, device {device}\n"
          f"  cloud {args.obj_path} ({category or 'no category'}, {len(points)} points drawn without replacement)\n"
          f"  {method} map of {what}\n  writing to {out_dir}" + (f"\n  note: {note}" if note else ""))
    result = attribute(args.mode, model, inputs, target, layer=layer, n_steps=args.n_steps,
                       smoothgrad=args.smoothgrad, stdev=args.stdev)
    result = type(result)(*(None if t is None else t.detach().cpu() for t in result))
    amap = result.map[0].numpy()
    if args.vis_magnitude:
        shown = (result.raw[0].norm(dim=0).numpy() if args.mode in ("gbp", "ig") else np.abs(amap))
        colour_mode, bar_label = "magnitude", ("|attribution| (xyz L2 norm)" if args.mode in ("gbp", "ig")
                                                else "|attribution|")
    else:
        shown, colour_mode, bar_label = amap, "negpos", "attribution (red +, blue -)"
    colors = attribution_colors(shown, colour_mode)

    base = os.path.join(out_dir, f"{stem}_{method}_{tag}")
    os.makedirs(out_dir, exist_ok=True)
    save_point_cloud_png(base + ".png", points, colors, title=f"{method}: {what}",
                         colorbar=dict(values=shown, mode=colour_mode, label=bar_label))
    save_point_cloud(base + ".ply", points, colors=colors)
    with atomic_write(base + ".npy") as tmp:
        np.save(tmp, amap.astype(np.float32))
    out = {"out_dir": out_dir, "map": amap, "points": points, "png": base + ".png", "ply": base + ".ply", "npy": base + ".npy"}
    if result.raw is not None:
        with atomic_write(base + "_raw.npy") as tmp:
            np.save(tmp, result.raw[0].numpy().astype(np.float32))
        out["raw_npy"] = base + "_raw.npy"
    if not classifier:
        with torch.no_grad():
            scores = model(inputs).cpu()
        pred = predict_parts(scores, torch.tensor([cats.category_index(category)]))[0].numpy()
        save_point_cloud_png(base + "_pred.png", points, part_colors(pred), title=f"predicted parts ({category})",
                             legend=dict(names=cats.part_table(category), labels=pred))
        out["pred_png"] = base + "_pred.png"
        out["predicted_share"] = float((pred == part_id).mean())
    print(f"{method} map of {what} on {args.obj_path} ({len(points)} points, layer {layer if args.mode in ('grad_cam', 'hirescam') else '-'}): "
          f"sum {amap.sum():.4g}, min {amap.min():.4g}, max {amap.max():.4g} -> {base}.{{png,ply,npy}}")
    return out
