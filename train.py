"""Train any registered model family from a YAML config.

    python train.py -cfg configs/toy/regression.yaml -exp_name toy training.lr=1e-3
    torchrun --nproc-per-node 2 train.py -cfg ... -exp_name ...      # data-parallel
"""
import argparse
import os

import modules.families  # noqa: F401  (registers every family)
from modules.config import load_config
from modules.engine.trainer import train
from modules.utils import ShapeLabError, cli_main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-cfg", "-cfg_file", "--cfg", dest="cfg", required=True, help="YAML config (may `inherit:` another)")
    p.add_argument("-exp_name", "--exp_name", required=True, help="experiment folder name under --exp_root")
    p.add_argument("--exp_root", default="experiments", help="where experiment folders live (default: experiments)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (overrides experiment.device)")
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"experiment.device={args.device}")
    cfg = load_config(args.cfg, overrides)
    if not args.exp_name or os.sep in args.exp_name:
        raise ShapeLabError(f"-exp_name '{args.exp_name}': expected a plain folder name")
    metrics = train(cfg, os.path.join(args.exp_root, args.exp_name))
    if metrics and int(os.environ.get("RANK", "0")) == 0:
        print("final validation: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))


if __name__ == "__main__":
    main()
