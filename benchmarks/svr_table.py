"""The single-view comparison table (16-889 assignment 2, sections 2.4 and 2.5), at a fixed CPU budget.

Trains each decoder (configs/svr/<type>.yaml, its default batch) for --budget_s seconds of wall time through the
engine, evaluates F1@0.05 (the seed's definition) on the held-out test objects, and prints our numbers beside the
seed's (which came from 10000 iterations on a GPU with real ShapeNet renders); then the n_points sweep of the
point decoder. Steps/s is measured inside each training run at the config's default batch.

    OMP_NUM_THREADS=1 python benchmarks/svr_table.py --budget_s 300 --sweep_budget_s 150 --image_size 64
    python benchmarks/svr_table.py --only_table        # print the table of finished runs

Runs are kept in --out (default experiments/svr_table/<run>/, results.json per run); a rerun skips finished runs.
"""
import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import torch  # noqa: E402

import modules.families  # noqa: E402,F401
from modules.config import load_config  # noqa: E402
from modules.engine.generation import load_trained_model  # noqa: E402
from modules.engine.trainer import train  # noqa: E402
from modules.families.svr.evaluation import evaluate, evaluation_dataset  # noqa: E402
from modules.utils import ROOT, cli_main  # noqa: E402

SEED_TABLE = {"point": 94.938, "vox": 90.406, "mesh": 90.006, "implicit": None, "parametric": None}
SEED_SWEEP = {500: 82.991, 1000: 88.563, 2500: 92.098, 5000: 94.377}
TYPES = ["point", "vox", "mesh", "implicit", "parametric"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default="data/synth_svr_chairs/r2n2", help="R2N2 layout (chairs)")
    p.add_argument("--budget_s", type=float, default=300, help="training wall time per decoder")
    p.add_argument("--sweep_budget_s", type=float, default=None, help="per n_points run (default: --budget_s)")
    p.add_argument("--types", default=",".join(TYPES))
    p.add_argument("--sweep", default="500,1000,2500,5000", help="n_points values ('' to skip)")
    p.add_argument("--image_size", type=int, default=137, help="data.image_size (137: R2N2's own)")
    p.add_argument("--max_test", type=int, default=50, help="held-out objects evaluated")
    p.add_argument("--out", default="experiments/svr_table")
    p.add_argument("--only_table", action="store_true")
    return p.parse_args(argv)


def run(name, cfg_type, overrides, budget, args, n_points):
    out_dir = os.path.join(args.out, name)
    result_path = os.path.join(out_dir, "results.json")
    if os.path.isfile(result_path):
        with open(result_path) as f:
            return json.load(f)
    if args.only_table:
        return None
    cfg = load_config(os.path.join(ROOT, "configs", "svr", f"{cfg_type}.yaml"), [
        f"data.root={args.data_root}", "data.format=r2n2", f"data.image_size={args.image_size}",
        f"training.time_budget_s={budget}", "training.max_steps=1000000", "training.val_every=1000000",
        "training.progress=false", *overrides])
    exp = os.path.join(out_dir, "exp")
    start = time.time()
    train(cfg, exp)
    ckpt = os.path.join(exp, "checkpoints", "latest.pt")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    steps = int(state["step"])
    train_s = time.time() - start
    model, cfg = load_trained_model(ckpt)
    dataset, _ = evaluation_dataset(cfg, cfg["model"]["name"][4:], "test", n_points, max_objects=args.max_test)
    _, summary = evaluate(model, dataset, os.path.join(out_dir, "eval"), n_points, vis_freq=10, gifs=1,
                          progress=False)
    res = {"name": name, "type": cfg_type, "steps": steps, "train_s": train_s, "budget_s": budget,
           "steps_per_s": steps / max(budget, 1e-9), "batch": cfg["training"]["batch_size"], "n_points": n_points,
           "objects": summary["objects"], "f1@0.05": summary["mean"]["f1@0.05"],
           "iou": summary["mean"].get("iou"), "image_size": args.image_size}
    os.makedirs(out_dir, exist_ok=True)
    with open(result_path, "w") as f:
        json.dump(res, f, indent=1)
    return res


def baselines(args, n_points=1000, n_other=5):
    """Image-free references on the same test objects: F1@0.05 of a uniform cloud in the ground truth's bounding
    box, and of the clouds of other (training) shapes, averaged over `n_other` of them."""
    import numpy as np
    from modules.families.svr.training import SingleViewDataset
    from modules.metrics import eval_pointcloud
    test = SingleViewDataset("r2n2", args.data_root, "test", (), ["pointcloud"], 64, n_points, max_items=args.max_test)
    train_set = SingleViewDataset("r2n2", args.data_root, "train", (), ["pointcloud"], 64, n_points, train=False,
                                  max_items=n_other)
    others = [train_set[i]["pointcloud"].double().numpy() for i in range(len(train_set))]
    rng = np.random.default_rng(0)
    box, other = [], []
    for i in range(len(test)):
        g = test[i]["pointcloud"].double().numpy()
        box.append(eval_pointcloud(rng.uniform(g.min(0), g.max(0), (n_points, 3)), g)["f1@0.05"])
        other.append(np.mean([eval_pointcloud(o, g)["f1@0.05"] for o in others]))
    return {"uniform in the gt box": float(np.mean(box)), f"another training shape (mean of {len(others)})":
            float(np.mean(other))}


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    hw = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}")
    rows = {}
    for t in [t for t in args.types.split(",") if t]:
        n = 2500 if t == "parametric" else 1000
        rows[t] = run(t, t, [], args.budget_s, args, n)
    sweep = {}
    for n in [int(x) for x in args.sweep.split(",") if x]:
        sweep[n] = run(f"point_n{n}", "point", [f"model.n_points={n}", f"data.n_points={n}"],
                       args.sweep_budget_s or args.budget_s, args, n)
    print(f"\nSingle-view F1@0.05 on held-out chairs ({args.data_root}, image {args.image_size}px); {hw}")
    print("| representation | seed F1@0.05 (GPU, 10k it.) | ours F1@0.05 | IoU | steps in budget | batch | "
          "steps/s | budget s |")
    print("|---|---|---|---|---|---|---|---|")
    for t, r in rows.items():
        seed = SEED_TABLE.get(t)
        if r is None:
            print(f"| {t} | {seed or '-'} | not run | | | | | |")
            continue
        iou = f"{r['iou']:.3f}" if r.get("iou") is not None else "-"
        print(f"| {t} | {seed if seed else '-'} | {r['f1@0.05']:.1f} | {iou} | {r['steps']} | {r['batch']} | "
              f"{r['steps_per_s']:.3f} | {r['budget_s']:.0f} |")
    if sweep:
        print("\n| n_points | seed F1@0.05 (5k it.) | ours F1@0.05 | steps in budget | steps/s |")
        print("|---|---|---|---|---|")
        for n, r in sweep.items():
            if r is None:
                print(f"| {n} | {SEED_SWEEP.get(n)} | not run | | |")
            else:
                print(f"| {n} | {SEED_SWEEP.get(n)} | {r['f1@0.05']:.1f} | {r['steps']} | {r['steps_per_s']:.3f} |")
    for name, value in baselines(args).items():
        print(f"| baseline: {name} (no image) | - | {value:.1f} | | | | | |")
    done = {t: r for t, r in rows.items() if r}
    if {"point", "vox", "mesh"} <= set(done):
        order = done["point"]["f1@0.05"] > max(done["vox"]["f1@0.05"], done["mesh"]["f1@0.05"])
        print(f"\nseed ordering point > vox ~ mesh reproduced: {order}")
    vals = [sweep[n]["f1@0.05"] for n in sorted(sweep) if sweep[n]]
    if len(vals) > 1:
        print(f"F1 rising with n_points: {all(a <= b for a, b in zip(vals, vals[1:]))}")
    if done.get("point"):
        print(f"point decoder F1@0.05 >= 85 (goal): {done['point']['f1@0.05'] >= 85}")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
