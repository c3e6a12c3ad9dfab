"""Train a single-view model (16-889 assignment 2) with the seed's flags, through the shared engine: the same run
as `train.py -cfg configs/svr/<type>.yaml -exp_name <id>_<type> --exp_root <output_dir> ...`.

    python train_model.py --type vox   --id q2 --batch_size 64 --save_freq 500 --output_dir ./outputs --max_iter 10000 --vis_freq 250 --num_workers 4
    python train_model.py --type point --id q2 --batch_size 8  --save_freq 500 --output_dir ./outputs --max_iter 10000 --vis_freq 250 --num_workers 4
    python train_model.py --type point --id q2_500 --n_points 500 --max_iter 5000      # the n_points sweep
    python train_model.py --type mesh  --id q2 --w_smooth 0.1 --w_chamfer 1.0 data.image_size=64   # + any key=value

flag -> config key: --batch_size training.batch_size, --save_freq training.ckpt_every, --max_iter
training.max_steps, --vis_freq training.val_every (validation metrics + pictures in <exp>/visuals/),
--num_workers training.num_workers, --n_points model.n_points (point, parametric) and data.n_points, --lr
training.lr, --w_chamfer / --w_smooth task.*, --data_root data.root, --categories data.categories.
The experiment folder is <output_dir>/<id>_<type>/ (config.yaml, checkpoints/, summary/, visuals/); rerunning
the same command resumes.
"""
import argparse
import os

import modules.families  # noqa: F401  (registers every family)
from modules.config import load_config
from modules.engine.trainer import train
from modules.families.svr.config import TYPES
from modules.utils import ROOT, ShapeLabError, cli_main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--type", default="vox", choices=TYPES)
    p.add_argument("--id", default="q2", help="run name: the experiment folder is <output_dir>/<id>_<type>")
    p.add_argument("--output_dir", default="./outputs")
    p.add_argument("--batch_size", type=int, default=None, help="default: the config's (vox 64, point/mesh 8, "
                   "implicit/parametric 32)")
    p.add_argument("--save_freq", type=int, default=None, help="steps between checkpoints (default 500)")
    p.add_argument("--max_iter", type=int, default=None, help="training steps (default 10000)")
    p.add_argument("--vis_freq", type=int, default=None, help="steps between validations with pictures (default 250)")
    p.add_argument("--num_workers", type=int, default=None, help="data-loading processes (default 0)")
    p.add_argument("--n_points", type=int, default=None, help="points predicted (point/parametric) and sampled on "
                   "the ground truth (default 1000; parametric 2500)")
    p.add_argument("--lr", type=float, default=None, help="Adam step size (default 4e-4)")
    p.add_argument("--w_chamfer", type=float, default=None, help="mesh: Chamfer weight (default 1.0)")
    p.add_argument("--w_smooth", type=float, default=None, help="mesh: Laplacian weight (default 0.1)")
    p.add_argument("--data_root", default=None, help="R2N2 or ONet folder (default data/synth_svr/r2n2)")
    p.add_argument("--categories", default=None, help="comma-separated names or synsets (default chair)")
    p.add_argument("--config", default=None, help="another config file (default configs/svr/<type>.yaml)")
    p.add_argument("--device", default=None)
    p.add_argument("overrides", nargs="*", help="more config overrides key.sub=value")
    return p.parse_args(argv)


def config_overrides(args):
    """The seed's flags as config overrides (see the module docstring)."""
    for name in ("batch_size", "save_freq", "max_iter", "vis_freq", "n_points"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ShapeLabError(f"--{name} {value}: expected a positive integer")
    if args.num_workers is not None and args.num_workers < 0:
        raise ShapeLabError(f"--num_workers {args.num_workers}: expected >= 0")
    out = []
    pairs = [("training.batch_size", args.batch_size), ("training.ckpt_every", args.save_freq),
             ("training.max_steps", args.max_iter), ("training.val_every", args.vis_freq),
             ("training.num_workers", args.num_workers), ("training.lr", args.lr), ("data.root", args.data_root),
             ("task.w_chamfer", args.w_chamfer), ("task.w_smooth", args.w_smooth),
             ("experiment.device", args.device)]
    if args.n_points is not None:
        pairs.append(("data.n_points", args.n_points))
        if args.type in ("point", "parametric"):
            pairs.append(("model.n_points", args.n_points))
    if args.categories is not None:
        pairs.append(("data.categories", "[" + ",".join(c for c in args.categories.split(",") if c) + "]"))
    out += [f"{k}={v}" for k, v in pairs if v is not None]
    return out + list(args.overrides)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    if not args.id or os.sep in args.id:
        raise ShapeLabError(f"--id '{args.id}': expected a plain name")
    cfg_path = args.config or os.path.join(ROOT, "configs", "svr", f"{args.type}.yaml")
    cfg = load_config(cfg_path, config_overrides(args))
    if cfg["model"]["name"] != f"svr_{args.type}":
        raise ShapeLabError(f"--config {cfg_path} trains '{cfg['model']['name']}', not svr_{args.type} (--type)")
    exp_dir = os.path.join(args.output_dir, f"{args.id}_{args.type}")
    metrics = train(cfg, exp_dir)
    if metrics:
        print("final validation: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    print(f"checkpoints in {exp_dir}/checkpoints (best.pt by {cfg['training']['best_metric']}); evaluate with "
          f"python eval_model.py --type {args.type} --checkpoint_path {exp_dir}/checkpoints/best.pt")


if __name__ == "__main__":
    main()
