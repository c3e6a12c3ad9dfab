"""Evaluate a single-view model (16-889 assignment 2): precision / recall / F1 at tau 0.01..0.05, the F1-vs-tau
plot, ONet metrics, pictures input | prediction | ground truth and turntable GIFs; or, with --visualizer, image
attribution maps (the seed's gradcam.py).

    python eval_model.py --type point --id q2 --output_dir ./test_outputs --checkpoint_path <ckpt> --vis_freq 100
    python eval_model.py --type point                       # the shipped pretrained_models/svr_point_chairs.pt
    python eval_model.py --type vox --checkpoint_path <ckpt> --max_iter 10 --visualizer gradcam++ \\
        --output_dir ./output/gradcam++_visualizations/vox

<ckpt>: an engine checkpoint (experiments/<id>_<type>/checkpoints/best.pt) or a pretrained_models/ file. A
checkpoint of another decoder type than --type is refused. Writes <output_dir>/<id>_<type>/evaluation_results.csv,
evaluation_summary.{md,yaml}, eval_<type>.png and vis/.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse

from modules.attribution.methods import IMAGE_METHODS as METHODS
from modules.attribution.methods import IMAGE_TARGETS as TARGETS
from modules.config import flag_type
from modules.families.svr.config import EVAL_SCHEMA, TYPES
from modules.families.svr.evaluation import eval_main
from modules.utils import ArgumentParser, ShapeLabError, cli_main


def _spec(name):
    return flag_type(EVAL_SCHEMA[name])     # ranges declared once, in modules/families/svr/config.py


def parse_args(argv=None):
    p = ArgumentParser(prog="eval_model.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--type", default=None, choices=TYPES,
                   help="decoder type of the checkpoint (required to evaluate; with --visualizer it is read from "
                        "--checkpoint_path, and Neural Parts / genren checkpoints take none)")
    p.add_argument("--id", default="", help="run name (output subfolder <id>_<type>)")
    p.add_argument("--checkpoint_path", default=None,
                   help="checkpoint file (default for --type point: pretrained_models/svr_point_chairs.pt)")
    p.add_argument("--output_dir", default="./test_outputs")
    p.add_argument("--vis_freq", type=_spec("vis_freq"), default=100, help="a picture every N objects (0: none)")
    p.add_argument("--gifs", type=_spec("gifs"), default=3, help="turntable GIFs for the first N pictured objects")
    p.add_argument("--n_points", type=_spec("n_points"), default=None,
                   help="points sampled on prediction and ground truth (default: the checkpoint's data.n_points)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--data_root", default=None, help="override the checkpoint's data.root")
    p.add_argument("--format", default=None, choices=["r2n2", "onet"], help="layout of --data_root")
    p.add_argument("--categories", default=None, help="comma-separated names or synsets")
    p.add_argument("--max_objects", type=_spec("max_objects"), default=0, help="only the first N objects (0: all)")
    p.add_argument("--mise_res", type=_spec("mise_res"), default=32, help="implicit: MISE initial resolution")
    p.add_argument("--mise_steps", type=_spec("mise_steps"), default=2, help="implicit: MISE upsampling steps")
    p.add_argument("--device", default="auto")
    p.add_argument("--no_progress", action="store_true")
    a = p.add_argument_group("attribution (the seed's gradcam.py)")
    a.add_argument("--visualizer", default=None, choices=METHODS, help="compute attribution maps instead")
    a.add_argument("--max_iter", type=_spec("max_iter"), default=10, help="number of test images to explain")
    a.add_argument("--target", default=None,
                   help=f"scalar explained, per family (default the first): single-view {' | '.join(TARGETS)} (minus "
                        "the reconstruction loss vs ground truth, or summed occupancy for vox/implicit); neural_parts "
                        "primitive (volume of a primitive); genren shape | pose | texture (see attribution.py)")
    a.add_argument("--primitive", default=None,
                   help="neural_parts: K (0..M-1), largest (default: per image, its largest primitive) or all "
                        "(one picture per primitive)")
    a.add_argument("--layer", default=None, choices=("layer1", "layer2", "layer3", "layer4"),
                   help="encoder layer of the CAM methods (default layer4; genren layer2: its 64x64 inputs leave "
                        "layer4 a 2x2 grid)")
    a.add_argument("--n_steps", type=_spec("n_steps"), default=32, help="ig: integration steps")
    a.add_argument("--randomization_check", action="store_true",
                   help="also compute the maps with a re-initialised encoder and report their rank correlation")
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    if args.visualizer:          # one dispatch on the checkpoint's family (svr, neural_parts, genren)
        from attribution import explain_image_model  # deferred on purpose: loads the neural_parts, genren families
        return explain_image_model(args)
    if args.type is None:
        raise ShapeLabError(f"--type is required to evaluate (one of {', '.join(TYPES)}); only --visualizer reads "
                            "the model from --checkpoint_path")
    return eval_main(args)


if __name__ == "__main__":
    main()
