"""DeepDream for point clouds: make chosen PointNet channels (or a part's score) fire more by
gradient ascent (Adam, maximize) on the coordinates.

    python deepdream3d.py --obj_path lamp.xyz --obj_cat lamp --layer_ids 0 --channel_ids 0 8 16 \
        --lr 0.01 --num_iters 10 --visualize_every 2
    python deepdream3d.py --obj_path chair.pts --obj_cat chair --part_ids 13

Writes step_XXXX.xyz/.ply/.png every --visualize_every steps (PNG/PLY coloured by the per-point
gradient summed over x, y, z: red positive, blue negative, with a colour bar), progress.gif and
dream.png (first and last step) into --out_dir (default experiments/deepdream/<file>_<objective>;
an existing result is never overwritten: a numbered folder is used and named).
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse

from modules.families.pointnet.deepdream import run_deepdream
from modules.families.pointnet.outputs import OneLineParser
from modules.utils import cli_main


def parse_args(argv=None):
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obj_path", required=True, help="point cloud: .xyz/.xyzn/.pts/.ply/.npz")
    p.add_argument("--obj_cat", required=True, help="ShapeNet-Part category (e.g. lamp, chair)")
    p.add_argument("--layer_ids", type=int, nargs="*", default=[0], help="feature layers 0-5 (default 0)")
    p.add_argument("--channel_ids", type=int, nargs="*", default=[],
                   help="channels of those layers to excite (default: all channels)")
    p.add_argument("--part_ids", type=int, nargs="*", default=[],
                   help="maximise these parts' scores instead of channel activations")
    p.add_argument("--lr", type=float, default=0.01, help="Adam step size on the coordinates (default 0.01)")
    p.add_argument("--num_iters", type=int, default=10)
    p.add_argument("--visualize_every", type=int, default=2)
    p.add_argument("--num_points", type=int, default=None,
                   help="points drawn from the file without replacement (default: every point once)")
    p.add_argument("--pretrained", "--pretrained_enc", dest="pretrained", default="auto",
                   help="PointNetPartSeg checkpoint; auto (default): pretrained_models/pointnet_seg.pt if present; "
                        "none: random weights")
    p.add_argument("--width_multiplier", type=float, default=1.0)
    p.add_argument("--out_dir", "--output_dir", dest="out_dir", default=None,
                   help="output folder (default experiments/deepdream/<file>_<objective>)")
    p.add_argument("--device", default="auto", help="auto (default: cuda if available), cpu or cuda[:N]")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    a = parse_args(argv)
    result = run_deepdream(a.obj_path, a.obj_cat, a.out_dir, a.layer_ids, a.channel_ids, a.part_ids, a.lr,
                           a.num_iters, a.visualize_every, a.num_points, a.pretrained, a.width_multiplier, a.seed,
                           device=a.device)
    h = result["history"]
    trend = "rose at every step" if not result["falls"] else f"fell at {len(result['falls'])} steps"
    print(f"objective {h[0]:.4g} -> {h[-1]:.4g} ({trend}); {len(result['files'])} files in {result['out_dir']}")


if __name__ == "__main__":
    main()
