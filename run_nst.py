"""Geometric neural style transfer between point clouds with a frozen PointNet part segmenter.

    python run_nst.py -cfg configs/nst/3_part_masking.yaml
    python run_nst.py -cfg configs/nst/4_gbp.yaml --num_iters 200 --output_dir experiments/nst/gbp_short
    python run_nst.py --content_shape a.pts --style_shape b.pts style_weight=30     # configs/nst/defaults.yaml

Every config key is also a --flag (flags override the file, key=value overrides too). The seed's
spellings work as aliases: --pretrained_enc, --randn_noise, --part_id_c, --part_id_s, --layers,
--layers_exp_suffix. Outputs in output_dir[/exp_suffix] (default experiments/nst; an existing result is
never overwritten: a numbered folder is used and named): stylization_it*.ply (coloured by predicted
part), stylization_final.ply/.xyz, panel.png, metrics.yaml, progress.gif, summary/ (TensorBoard);
a sweep also writes sweep.png. With no arguments it lists the example configs and runs nothing.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import sys

from modules.families.pointnet.nst import NST_DEFAULTS, load_nst_config, run_sweep
from modules.families.pointnet.outputs import OneLineParser
from modules.utils import ShapeLabError, cli_main

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "nst", "defaults.yaml")
LIST_KEYS = ("content_layers", "style_layers", "mask_class_list")
ALIASES = {"pretrained": ["--pretrained_enc"], "content_part_class": ["--part_id_c"],
           "style_part_class": ["--part_id_s"], "exp_suffix": ["--layers_exp_suffix"]}


def parse_args(argv=None):
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-cfg", "--cfg", dest="cfg", default=None,
                   help="YAML config (default configs/nst/defaults.yaml when --content_shape/--style_shape are given)")
    for key, default in NST_DEFAULTS.items():
        if key == "sweep":
            continue
        names = [f"--{key}"] + ALIASES.get(key, [])
        if key in LIST_KEYS:
            p.add_argument(*names, dest=key, type=int, nargs="*", default=None, help=f"(default {default})")
        elif isinstance(default, bool):
            p.add_argument(*names, dest=key, action=argparse.BooleanOptionalAction, default=None,
                           help=f"(default {default})")
        elif isinstance(default, (int, float)) and key != "content_part_class":
            p.add_argument(*names, dest=key, type=type(default), default=None, help=f"(default {default})")
        elif key in ("content_part_class", "style_part_class"):
            p.add_argument(*names, dest=key, type=int, default=None, help=f"(default {default})")
        else:
            p.add_argument(*names, dest=key, default=None, help=f"(default {default})")
    p.add_argument("--randn_noise", action="store_true", help="start from noise (same as --init noise)")
    p.add_argument("--layers", type=int, nargs="*", default=None,
                   help="seed spelling: use these layers as both content_layers and style_layers")
    p.add_argument("overrides", nargs="*", help="key=value overrides (YAML values, e.g. style_layers=[3,4])")
    return p.parse_args(argv)


def usage_error():
    configs = sorted(os.path.relpath(os.path.join(os.path.dirname(DEFAULT_CONFIG), f), os.getcwd())
                     for f in os.listdir(os.path.dirname(DEFAULT_CONFIG)) if f[:1].isdigit())
    return ShapeLabError("run_nst.py: nothing to run; give -cfg CONFIG (one of " + ", ".join(configs)
                         + ") or --content_shape A --style_shape B (see --help)")


@cli_main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.cfg is None:
        if args.content_shape is None and args.style_shape is None:
            raise usage_error()     # no silent multi-minute run on files the user did not name
        args.cfg = DEFAULT_CONFIG
    flags = {key: getattr(args, key) for key in NST_DEFAULTS if key != "sweep"}
    if args.randn_noise:
        flags["init"] = "noise"
    if args.layers is not None:
        flags["content_layers"] = flags["style_layers"] = args.layers
    cfg = load_nst_config(args.cfg, flags, args.overrides)
    try:
        results = run_sweep(cfg)
    except KeyboardInterrupt:
        print("interrupted: the current cloud is in stylization_interrupted.ply", file=sys.stderr)
        sys.exit(130)
    for r in results:
        losses = r["losses"][-1] if r["losses"] else {}
        print(f"{r['out_dir']}: " + ", ".join(f"{k}={v:.4g}" for k, v in losses.items()))


if __name__ == "__main__":
    main()
