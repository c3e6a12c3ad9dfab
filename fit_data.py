"""Fit a voxel grid, a point cloud or a mesh to one target shape (16-889 assignment 2, section 1).

    python fit_data.py --type vox   --save_dir ./output --save_predictions --save_visualizations
    python fit_data.py --type point --save_dir ./output --save_predictions --save_visualizations
    python fit_data.py --type mesh  --save_dir ./output --save_predictions --save_visualizations --w_smooth 0.1
    python fit_data.py --type mesh  --init_radius 1 --smooth_final 1      (the seed's mesh fit exactly)

The target is item --index of the --split split of --category in --data_root (default: the first training
chair of the embedded R2N2 data). Writes <save_dir>/fit_<type>.{binvox,npy|ply|obj} (--save_predictions),
fit_<type>.gif (360 degrees, fitted | target), fit_<type>.png and fit_<type>_loss.png (--save_visualizations),
fit_<type>_metrics.yaml (IoU / F1@tau) and fit_<type>/ (TensorBoard summary, resumable checkpoint).
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse

from modules.config import flag_type
from modules.families.svr.config import FIT_SCHEMA
from modules.families.svr.fitting import INIT_RADIUS, SMOOTH_FINAL, fit, load_target
from modules.utils import ArgumentParser, check_output_dir, cli_main


def parse_args(argv=None):
    p = ArgumentParser(prog="fit_data.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--type", default="vox", choices=["vox", "point", "mesh"], help="what to fit")
    p.add_argument("--save_dir", default="./output", help="output folder")
    p.add_argument("--save_predictions", action="store_true", help="write the fitted object (.binvox/.npy, .ply, .obj)")
    p.add_argument("--save_visualizations", action="store_true", help="write the turntable GIF, picture and loss curve")
    p.add_argument("--lr", type=_spec("lr"), default=4e-4, help="Adam step size (seed: 4e-4)")
    p.add_argument("--max_iter", type=_spec("max_iter"), default=10000,
                   help="iterations (seed default 100000; 10000 reach IoU/F1 >= 0.95/95 on the embedded data)")
    p.add_argument("--n_points", type=_spec("n_points"), default=5000,
                   help="points fitted / sampled per mesh (seed: 5000)")
    p.add_argument("--w_chamfer", type=_spec("w_chamfer"), default=1.0, help="mesh: Chamfer weight")
    p.add_argument("--w_smooth", type=_spec("w_smooth"), default=0.1,
                   help="mesh: Laplacian smoothing weight (at the start; see --smooth_final)")
    p.add_argument("--smooth_final", type=_spec("smooth_final"), default=SMOOTH_FINAL,
                   help="mesh: the Laplacian weight decays geometrically to w_smooth * this by the last iteration "
                        "(1: constant, the seed)")
    p.add_argument("--init_radius", type=_spec("init_radius"), default=INIT_RADIUS,
                   help="mesh: radius of the starting ico-sphere (seed: 1; 0.5 encloses a unit-diagonal model)")
    p.add_argument("--w_edge", type=_spec("w_edge"), default=0.0, help="mesh: optional mesh_edge_loss weight")
    p.add_argument("--w_normal", type=_spec("w_normal"), default=0.0,
                   help="mesh: optional mesh_normal_consistency weight")
    p.add_argument("--eval_every", type=_spec("eval_every"), default=0,
                   help="print IoU / F1@0.05 against the target every N iterations (0: only at the end)")
    p.add_argument("--data_root", default="data/synth_svr/r2n2", help="R2N2 (or ONet with --format onet) folder")
    p.add_argument("--format", default="r2n2", choices=["r2n2", "onet"], help="layout of --data_root")
    p.add_argument("--category", default="chair", help="category name or synset of the target")
    p.add_argument("--index", type=_spec("index"), default=0, help="item of the split to fit (seed: the first)")
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--gif_frames", type=_spec("gif_frames"), default=24, help="frames of the 360-degree GIF")
    p.add_argument("--seed", type=_spec("seed"), default=0)
    p.add_argument("--no_progress", action="store_true")
    return p.parse_args(argv)


def _spec(name):
    return flag_type(FIT_SCHEMA[name])      # ranges declared once, in modules/families/svr/config.py


@cli_main(on_interrupt="rerun the same command to resume the fit")
def main(argv=None):
    args = parse_args(argv)
    check_output_dir(args.save_dir, "--save_dir")
    target = load_target(args.data_root, args.format, args.category, args.index, args.split)
    print(f"fitting a {args.type} to {target['name']} ({args.data_root}, {args.split} split): {args.max_iter} "
          f"iterations, lr {args.lr:g} -> {args.save_dir}", flush=True)
    out = fit(args.type, target, args.save_dir, args.lr, args.max_iter, args.n_points, args.w_chamfer,
              args.w_smooth, args.seed, args.save_predictions, args.save_visualizations, not args.no_progress,
              args.gif_frames, init_radius=args.init_radius, eval_every=args.eval_every, w_edge=args.w_edge,
              w_normal=args.w_normal, smooth_final=args.smooth_final)
    for row in out["trace"]:
        print(f"  iteration {row['iteration']}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "iteration"))
    m = out["metrics"]
    keys = ["iou"] if args.type == "vox" else []
    keys += [k for k in ("f1@0.05", "f1@0.01", "chamfer-L1") if k in m]
    print(f"fit {args.type} to {target['name']}: " + ", ".join(f"{k}={m[k]:.4g}" for k in keys)
          + f" after {args.max_iter} iterations (loss {m['final_loss']:.4g}, {m['seconds']:.0f} s)")
    for path in out["paths"]:
        print("wrote " + path)
    return out


if __name__ == "__main__":
    main()
