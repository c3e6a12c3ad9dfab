"""Geometric NST quality and speed on held-out synthetic shapes: a chair's seat (13) styled after a
table's desktop (47), in the four modes (vanilla on all points, part-specific, GBP, HiResCAM).

    .venv/bin/python benchmarks/nst_bench.py --pretrained pretrained_models/<segmenter>.pt \
        [--data_root data/synth_nst/shapenet_part] [--pairs 2] [--num_iters 40] [--num_points 1024] \
        [--speed_points 2048 32000] [--speed_iters 2] [--images docs/images]

Per mode, averaged over the pairs (test-split chairs x test-split tables):
- style loss of the mode (its own objective term) at the start and at the end;
- part stats loss: the plain mean/std statistics loss over the style layers between the seat points'
  features and the desktop points' features (one yardstick for all modes), start -> end;
- fixed max |d|: largest displacement of a point outside the moving part (part-specific modes: must be 0);
- desktop score: the segmenter's mean logit for part 47 on the seat points, start -> end.
Speed: iterations/s of each mode at --speed_points on --threads CPU threads.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import tempfile
import time

import numpy as np
import torch

from modules.families.pointnet import nst
from modules.families.pointnet.weights import load_segmenter
from modules.data import categories, shapenet_part
from modules.losses.style import stats_loss
from modules.utils import cli_main

CONTENT_PART, STYLE_PART = 13, 47          # chair seat, table desktop
MODES = {
    "vanilla": dict(),
    "part": dict(part_specific=True, mask_class_list=[CONTENT_PART]),
    "gbp": dict(mode="gbp", part_specific=True, mask_class_list=[CONTENT_PART]),
    "hirescam": dict(mode="hirescam", part_specific=True, mask_class_list=[CONTENT_PART]),
}


def held_out_pairs(root, n):
    test = shapenet_part.read_split(root, "test")
    chairs = [i for s, i in test if s == categories.SYNSETS["chair"]]
    tables = [i for s, i in test if s == categories.SYNSETS["table"]]
    if not chairs or not tables:
        raise SystemExit(f"{root}: the test split needs chairs and tables (python preprocess.py synth ...)")
    path = lambda cat, i: shapenet_part.shape_paths(root, categories.SYNSETS[cat], i)[0]  # noqa: E731
    return [(path("chair", chairs[k % len(chairs)]), path("table", tables[k % len(tables)])) for k in range(n)]


def part_stats_loss(transfer, points):
    """Plain stats loss (style layers) between the seat points of `points` and the style desktop points."""
    with torch.no_grad():
        feats, _ = nst.run_segmenter(transfer.model, points, transfer.cfg["content_category"])
    seat = transfer.content_labels == CONTENT_PART
    return float(sum(stats_loss(feats[l], transfer.style_feats_plain[l], seat, transfer.desktop)
                     for l in transfer.cfg["style_layers"]))


def desktop_score(transfer, points):
    seat = transfer.content_labels == CONTENT_PART
    with torch.no_grad():
        _, scores = nst.run_segmenter(transfer.model, points, transfer.cfg["content_category"])
    return float(scores[0, STYLE_PART, seat].mean())


def quality(model, pairs, args, out_root):
    rows = {}
    for mode, extra in MODES.items():
        acc = []
        for k, (content, style) in enumerate(pairs):
            cfg = dict(content_shape=content, style_shape=style, num_points=args.num_points, num_iters=args.num_iters,
                       save_every=0, output_dir=os.path.join(out_root, mode, str(k)), content_part_class=CONTENT_PART,
                       style_part_class=STYLE_PART, step_size=args.step_size, pictures=(k == 0 and bool(args.images)),
                       **extra)
            record = {}

            def at_start(it, transfer, losses):
                if it == 1:   # plain (unmasked, unweighted) style features and desktop points for the yardstick
                    with torch.no_grad():
                        transfer.style_feats_plain = nst.run_segmenter(model, transfer.style["points"], "table")[0]
                    transfer.desktop = transfer.style_labels == STYLE_PART
                    record["stats0"] = part_stats_loss(transfer, transfer.content["points"])
                    record["score0"] = desktop_score(transfer, transfer.content["points"])

            result = nst.run_style_transfer(cfg, model=model, callback=at_start, progress=False, log=lambda *a: None)
            transfer, final = result["transfer"], result["points"]
            fixed = ~result["moving"]
            own_end = float(transfer.losses(final.detach())[0]["style"].detach())
            acc.append(dict(style0=result["losses"][0]["style"], style1=own_end,
                            stats0=record["stats0"], stats1=part_stats_loss(transfer, final),
                            fixed=float((final[fixed] - transfer.content["points"][fixed]).abs().max())
                            if fixed.any() else float("nan"),
                            score0=record["score0"], score1=desktop_score(transfer, final)))
            if k == 0 and args.images:
                import shutil
                os.makedirs(args.images, exist_ok=True)
                shutil.copyfile(os.path.join(result["out_dir"], "panel.png"),
                                os.path.join(args.images, f"nst_{mode}.png"))
        rows[mode] = {key: float(np.nanmean([a[key] for a in acc])) if not all(np.isnan(a[key]) for a in acc)
                      else float("nan") for key in acc[0]}
        print(f"  {mode}: done", flush=True)
    return rows


def speed(model, pair, n, iters):
    out = {}
    for mode, extra in MODES.items():
        cfg = nst.check_config(dict(content_shape=pair[0], style_shape=pair[1], num_points=n,
                                    content_part_class=CONTENT_PART, style_part_class=STYLE_PART, **extra))
        rng = np.random.default_rng(0)
        transfer = nst.StyleTransfer(cfg, model, nst.load_shape(pair[0], "chair", n, rng),
                                     nst.load_shape(pair[1], "table", n, rng))
        optimizer = torch.optim.Adam([transfer.param], lr=cfg["step_size"])

        def step():                                        # one iteration of the shared loop's adam rule
            optimizer.zero_grad()
            transfer.objective()[0].backward()
            optimizer.step()
        step()                                             # warm-up
        start = time.perf_counter()
        for _ in range(iters):
            step()
        out[mode] = iters / (time.perf_counter() - start)
        print(f"  speed {n} points {mode}: {out[mode]:.3g} it/s", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default="data/synth_nst/shapenet_part")
    p.add_argument("--pretrained", default=None, help="segmenter checkpoint (without: random weights, flagged)")
    p.add_argument("--width_multiplier", type=float, default=1.0)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--num_iters", type=int, default=40)
    p.add_argument("--num_points", type=int, default=1024)
    p.add_argument("--step_size", type=float, default=0.01)
    p.add_argument("--speed_points", type=int, nargs="*", default=[2048, 32000])
    p.add_argument("--speed_iters", type=int, default=2)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)),
                   help="torch threads (default: OMP_NUM_THREADS, else 2)")
    p.add_argument("--images", default="docs/images", help="folder for one panel PNG per mode ('' for none)")
    p.add_argument("--skip_quality", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_segmenter(args.pretrained, args.width_multiplier)
    weights = args.pretrained or "RANDOM WEIGHTS (no --pretrained)"
    pairs = held_out_pairs(args.data_root, args.pairs)
    print(f"segmenter: {weights}; {args.threads} threads; pairs: "
          + "; ".join(f"{os.path.basename(c)} <- {os.path.basename(s)}" for c, s in pairs))
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_quality:
            rows = quality(model, pairs, args, tmp)
            print(f"\nQuality: chair seat (13) <- table desktop (47), {args.num_points} points, "
                  f"{args.num_iters} iterations, step {args.step_size}, mean over {len(pairs)} pairs\n")
            print("| mode | style loss (own) start -> end | part stats loss start -> end | fixed max abs d "
                  "| desktop logit on seat start -> end |")
            print("|---|---|---|---|---|")
            for mode, r in rows.items():
                print(f"| {mode} | {r['style0']:.4g} -> {r['style1']:.4g} | {r['stats0']:.4g} -> {r['stats1']:.4g} "
                      f"| {r['fixed']:.3g} | {r['score0']:.3f} -> {r['score1']:.3f} |")
        if args.speed_points:
            speeds = {n: speed(model, pairs[0], n, args.speed_iters) for n in args.speed_points}
            print(f"\nSpeed: iterations/s on {args.threads} CPU threads (mean of {args.speed_iters} after a warm-up)\n")
            print("| points | " + " | ".join(MODES) + " |")
            print("|---|" + "---|" * len(MODES))
            for n, s in speeds.items():
                print(f"| {n} | " + " | ".join(f"{s[m]:.3g}" for m in MODES) + " |")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
