"""Data preparation: the embedded synthetic dataset, real meshes, NST point clouds, part-id listing.

    python preprocess.py synth --out data/synth [--categories chair,table] [--per-category 100] [-j 2]
    python preprocess.py mesh  --in DIR_OR_FILES... --out data/mymeshes [-j 2] [--shard 0/4]
    python preprocess.py mesh  --in FAUST/training/registrations --formats humans --out data/faust   (unlabelled bodies)
    python preprocess.py xyz   --in model.obj --out model.xyzn [--iters 2]   (or the seed's --data_path ... --subdiv_iters 2)
    python preprocess.py parts --category lamp
    python preprocess.py dfaust --hdf5 registrations_m.hdf5 registrations_f.hdf5 --out data/dfaust [-j 2]
See the Data section of README.md.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import sys

from modules.data import dfaust, human_meshes, preprocessing
from modules.config import flag_type
from modules.geometry.frames import add_axis_arguments
from modules.utils import ArgumentParser, check_output_dir, check_output_file, cli_main, plain_name

# the ranges of the numeric flags, declared once (checked by argparse: one line, exit code 2)
FLAG_SPECS = {"jobs": "int in [1, 1024]", "views": "int in [0, 1000]", "seed": "int >= 0",
              "per_category": "int in [1, 1000000]", "resolution": "int in [16, 1024]", "iters": "int in [0, 6]",
              "skip": "int >= 0", "n_surface": "int in [1, 10000000]", "n_volume": "int in [1, 10000000]",
              "image_size": "int in [0, 4096]"}


def _spec(name):
    return flag_type(FLAG_SPECS[name])


def _common(p, default_out, formats="shapenet_part,onet,ifnet,r2n2,genren,humans"):
    p.add_argument("--out", default=default_out, help="output root (default %(default)s)")
    p.add_argument("-j", "--jobs", type=_spec("jobs"), default=max(1, os.cpu_count() or 1),
                   help="worker processes (default: all cores, %(default)s)")
    p.add_argument("--shard", default="0/1", help="i/n: process only every n-th item starting at i (job arrays)")
    p.add_argument("--formats", default=None, help=f"comma-separated subset of {formats} (default: all of them)")
    p.add_argument("--views", type=_spec("views"), default=24, help="rendered views per shape (0 = no renders; default 24)")
    p.add_argument("--seed", type=_spec("seed"), default=0, help="random seed: same seed, same bytes (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser():
    parser = ArgumentParser(prog="preprocess.py", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)   # subcommands inherit the class
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("synth", help="generate the procedural part-labelled dataset")
    _common(p, "data/synth")
    p.add_argument("--categories", default="all",
                   help="comma-separated category names or synsets, or a set: 'all' = 16 ShapeNet-Part + human "
                        "(default), 'onet13' = the 13 ONet/R2N2 classes, 'onet_extra' = the 8 of them outside "
                        "ShapeNet-Part (no shapenet_part layout), 'all+onet' = all 25")
    p.add_argument("--variety", choices=("basic", "rich"), default="basic",
                   help="shape grammars: basic (default; the data of the shipped weights, same bytes as before) or "
                        "rich (more variants: swept/tapered parts, slats, shelves, bevels, armchairs, jets, ...)")
    p.add_argument("--per-category", type=_spec("per_category"), default=100, help="shapes per category (human: frames; default 100)")
    p.add_argument("--resolution", type=_spec("resolution"), default=128, help="marching-cubes grid resolution (default 128)")

    p = sub.add_parser("mesh", help="the same outputs from real .obj/.off/.ply meshes")
    p.add_argument("--in", dest="inputs", nargs="+", required=True, help="mesh files or folders (searched recursively)")
    _common(p, "data/meshes", formats="onet,ifnet,r2n2,genren (or humans: real bodies -> the human-sequence layout)")
    p.add_argument("--category", default=None,
                   help="synset folder to write under (default: the parent folder name if it is a synset, else 'mesh')")
    add_axis_arguments(p, "the meshes", "by path: ShapeNetCore v2 models/model_normalized.* y,-z; v1 "
                       "<synset>/<id>/model.* y,x; under ModelNet*/ z,-y; humans: DFAUST y,z; else y,z")
    human_meshes.add_arguments(p)

    p = sub.add_parser("xyz", help="NST seed preprocessing: (Loop-subdivided) mesh vertices -> .xyz / .xyzn")
    p.add_argument("--in", "--data_path", dest="inputs", nargs="+", required=True, help="mesh files or folders")
    p.add_argument("--out", "--save_path", dest="out", default=None,
                   help="output .xyz/.xyzn file, or a folder for several inputs "
                        "(default data/preprocessed_meshes/<exp_name>___sbd<iters>.<format>; an existing file "
                        "is not replaced without --overwrite)")
    p.add_argument("--iters", "--subdiv_iters", dest="iters", type=_spec("iters"), default=0,
                   help="Loop subdivision iterations (default 0)")
    p.add_argument("--format", choices=("xyz", "xyzn"), default="xyz", help="xyz, or xyzn with vertex normals")
    p.add_argument("--exp_name", default="experiment_0", help="name of the default output file")
    p.add_argument("--visualize", action="store_true", help="also write a PNG of the points (no viewer window)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_axis_arguments(p, "the meshes", "by path, as for mesh")

    p = sub.add_parser("parts", help="list the global part ids of a category")
    p.add_argument("--category", default=None, help="category name or synset (default: all)")

    p = sub.add_parser("dfaust", help="real DFAUST registrations (hdf5) -> the human-sequence layout (Neural Parts)")
    dfaust.add_arguments(p)
    for action in p._actions:      # the data layer declares plain ints; the ranges live in FLAG_SPECS
        if action.dest in FLAG_SPECS:
            action.type = _spec(action.dest)
    return parser


def check_outputs(args):
    """Every output location is checked before anything is read or written (a file, a folder under a file, a
    read-only place, a name that leaves data/preprocessed_meshes/): one line, exit code 2."""
    if args.command == "xyz":
        plain_name(args.exp_name, "--exp_name")     # names a file under data/preprocessed_meshes/
        if args.out is not None and os.path.splitext(args.out)[1].lower() in (".xyz", ".xyzn"):
            check_output_file(args.out, "--out")
        elif args.out is not None:
            check_output_dir(args.out, "--out")
    elif getattr(args, "out", None) is not None:
        check_output_dir(args.out, "--out")


@cli_main(on_interrupt="rerun the same command to go on (finished items are kept and skipped)")
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--data_path"):   # the NST seed's command line: preprocess.py --data_path ...
        argv = ["xyz"] + argv
    args = build_parser().parse_args(argv)
    check_outputs(args)
    if args.command == "dfaust":
        return dfaust.run_dfaust(args)
    return preprocessing.run(args)


if __name__ == "__main__":
    main()
