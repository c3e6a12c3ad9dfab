"""Train the cycle-consistent generative renderer (genren) with a named option set, as the seed's train.py:

    python genren_train.py OPTION OUTPUT_DIR [key=value ...]
    python genren_train.py synth experiments/genren_synth                      # the embedded data
    python genren_train.py chairs out/chairs data.img_data_dir=IMGS data.shape_data_dir=SHAPES

OPTION names a file configs/genren/OPTION.yaml (the original's OPTIONS entries; `inherit:` is its COPY_FROM).
OUTPUT_DIR is the experiment folder (config.yaml, checkpoints/, summary/ for TensorBoard). Rerunning the same
command resumes from OUTPUT_DIR/checkpoints/latest.pt; a folder that exists without a checkpoint is refused
unless --allow_overwrite True. Any config key can be overridden as key.sub=value (the original's argparse
overrides), e.g. training.max_steps=2000 task.w_img_recon_l1=50.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import glob
import os

import modules.families  # noqa: F401  (registers every family)
from modules.config import load_config
from modules.engine.trainer import RESUME_CONFIG_CHOICES, train
from modules.utils import ROOT, ArgumentParser, ShapeLabError, check_output_dir, cli_main

OPTIONS_DIR = os.path.join(ROOT, "configs", "genren")


def option_names():
    return sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(OPTIONS_DIR, "*.yaml")))


def option_path(name):
    """configs/genren/<name>.yaml, or a one-line error listing the valid option sets."""
    path = os.path.join(OPTIONS_DIR, f"{name}.yaml")
    if os.sep in str(name) or not os.path.isfile(path):
        raise ShapeLabError(f"options '{name}' do not exist; valid option sets: {', '.join(option_names())} "
                            f"(files in {os.path.relpath(OPTIONS_DIR, ROOT)}/)")
    return path


def truthy(text):
    value = str(text).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def parse_args(argv=None):
    p = ArgumentParser(prog="genren_train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("option", help=f"option set: one of {', '.join(option_names())}")
    p.add_argument("output_dir", help="experiment folder (created; resumed when it holds checkpoints/latest.pt)")
    p.add_argument("--allow_overwrite", type=truthy, nargs="?", const=True, default=False,
                   help="train into an existing folder that has no checkpoint (default False)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N]")
    p.add_argument("--resume_config", choices=RESUME_CONFIG_CHOICES, default=None,
                   help="resuming with a changed config: which one wins (default: refuse)")
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    return p.parse_intermixed_args(argv)


@cli_main(on_interrupt="rerun the same command to go on (from checkpoints/latest.pt when one was saved)")
def main(argv=None):
    args = parse_args(argv)
    path = option_path(args.option)
    out = args.output_dir
    check_output_dir(out, "OUTPUT_DIR")
    has_ckpt = os.path.isfile(os.path.join(out, "checkpoints", "latest.pt"))
    if os.path.isdir(out) and os.listdir(out) and not has_ckpt and not args.allow_overwrite:
        raise ShapeLabError(f"output folder {out} exists and holds no checkpoints/latest.pt to resume; pass "
                            f"--allow_overwrite True to train into it, or choose another folder")
    overrides = list(args.overrides) + ([f"experiment.device={args.device}"] if args.device else [])
    cfg = load_config(path, overrides)
    print(f"genren_train: option set {args.option} ({path}) -> {out}; building the model and data ...", flush=True)
    metrics = train(cfg, out, resume_config=args.resume_config)
    if metrics and int(os.environ.get("RANK", "0")) == 0:
        print("final validation: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))


if __name__ == "__main__":
    main()
