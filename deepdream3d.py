"""DeepDream for point clouds: make chosen PointNet channels (or a part's score) fire more by
normalised gradient ascent on the coordinates.

    python deepdream3d.py --obj_path lamp.xyz --obj_cat lamp --layer_ids 0 --channel_ids 0 8 16 \
        --lr 0.01 --num_iters 10 --visualize_every 2
    python deepdream3d.py --obj_path chair.pts --obj_cat chair --part_ids 13 --out_dir logs/dream_seat

Writes step_XXXX.xyz/.ply/.png every --visualize_every steps (PNG/PLY coloured by the per-point
gradient summed over x, y, z: red positive, blue negative) and progress.gif into --out_dir.
"""
import argparse

from modules.families.pointnet.deepdream import run_deepdream
from modules.utils import cli_main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--obj_path", required=True, help="point cloud: .xyz/.xyzn/.pts/.ply/.npz")
    p.add_argument("--obj_cat", required=True, help="ShapeNet-Part category (e.g. lamp, chair)")
    p.add_argument("--layer_ids", type=int, nargs="*", default=[0], help="feature layers 0-5 (default 0)")
    p.add_argument("--channel_ids", type=int, nargs="*", default=[],
                   help="channels of those layers to excite (default: all channels)")
    p.add_argument("--part_ids", type=int, nargs="*", default=[],
                   help="maximise these parts' scores instead of channel activations")
    p.add_argument("--lr", type=float, default=0.01, help="step size of the normalised ascent (default 0.01)")
    p.add_argument("--num_iters", type=int, default=10)
    p.add_argument("--visualize_every", type=int, default=2)
    p.add_argument("--num_points", type=int, default=5000, help="points sampled from the file (default 5000)")
    p.add_argument("--pretrained", default="auto",
                   help="PointNetPartSeg checkpoint; auto (default): pretrained_models/pointnet_seg.pt if present; "
                        "none: random weights")
    p.add_argument("--width_multiplier", type=float, default=1.0)
    p.add_argument("--out_dir", default="logs/deepdream")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    a = parse_args(argv)
    result = run_deepdream(a.obj_path, a.obj_cat, a.out_dir, a.layer_ids, a.channel_ids, a.part_ids, a.lr,
                           a.num_iters, a.visualize_every, a.num_points, a.pretrained, a.width_multiplier, a.seed)
    h = result["history"]
    print(f"objective {h[0]:.4g} -> {h[-1]:.4g}; {len(result['files'])} files in {a.out_dir}")


if __name__ == "__main__":
    main()
