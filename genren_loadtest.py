"""Run a trained genren model on images or shapes, as the seed's loadtest.py:

    python genren_loadtest.py MODEL OUT img_recon --options_choice synth --imgs_dir IMAGES [--allow_overwrite True]
    python genren_loadtest.py MODEL OUT shape_recon --options_choice synth --shapes_dir SHAPES [--allow_overwrite True]

MODEL: a checkpoint of genren_train.py (OUTPUT_DIR/checkpoints/latest.pt or best.pt; its stored config rebuilds
the network), or a plain state dict / release file, whose network is then built from --options_choice.
img_recon (vision cycle): for the first --n images (default 16) of IMAGES, a textured .ply, the UV texture image
and the re-render per image, plus vision_grid.png. shape_recon (graphics cycle): for --n random shapes (default
16) of SHAPES (X.PC.pt + X.normals.pt), --n_renders (default 3) renders with random poses and textures each,
plus graphics_grid.png. OUT must not exist unless --allow_overwrite True. Bad input is one line, exit code 2,
and nothing is written.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import sys

import torch

import modules.families  # noqa: F401  (registers every family)
from genren_train import option_names, option_path, truthy
from modules.config import flag_type, load_config
from modules.engine.checkpoint import load_weights
from modules.engine.generation import load_trained_model
from modules.families.genren.config import LOADTEST_SCHEMA
from modules.families.genren.generation import img_recon, list_image_files, load_shapes, shape_recon
from modules.families.genren.training import load_rgba
from modules.registry import MODELS
from modules.utils import (EXIT_PARTIAL, ArgumentParser, ShapeLabError, check_output_dir, cli_main, get_device,
                           require_file)

MODES = ("img_recon", "shape_recon")


def parse_args(argv=None):
    p = ArgumentParser(prog="genren_loadtest.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint (.pt) of genren_train.py, or a state dict with --options_choice")
    p.add_argument("out", help="output folder")
    p.add_argument("mode", choices=MODES, help="img_recon (vision cycle) or shape_recon (graphics cycle)")
    p.add_argument("--options_choice", default=None, help=f"option set: {', '.join(option_names())}")
    p.add_argument("--imgs_dir", default=None, help="folder of masked RGBA .png images (img_recon)")
    p.add_argument("--shapes_dir", default=None, help="folder of X.PC.pt / X.normals.pt (shape_recon)")
    p.add_argument("--allow_overwrite", type=truthy, nargs="?", const=True, default=False,
                   help="write into an existing output folder (True/False, default False)")
    p.add_argument("--n", type=flag_type(LOADTEST_SCHEMA["n"]), default=16, help="images or shapes to process (default 16)")
    p.add_argument("--n_renders", type=flag_type(LOADTEST_SCHEMA["n_renders"]), default=3, help="renders per shape in shape_recon (default 3)")
    p.add_argument("--no_alpha", choices=("error", "white_background"), default=None,
                   help="images without alpha: refuse (default) or take non-white pixels as the mask")
    p.add_argument("--bn_mode", choices=("batch", "running"), default="batch",
                   help="BatchNorm statistics: of the batch (the original's advice, default) or the stored ones")
    p.add_argument("--seed", type=flag_type(LOADTEST_SCHEMA["seed"]), default=0)
    p.add_argument("--device", default="auto")
    return p.parse_intermixed_args(argv)


def build_model(path, options_choice, device):
    """-> (model, config). Engine checkpoints carry their config; other files need --options_choice."""
    require_file(path, "model file")
    if not os.path.isfile(path):
        raise ShapeLabError(f"model file {path}: is a folder, expected a checkpoint (.pt) file")
    if os.path.getsize(path) == 0:
        raise ShapeLabError(f"model file {path}: is empty, expected a checkpoint (.pt) file")
    cfg = load_config(option_path(options_choice)) if options_choice else None
    state = None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ShapeLabError(f"{path}: not a readable torch checkpoint ({type(err).__name__})") from err
    if isinstance(state, dict) and isinstance(state.get("config"), dict):
        name = (state["config"].get("model") or {}).get("name")
        if name != "genren":        # refused before building another family's network
            raise ShapeLabError(f"{path}: a checkpoint of model '{name}', expected genren")
        return load_trained_model(path, device)
    if cfg is None:
        raise ShapeLabError(f"{path}: a plain state dict; give --options_choice to build its network "
                            f"({', '.join(option_names())})")
    model = MODELS.build(cfg["model"])
    load_weights(model, state, path)
    return model.to(device), cfg


@cli_main
def main(argv=None):
    args = parse_args(argv)
    if args.options_choice is not None:
        option_path(args.options_choice)              # a name that does not exist: list the valid ones
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ShapeLabError(f"OUT {args.out}: is a file, expected a folder")
    if os.path.exists(args.out) and not args.allow_overwrite:
        raise ShapeLabError(f"output folder {args.out} exists; pass --allow_overwrite True to write into it")
    check_output_dir(args.out, "OUT")
    device = get_device(args.device)
    # inputs are checked before the (slow) model load
    if args.mode == "img_recon":
        if args.imgs_dir is None:
            raise ShapeLabError("img_recon needs --imgs_dir (a folder of masked RGBA .png images)")
        files = list_image_files(args.imgs_dir, args.n)
    else:
        if args.shapes_dir is None:
            raise ShapeLabError("shape_recon needs --shapes_dir (a folder of X.PC.pt / X.normals.pt)")
    model, cfg = build_model(args.model, args.options_choice, device)
    torch.manual_seed(args.seed)
    failed = []             # (name, message) of the inputs that could not be read: reported, skipped
    if args.mode == "img_recon":
        no_alpha = args.no_alpha or cfg["data"].get("no_alpha", "error")
        files, failed = readable_images(files, model.image_size, no_alpha)
        res = img_recon(model, files, args.out, args.allow_overwrite, no_alpha, bn_mode=args.bn_mode)
        print(f"img_recon: {res['images']} images -> {args.out} ({res['seconds']:.1f} s)")
        total = len(files) + len(failed)
    else:
        ids, pts, nrm = load_shapes(args.shapes_dir, cfg["data"].get("n_pc_points", 1000), args.n, args.seed,
                                    failed=failed)
        res = shape_recon(model, ids, pts, nrm, args.out, args.allow_overwrite, args.n_renders, args.seed,
                          bn_mode=args.bn_mode)
        print(f"shape_recon: {res['shapes']} shapes x {args.n_renders} renders -> {args.out} ({res['seconds']:.1f} s)")
        total = len(ids) + len(failed)
    if failed:
        print(f"error: {len(failed)} of {total} inputs could not be read and were skipped: "
              + "; ".join(msg for _, msg in failed[:3]) + (" ..." if len(failed) > 3 else ""), file=sys.stderr)
        sys.exit(EXIT_PARTIAL)


def readable_images(files, size, no_alpha):
    """-> (the files that load, [(file, message)] of those that do not); none loading is a ShapeLabError."""
    good, failed = [], []
    for path in files:
        try:
            load_rgba(path, size, no_alpha)
            good.append(path)
        except ShapeLabError as err:
            failed.append((path, str(err)))
    if not good:
        raise ShapeLabError(f"none of the {len(files)} images could be read; first: {failed[0][1]}")
    return good, failed


if __name__ == "__main__":
    main()
