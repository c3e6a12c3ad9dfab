"""Gradient attribution maps on a point cloud for the PointNet part segmenter or classifier.

    python attribution.py --obj_path chair.pts --obj_cat chair --mode gbp --pretrained --vis_negpos --part_id 13
    python attribution.py --obj_path lamp.pts --obj_cat lamp --mode ig --pretrained --vis_magnitude --n_steps 50 --part_id 25
    python attribution.py --obj_path lamp.pts --obj_cat lamp --mode hirescam --pretrained --layer_id 7 --part_id 25
    python attribution.py --obj_path mug.xyz --mode grad_cam --target_class mug --pretrained   # classifier

Image models, the same code as `eval_model.py --visualizer`; the checkpoint's task picks the family:
    python attribution.py --type vox --checkpoint_path CKPT --visualizer gradcam++ --max_iter 10 --output_dir DIR
    python attribution.py --checkpoint_path pretrained_models/neural_parts_humans5.pt --visualizer gradcam \
        --primitive largest --output_dir DIR                       # Neural Parts: volume of a primitive
    python attribution.py --checkpoint_path GENREN_CKPT --visualizer ig --target pose --output_dir DIR   # genren
Targets per family (--target): svr loss | occupancy; neural_parts primitive (--primitive K | largest | all);
genren shape | pose | texture.

Writes <out_dir>/<name>_<mode>_<part|class>.{png,ply,npy} (+ _raw.npy, + _pred.png for the segmenter);
--out_dir defaults to experiments/attribution/<name>_<mode>_<part|class>. An existing result is never
overwritten: a numbered folder is used and named.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import sys

from modules.attribution.methods import IMAGE_TARGETS as SVR_TARGETS
from modules.attribution.methods import POINT_METHODS as METHODS
from modules.engine.generation import checkpoint_config
from modules.families.pointnet.attribution import run
from modules.families.pointnet.outputs import OneLineParser
from modules.utils import ShapeLabError, check_output_dir, cli_main

IMAGE_FLAGS = ("--type", "--checkpoint_path", "--visualizer")     # any of these: an image model


def parse_point_args(argv=None):
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obj_path", required=True, help="point cloud: .pts, .xyz/.xyzn, .ply or .npz")
    p.add_argument("--obj_cat", default=None, help="ShapeNet-Part category (name or synset) of the object; "
                   "required for the segmenter (its one-hot input)")
    p.add_argument("--mode", default="gbp", choices=METHODS,
                   help="gbp: Guided Backprop; ig: Integrated Gradients; grad_cam: Grad-CAM; hirescam: HiResCAM")
    p.add_argument("--smoothgrad", type=int, default=0, metavar="K",
                   help="gbp/ig: average K maps over Gaussian xyz noise (SmoothGrad; 0 = off)")
    p.add_argument("--stdev", type=float, default=0.02, help="SmoothGrad noise std (unit-sphere units)")
    p.add_argument("--part_id", type=int, default=None,
                   help="global part id (0-49) to explain; default: the category's first part")
    p.add_argument("--target_class", default=None,
                   help="explain the classifier's logit for this class (name or index) instead of the segmenter")
    p.add_argument("--num_samples", type=int, default=2048, help="points drawn from the cloud (without replacement)")
    p.add_argument("--n_steps", type=int, default=50, help="ig: integration steps")
    p.add_argument("--layer_id", type=int, default=None,
                   help="grad_cam/hirescam layer: segmenter 0-5 = feature_0..5, 6-8 = head MLPs (default 7); "
                        "classifier 0-2 = conv1..conv3 (default 2)")
    vis = p.add_mutually_exclusive_group()
    vis.add_argument("--vis_negpos", action="store_true", help="colour signed values: red positive, blue negative (default)")
    vis.add_argument("--vis_magnitude", action="store_true", help="colour |attribution| (xyz L2 norm for gbp/ig) in red")
    p.add_argument("--pretrained", "--pretrained_enc", dest="pretrained", nargs="?", const="default", default="none",
                   metavar="PATH",
                   help="weights file; without PATH: pretrained_models/pointnet_seg.pt (or pointnet_cls.pt with "
                        "--target_class); PVCNN's shapenet.pointnet.pth.tar also loads")
    p.add_argument("--out_dir", "--output_dir", dest="out_dir", default=None,
                   help="output folder (default experiments/attribution/<name>_<mode>_<part|class>)")
    p.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu or cuda[:N]")
    p.add_argument("--seed", type=int, default=0, help="seed for point sampling and SmoothGrad noise")
    return p.parse_args(argv)


def explain_image_model(args):
    """The one dispatch of image attribution (attribution.py and eval_model.py --visualizer): the checkpoint's
    task picks the family (svr, neural_parts, genren), --target is checked against what that family supports,
    then the family's attribution_main runs with the same flags (eval_model.py's parser)."""
    # deferred on purpose: the image families load torchvision (+ torch dynamo, sympy); the point-cloud branch
    # and --help need none of them
    from modules.families.genren import attribution as genren_attribution
    from modules.families.neural_parts import evaluation as neural_parts_evaluation
    from modules.families.svr import config as svr_config
    from modules.families.svr.evaluation import PRETRAINED as SVR_PRETRAINED
    from modules.families.svr.evaluation import eval_main as svr_eval_main
    # --target per image family (the checkpoint's task.name); the first is the default
    image_targets = {"svr": SVR_TARGETS, "neural_parts": neural_parts_evaluation.ATTRIBUTION_TARGETS,
                     "genren": genren_attribution.TARGETS}
    path = args.checkpoint_path
    if path is None:
        path = SVR_PRETRAINED.get(args.type)
        if path is None:
            raise ShapeLabError("--checkpoint_path is required (without it only --type point has shipped weights)")
    _, cfg = checkpoint_config(path)
    family = (cfg.get("task") or {}).get("name")
    if family not in image_targets:
        raise ShapeLabError(f"checkpoint {path}: a '{family}' model; image attribution explains svr, neural_parts "
                            f"and genren checkpoints (point clouds: --obj_path)")
    supported = image_targets[family]
    args.target = args.target or supported[0]
    if args.target not in supported:
        raise ShapeLabError(f"--target {args.target!r}: a {family} checkpoint supports {' | '.join(supported)}")
    if getattr(args, "primitive", None) is not None and family != "neural_parts":
        raise ShapeLabError(f"--primitive applies to neural_parts checkpoints; {path} is a {family} checkpoint")
    if family == "svr":
        if args.type is None:        # the decoder type is in the checkpoint
            args.type = {v: k for k, v in svr_config.MODEL_NAMES.items()}.get(cfg["model"]["name"])
        args.checkpoint_path = path
        return svr_eval_main(args)
    if args.type is not None:
        raise ShapeLabError(f"--type {args.type} names a single-view decoder, but {path} is a {family} checkpoint; "
                            f"drop --type")
    check_output_dir(args.output_dir, "--output_dir")
    if family == "neural_parts":
        return neural_parts_evaluation.attribution_main(args, path, cfg)
    return genren_attribution.attribution_main(args, path, cfg)


def image_argv(argv):
    """argv for eval_model.py when it names an image model (any IMAGE_FLAGS), else None."""
    if not any(a.split("=")[0] in IMAGE_FLAGS for a in argv):
        return None
    if "--visualizer" not in argv and not any(a.startswith("--visualizer=") for a in argv):
        argv = argv + ["--visualizer", "gradcam"]
    return argv


def parse_args(argv=None):
    """Point-cloud flags, or eval_model.py's image flags when the command names an image model."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if image_argv(argv) is not None:
        import eval_model  # noqa: E402  (deferred: eval_model imports this file; it owns the image flags)
        return eval_model.parse_args(image_argv(argv))
    return parse_point_args(argv)


@cli_main
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if image_argv(argv) is not None:     # an image model: maps on its image encoder
        import eval_model  # noqa: E402  (deferred: eval_model imports this file; it owns the image flags)
        return eval_model.main(image_argv(argv))
    return run(parse_point_args(argv))


if __name__ == "__main__":
    main()
