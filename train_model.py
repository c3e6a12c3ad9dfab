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
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os

import modules.families  # noqa: F401  (registers every family)
from modules.config import engine_defaults, flag_type, load_config
from modules.engine.trainer import RESUME_CONFIG_CHOICES, train
from modules.families.svr.config import TYPES
from modules.registry import DATASETS, TASKS
from modules.utils import ROOT, ArgumentParser, ShapeLabError, check_output_dir, cli_main, plain_name


def key_spec(key):
    """The spec of a config key, as declared once (configs/default.yaml `_schema`, the svr registrations), for a
    flag that sets it: a flag given on the command line must be a value, so `null |` is dropped."""
    section, _, name = key.partition(".")
    _, engine = engine_defaults()
    text = engine.get(key) or {"data": DATASETS, "task": TASKS}[section].schema("svr")[name]
    return flag_type(text.replace("null |", "").strip())


def parse_args(argv=None):
    p = ArgumentParser(prog="train_model.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--type", default="vox", choices=TYPES)
    p.add_argument("--id", default="q2", help="run name: the experiment folder is <output_dir>/<id>_<type>")
    p.add_argument("--output_dir", default="./outputs")
    for flag, key, text in FLAGS:
        p.add_argument(flag, type=key_spec(key), default=None, help=f"{text} ({key})")
    p.add_argument("--data_root", default=None, help="R2N2 or ONet folder (default data/synth_svr/r2n2)")
    p.add_argument("--categories", default=None, help="comma-separated names or synsets (default chair)")
    p.add_argument("--config", default=None, help="another config file (default configs/svr/<type>.yaml)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N]")
    p.add_argument("--resume_config", choices=RESUME_CONFIG_CHOICES, default=None,
                   help="resuming with a changed config: which one wins (default: refuse)")
    p.add_argument("overrides", nargs="*", help="more config overrides key.sub=value")
    return p.parse_intermixed_args(argv)


# the seed's numeric flags -> the config key each sets (its range is that key's spec)
FLAGS = [
    ("--batch_size", "training.batch_size", "default: the config's (vox 64, point/mesh 8, implicit/parametric 32)"),
    ("--save_freq", "training.ckpt_every", "steps between checkpoints (default 500)"),
    ("--max_iter", "training.max_steps", "training steps (default 10000)"),
    ("--vis_freq", "training.val_every", "steps between validations with pictures (default 250)"),
    ("--num_workers", "training.num_workers", "data-loading processes (default 0)"),
    ("--n_points", "data.n_points", "points predicted (point/parametric: also model.n_points) and sampled on the "
                                    "ground truth (default 1000; parametric 2500)"),
    ("--lr", "training.lr", "Adam step size (default 4e-4)"),
    ("--w_chamfer", "task.w_chamfer", "mesh: Chamfer weight (default 1.0)"),
    ("--w_smooth", "task.w_smooth", "mesh: Laplacian weight (default 0.1)"),
]


def config_overrides(args):
    """The seed's flags as config overrides (see the module docstring)."""
    pairs = [(key, getattr(args, flag[2:])) for flag, key, _ in FLAGS]
    pairs += [("data.root", args.data_root), ("experiment.device", args.device)]
    if args.n_points is not None and args.type in ("point", "parametric"):
        pairs.append(("model.n_points", args.n_points))
    if args.categories is not None:
        pairs.append(("data.categories", "[" + ",".join(c for c in args.categories.split(",") if c) + "]"))
    return [f"{k}={v}" for k, v in pairs if v is not None] + list(args.overrides)


@cli_main(on_interrupt="rerun the same command to go on (from checkpoints/latest.pt when one was saved)")
def main(argv=None):
    args = parse_args(argv)
    plain_name(args.id, "--id")
    check_output_dir(args.output_dir, "--output_dir")
    cfg_path = args.config or os.path.join(ROOT, "configs", "svr", f"{args.type}.yaml")
    cfg = load_config(cfg_path, config_overrides(args))
    if cfg["model"]["name"] != f"svr_{args.type}":
        raise ShapeLabError(f"--config {cfg_path} trains '{cfg['model']['name']}', not svr_{args.type} (--type)")
    exp_dir = os.path.join(args.output_dir, f"{args.id}_{args.type}")
    metrics = train(cfg, exp_dir, resume_config=args.resume_config)
    if metrics:
        print("final validation: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    print(f"checkpoints in {exp_dir}/checkpoints (best.pt by {cfg['training']['best_metric']}); evaluate with "
          f"python eval_model.py --type {args.type} --checkpoint_path {exp_dir}/checkpoints/best.pt")


if __name__ == "__main__":
    main()
