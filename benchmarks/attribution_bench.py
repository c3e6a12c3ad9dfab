"""Attribution quality and speed on held-out ShapeNet-Part shapes, all four methods.

    python benchmarks/attribution_bench.py --pretrained pretrained_models/pointnet_seg.pt \
        --data_root data/synth/shapenet_part --split test --num_shapes 8

Per shape, the target is `part_score_target(part)` (mean score of a ground-truth part over the
points predicted as it) for the smallest part covering >= 5 % of the points. Reported:

- IG completeness: |sum(map) - (F(x) - F(baseline))| / |F(x) - F(baseline)| at --n_steps (IG only).
- Pointing: share of the top-10 % points (by map value) that lie in the target part, next to the
  part's share of points (what a random map scores on average).
- Deletion: points are removed in order of decreasing attribution (a removed point is moved to the
  centroid, so N and the target's point set stay fixed) and the target is re-evaluated at
  0, 20, ..., 100 % removed; AUC of that curve (trapezoid over the removed fraction) against the
  mean AUC of 3 random orders. Lower is better.
- Time per map for --num_points points (median over shapes), and the time of the seed's scheme,
  one backward pass per point: one forward plus N per-point backward passes (x n_steps for IG).
  That time is extrapolated from --naive_points timed per-point backward passes (stated in the
  table); running all N of them for every method would take hours on 2 cores.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import contextlib
import os
import sys
import time

import numpy as np
import torch


from modules.attribution import attribute, guided_relus, part_score_target
from modules.families.pointnet.weights import load_segmenter
from modules.data import categories as cats
from modules.data import shapenet_part
from modules.geometry.transforms import normalize_unit_sphere
from modules.models.pointnet import make_input
from modules.utils import cli_main

METHODS = ("gbp", "ig", "grad_cam", "hirescam")
FRACTIONS = np.linspace(0.0, 1.0, 6)


def pick_shapes(root, split, num_shapes, num_points, seed):
    """Round-robin over categories; per shape the smallest part with >= 5 % of the points."""
    rng = np.random.default_rng(seed)
    by_cat = {}
    for synset, sid in shapenet_part.read_split(root, split):
        name = cats.category_name(synset)
        if name in cats.CATEGORIES:
            by_cat.setdefault(name, []).append((synset, sid))
    out, k = [], 0
    while len(out) < num_shapes and any(k < len(v) for v in by_cat.values()):
        for name in sorted(by_cat):
            if k < len(by_cat[name]) and len(out) < num_shapes:
                shape = shapenet_part.read_shape(root, *by_cat[name][k])
                choice = rng.choice(len(shape["points"]), num_points, replace=len(shape["points"]) < num_points)
                pts, labels = normalize_unit_sphere(shape["points"][choice]), shape["labels"][choice]
                parts, counts = np.unique(labels, return_counts=True)
                ok = counts >= 0.05 * num_points        # the smallest part with >= 5 % of the points
                part = parts[ok][np.argmin(counts[ok])]
                out.append((name, pts.astype(np.float32), labels, int(part)))
        k += 1
    return out


@torch.no_grad()
def target_value(model, inputs, target, aux):
    return target.value(model(inputs), aux)


@torch.no_grad()
def deletion_curve(model, inputs, target, aux, order):
    """Target value with the first f*N points of `order` moved to the centroid, f in FRACTIONS."""
    n = inputs.shape[2]
    batch = inputs.repeat(len(FRACTIONS), 1, 1)
    for i, f in enumerate(FRACTIONS):
        batch[i, :3, order[:int(round(f * n))]] = 0.0          # clouds are centred: centroid = origin
    values = []
    for chunk in batch.split(2):
        values.append(target.value(model(chunk), aux.expand(len(chunk), -1)))
    return torch.cat(values).numpy()


def auc(curve):
    return float(np.trapezoid(curve, FRACTIONS))


def naive_backward_time(model, inputs, part, method, layer, num_timed):
    """Seconds for one forward + per-point backward passes of score[part, p]: (forward, per backward)."""
    xyz = inputs[:, :3].clone().requires_grad_(True)
    store = {}
    handle = None
    if method in ("grad_cam", "hirescam"):
        handle = model.attribution_layers()[layer].register_forward_hook(lambda m, a, o: store.__setitem__("act", o))
    ctx = guided_relus(model) if method == "gbp" else contextlib.nullcontext()
    with torch.enable_grad(), ctx:
        t0 = time.perf_counter()
        scores = model(torch.cat([xyz, inputs[:, 3:]], dim=1))
        t_fwd = time.perf_counter() - t0
        wrt = store["act"] if handle is not None else xyz
        t0 = time.perf_counter()
        for p in range(num_timed):
            torch.autograd.grad(scores[0, part, p], wrt, retain_graph=True)
        t_bwd = (time.perf_counter() - t0) / num_timed
    if handle is not None:
        handle.remove()
    return t_fwd, t_bwd


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained", default="", help="segmenter weights (default pretrained_models/pointnet_seg.pt)")
    p.add_argument("--data_root", default="data/synth/shapenet_part")
    p.add_argument("--split", default="test")
    p.add_argument("--num_shapes", type=int, default=8)
    p.add_argument("--num_points", type=int, default=2048)
    p.add_argument("--n_steps", type=int, default=50)
    p.add_argument("--layer_id", type=int, default=7)
    p.add_argument("--naive_points", type=int, default=8, help="per-point backward passes timed per method")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)),
                   help="torch threads (default: OMP_NUM_THREADS, else 2)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = load_segmenter(args.pretrained)
    shapes = pick_shapes(args.data_root, args.split, args.num_shapes, args.num_points, args.seed)
    rng = np.random.default_rng(args.seed)
    rows = {m: {"point": [], "del": [], "time": [], "naive": []} for m in METHODS}
    completeness, part_share, del_random = [], [], []
    for si, (name, pts, labels, part) in enumerate(shapes):
        inputs = make_input(torch.from_numpy(pts)[None], torch.tensor([cats.category_index(name)]))
        target = part_score_target(part, cats.part_ids(name))
        with torch.no_grad():
            aux = target.prepare(model(inputs))
        in_part = labels == part
        part_share.append(in_part.mean())
        n = len(pts)
        k = max(1, int(round(0.1 * n)))
        del_random.append(np.mean([auc(deletion_curve(model, inputs, target, aux, torch.from_numpy(rng.permutation(n))))
                                   for _ in range(3)]))
        for method in METHODS:
            t0 = time.perf_counter()
            result = attribute(method, model, inputs, target, layer=args.layer_id, n_steps=args.n_steps)
            rows[method]["time"].append(time.perf_counter() - t0)
            amap = result.map[0]
            if method == "ig":
                baseline = inputs.clone()
                baseline[:, :3] = 0
                diff = float(target_value(model, inputs, target, aux) - target_value(model, baseline, target, aux))
                completeness.append(abs(float(amap.sum()) - diff) / max(abs(diff), 1e-12))
            top = torch.argsort(amap, descending=True)
            rows[method]["point"].append(in_part[top[:k].numpy()].mean())
            rows[method]["del"].append(auc(deletion_curve(model, inputs, target, aux, top)))
            if si == 0:
                t_fwd, t_bwd = naive_backward_time(model, inputs, part, method, args.layer_id, args.naive_points)
                passes = args.n_steps if method == "ig" else 1
                rows[method]["naive"].append(passes * (t_fwd + n * t_bwd))
        print(f"shape {si + 1}/{len(shapes)}: {name} part {part} ({cats.part_table(name)[part]}), "
              f"part share {in_part.mean():.2f}", file=sys.stderr)

    print(f"\n{len(shapes)} {args.split} shapes of {args.data_root}, {args.num_points} points, "
          f"{torch.get_num_threads()} threads, layer {args.layer_id} for the CAMs, IG {args.n_steps} steps")
    print(f"IG completeness error: mean {np.mean(completeness):.2%}, max {np.max(completeness):.2%} "
          f"({np.mean(np.array(completeness) <= 0.01):.0%} of shapes <= 1 %)")
    print(f"part share of points (random pointing): {np.mean(part_share):.3f}; "
          f"deletion AUC of random orders: {np.mean(del_random):.3f}\n")
    print("| method | pointing (top 10 %) | deletion AUC (random) | time per map [s] | one-backward-per-point [s] | speed-up |")
    print("|---|---|---|---|---|---|")
    for m in METHODS:
        r = rows[m]
        t, naive = float(np.median(r["time"])), float(np.mean(r["naive"]))
        print(f"| {m} | {np.mean(r['point']):.3f} (random {np.mean(part_share):.3f}) | {np.mean(r['del']):.3f} "
              f"({np.mean(del_random):.3f}) | {t:.2f} | {naive:.0f} (est.) | {naive / t:.0f}x |")
    print(f"\none-backward-per-point: forward + N x per-point backward (x {args.n_steps} steps for IG), with the "
          f"per-point backward time measured over {args.naive_points} points of the first shape.")


if __name__ == "__main__":
    main()
