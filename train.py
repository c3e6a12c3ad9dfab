"""Train any registered model family from a YAML config.

    python train.py -cfg configs/toy/regression.yaml -exp_name toy training.lr=1e-3
    torchrun --nproc-per-node 2 train.py -cfg ... -exp_name ...      # data-parallel

Rerunning the same command resumes from <exp_root>/<exp_name>/checkpoints/latest.pt ("resuming from
step N (epoch E)"). A changed config is refused on resume unless --resume_config says which one wins.
Ctrl-C saves latest.pt and exits 130; SIGUSR1/SIGTERM save latest.pt, write REQUEUE and exit 3.
Bad input (file, flag, key, value) is one line on stderr and exit code 2, and nothing is written.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os

import modules.families  # noqa: F401  (registers every family)
from modules.config import load_config
from modules.engine.trainer import RESUME_CONFIG_CHOICES, train
from modules.utils import ArgumentParser, ShapeLabError, check_output_dir, cli_main, plain_name

# The AIR-Nets seed's -data_type spelling -> data.format of the occupancy dataset.
DATA_TYPES = {"ifnet": "ifnet", "onet": "onet"}


def parse_args(argv=None):
    p = ArgumentParser(prog="train.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-cfg", "-cfg_file", "--cfg", dest="cfg", required=True, help="YAML config (may `inherit:` another)")
    p.add_argument("-exp_name", "--exp_name", required=True, help="experiment folder name under --exp_root")
    p.add_argument("--exp_root", default="experiments", help="where experiment folders live (default: experiments)")
    p.add_argument("--device", "-device", default=None, help="auto | cpu | cuda[:N] (overrides experiment.device)")
    p.add_argument("-data_type", "--data_type", default=None,
                   help="the AIR-Nets seed's spelling of data.format: ifnet | onet (the dataset layout)")
    p.add_argument("--resume_config", choices=RESUME_CONFIG_CHOICES, default=None,
                   help="when resuming with a config that differs from the stored one: which wins "
                        "(default: refuse and list the differences)")
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    return p.parse_intermixed_args(argv)


def data_type_override(data_type):
    if data_type is None:
        return []
    if data_type == "human":
        raise ShapeLabError("-data_type human: no training dataset reads the human-sequence layout yet "
                            "(evaluate.py -data_type human does); expected ifnet or onet")
    if data_type not in DATA_TYPES:
        raise ShapeLabError(f"-data_type {data_type}: expected ifnet or onet (the layout of data.root)")
    return [f"data.format={DATA_TYPES[data_type]}"]


@cli_main(on_interrupt="rerun the same command to go on (from checkpoints/latest.pt when one was saved)")
def main(argv=None):
    args = parse_args(argv)
    plain_name(args.exp_name, "-exp_name")
    check_output_dir(args.exp_root, "--exp_root")
    overrides = data_type_override(args.data_type) + list(args.overrides)
    if args.device:
        overrides.append(f"experiment.device={args.device}")
    cfg = load_config(args.cfg, overrides)
    if args.data_type and "format" not in (cfg.get("data") or {}):
        raise ShapeLabError(f"-data_type {args.data_type}: dataset '{cfg['data'].get('name')}' of {args.cfg} "
                            f"has no data.format key")
    exp_dir = os.path.join(args.exp_root, args.exp_name)
    metrics = train(cfg, exp_dir, resume_config=args.resume_config)
    if metrics and int(os.environ.get("RANK", "0")) == 0:
        print("final validation: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))


if __name__ == "__main__":
    main()
