"""Generalisation of occupancy models to categories never seen in training (the proxy for real data that the
project can run): for each checkpoint, generate and evaluate the test split of the categories it was trained on
and of the others, and print IoU / Chamfer-L1 / normal consistency / F-score@1% per class and per group, with the
held-out / in-category IoU ratio.

    python benchmarks/occupancy_heldout.py --ckpt pretrained_models/airnet300_multicat.pt \
        --data_root data/synth_all/ifnet --per_class 5
    python benchmarks/occupancy_heldout.py --ckpt pretrained_models/airnet300_synth.pt pretrained_models/airnet300_multicat.pt \
        --data_root data/synth_all/ifnet --per_class 5

The data: `python preprocess.py synth --out data/synth_all --formats ifnet --views 0 --categories all --per-category 40`
(human excluded automatically: it is not an IF-Net layout class). The trained categories come from the checkpoint
(`train_categories`, recorded by the engine); every other category of --data_root is held out. Each run is an
ordinary generate.py / evaluate.py run under experiments/heldout_<checkpoint>_<group>/, emptied first.
"""
import argparse
import csv
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import torch  # noqa: E402

import modules.families  # noqa: E402,F401  (registers every family)
from modules.data.categories import category_name  # noqa: E402
from modules.config import flag_type  # noqa: E402
from modules.utils import ArgumentParser, ShapeLabError, cli_main  # noqa: E402

METRICS = ("iou", "chamfer-L1", "normals", "f-score")   # evaluate.py's columns (ONet names)


def trained_categories(ckpt):
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    cats = state.get("train_categories")
    if not cats:
        raise ShapeLabError(f"--ckpt {ckpt}: records no train_categories (made before the engine stored them?)")
    return sorted(cats)


def data_categories(root):
    cats = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not cats:
        raise ShapeLabError(f"--data_root {root}: no category folders")
    return cats


def run_group(ckpt, categories, args, tag):
    import evaluate
    import generate
    label = os.path.splitext(os.path.basename(ckpt))[0]
    exp_name = f"heldout_{label}_{tag}"
    # a fresh folder each run: meshes left by a run on other data would otherwise be scored with these
    shutil.rmtree(os.path.join("experiments", exp_name), ignore_errors=True)
    argv = ["-ckpt_name", ckpt, "-exp_name", exp_name, "-data_root", args.data_root, "-data_type", "ifnet",
            "-split", "test", "-method", "mise", "-mise_res", str(args.mise_res), "-mise_steps", str(args.mise_steps),
            "-max_per_class", str(args.per_class), "-categories", ",".join(categories), "--no_pictures",
            "-device", args.device]
    generate.main(argv)
    out = [d for d in os.listdir(os.path.join("experiments", exp_name)) if d.startswith(f"evaluation_{label}_@")]
    gen_dir = os.path.join("experiments", exp_name, sorted(out)[-1])
    evaluate.main(["-generation_path", gen_dir, "-j", str(args.jobs), "-no_progress",
                   "-iou_samples", str(args.iou_samples), "-n_samples", str(args.n_samples)])
    with open(os.path.join(gen_dir, "evaluation_results.csv")) as f:
        return list(csv.DictReader(f))


def mean(rows, key):
    vals = [float(r[key]) for r in rows if r.get(key) not in (None, "", "nan")]
    return sum(vals) / len(vals) if vals else float("nan")


@cli_main
def main(argv=None):
    p = ArgumentParser(prog="benchmarks/occupancy_heldout.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", nargs="+", required=True, help="checkpoints / release files to compare")
    p.add_argument("--data_root", default="data/synth_all/ifnet", help="IF-Net layout root with many categories")
    p.add_argument("--per_class", type=flag_type("int >= 1"), default=5, help="test objects per class")
    p.add_argument("--mise_res", type=flag_type("int >= 2"), default=32)
    p.add_argument("--mise_steps", type=flag_type("int in [0, 6]"), default=2)
    p.add_argument("--iou_samples", type=flag_type("int >= 1"), default=100000)
    p.add_argument("--n_samples", type=flag_type("int >= 1"), default=100000)
    p.add_argument("-j", "--jobs", type=flag_type("int >= 1"), default=2)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    for ckpt in args.ckpt:
        if not os.path.isfile(ckpt):
            raise ShapeLabError(f"--ckpt {ckpt}: file not found")
    if not os.path.isdir(args.data_root):
        raise ShapeLabError(f"--data_root {args.data_root}: folder not found (see this script's docstring)")
    if not os.path.isfile(os.path.join(args.data_root, "split.npz")):   # else every shape would count as a test shape
        raise ShapeLabError(f"--data_root {args.data_root}: no split.npz (an unfinished preprocess.py run? rerun it): "
                            f"the in-category group must hold only shapes the checkpoint did not train on")
    present = data_categories(args.data_root)
    lines = []
    for ckpt in args.ckpt:
        start = time.time()
        seen = [c for c in present if c in trained_categories(ckpt)]
        unseen = [c for c in present if c not in seen]
        groups = {"in-category": seen, "held-out": unseen}
        results = {g: run_group(ckpt, cats, args, g.split("-")[0]) for g, cats in groups.items() if cats}
        lines.append(f"\n### {ckpt} ({time.time() - start:.0f} s; MISE {args.mise_res}x{args.mise_steps}, "
                     f"{args.per_class} test objects per class of {args.data_root})\n")
        lines.append("| group | class | objects | IoU | Chamfer-L1 | normals | F-score@1% |")
        lines.append("|---|---|---|---|---|---|---|")
        group_iou = {}
        for g, rows in results.items():
            for cls in sorted({r["class"] for r in rows}):
                sub = [r for r in rows if r["class"] == cls]
                lines.append(f"| {g} | {category_name(cls)} | {len(sub)} | "
                             + " | ".join(f"{mean(sub, m):.3f}" if m != "chamfer-L1" else f"{mean(sub, m):.4f}"
                                          for m in METRICS) + " |")
            group_iou[g] = mean(rows, "iou")
            lines.append(f"| **{g} mean** | | {len(rows)} | **{group_iou[g]:.3f}** | {mean(rows, 'chamfer-L1'):.4f} | "
                         f"{mean(rows, 'normals'):.3f} | {mean(rows, 'f-score'):.3f} |")
        if len(group_iou) == 2:
            lines.append(f"\nheld-out / in-category IoU ratio: **{group_iou['held-out'] / group_iou['in-category']:.3f}**")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
