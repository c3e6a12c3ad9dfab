"""Gradient attribution maps on a point cloud for the PointNet part segmenter or classifier.

    python attribution.py --obj_path chair.pts --obj_cat chair --mode gbp --pretrained --vis_negpos --part_id 13
    python attribution.py --obj_path lamp.pts --obj_cat lamp --mode ig --pretrained --vis_magnitude --n_steps 50 --part_id 25
    python attribution.py --obj_path lamp.pts --obj_cat lamp --mode hirescam --pretrained --layer_id 7 --part_id 25
    python attribution.py --obj_path mug.xyz --mode grad_cam --target_class mug --pretrained   # classifier

Image models (single-view 3D; the seed's spelling), the same code as `eval_model.py --visualizer`:
    python attribution.py --type vox --checkpoint_path CKPT --visualizer gradcam++ --max_iter 10 --output_dir DIR

Writes <out_dir>/<name>_<mode>_<part|class>.{png,ply,npy} (+ _raw.npy, + _pred.png for the segmenter);
--out_dir defaults to experiments/attribution/<name>_<mode>_<part|class>. An existing result is never
overwritten: a numbered folder is used and named.
"""
import argparse
import sys

from modules.families.pointnet.attribution import run
from modules.attribution.pointcloud import METHODS
from modules.families.pointnet.outputs import OneLineParser
from modules.utils import cli_main


def parse_args(argv=None):
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


@cli_main
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--type" in argv:                 # an image model: GradCAM-family maps on its image encoder
        import eval_model  # noqa: E402  (the single-view family's script owns these flags)
        if "--visualizer" not in argv:
            argv += ["--visualizer", "gradcam"]
        return eval_model.main(argv)
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
