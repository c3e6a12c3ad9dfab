"""Fitting one target (16-889 assignment 2, section 1; `fit_data.py`) over several categories: a Markdown table
category x type -> metric against the target (voxels: IoU; points and meshes: F1@0.05, the seed's definition),
iterations, the first traced iteration at which the goal (IoU >= 0.95, F1 >= 95) was reached, and seconds.

    OMP_NUM_THREADS=1 python benchmarks/fit_table.py                                  # defaults below
    OMP_NUM_THREADS=1 python benchmarks/fit_table.py --types mesh --mesh_iter 4000 --seed_mesh   # the seed's mesh fit

The target of each category is item --index of the training split of --data_root (as `fit_data.py --category`).
Every fit is `modules.families.svr.fitting.fit` with the seed's flags (lr 4e-4, n_points 5000, w_chamfer 1,
w_smooth 0.1); --seed_mesh adds the seed's unscaled unit sphere and constant Laplacian weight (init_radius 1,
smooth_final 1) for the mesh rows. Nothing is written to disk.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

from modules.families.svr.fitting import fit, load_target  # noqa: E402
from modules.utils import cli_main  # noqa: E402

GOALS = {"vox": ("iou", 0.95), "point": ("f1@0.05", 95.0), "mesh": ("f1@0.05", 95.0)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default="data/synth_svr/r2n2", help="R2N2 layout with the categories below")
    p.add_argument("--categories", default="chair,airplane,table")
    p.add_argument("--types", default="vox,point,mesh")
    p.add_argument("--index", type=int, default=0, help="item of each category's training split")
    p.add_argument("--vox_iter", type=int, default=10000)
    p.add_argument("--point_iter", type=int, default=10000)
    p.add_argument("--mesh_iter", type=int, default=3000)
    p.add_argument("--lr", type=float, default=4e-4, help="the seed's Adam step size")
    p.add_argument("--eval_every", type=int, default=500, help="trace the metric every N iterations")
    p.add_argument("--seed_mesh", action="store_true", help="mesh rows with the seed's sphere and constant w_smooth")
    return p.parse_args(argv)


@cli_main()
def main(argv=None):
    args = parse_args(argv)
    iters = {"vox": args.vox_iter, "point": args.point_iter, "mesh": args.mesh_iter}
    rows = []
    print("| category | type | metric | value | iterations | goal reached at | seconds |")
    print("|---|---|---|---|---|---|---|")
    for cat in args.categories.split(","):
        target = load_target(args.data_root, "r2n2", cat, args.index, "train")
        for t in args.types.split(","):
            extra = {"init_radius": 1.0, "smooth_final": 1.0} if t == "mesh" and args.seed_mesh else {}
            out = fit(t, target, None, lr=args.lr, max_iter=iters[t], progress=False, eval_every=args.eval_every,
                      **extra)
            key, goal = GOALS[t]
            m = out["metrics"]
            reached = next((r["iteration"] for r in out["trace"] if r.get(key, -1) >= goal), None)
            rows.append((cat, t, key, m[key], iters[t], reached, m["seconds"]))
            print(f"| {target['name']} | {t}{' (seed sphere)' if extra else ''} | {key} | {m[key]:.4g} | {iters[t]} "
                  f"| {reached if reached is not None else 'not reached'} | {m['seconds']:.0f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
