"""Held-out metrics of the PointNet segmenter / classifier weights.

    python benchmarks/pointnet_eval.py --seg pretrained_models/pointnet_seg.pt --cls pretrained_models/pointnet_cls.pt \
        --data_root data/synth/shapenet_part --split test --num_points 2048

Segmentation: instance and class mIoU by the ShapeNet-Part rule (modules.metrics.part_miou) and
point accuracy; classification: overall and mean per-class accuracy. Prints a table.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import time

import torch


from modules.families.pointnet.weights import load_classifier, load_segmenter
from modules.data.pointcloud_datasets import ShapeNetPartDataset
from modules.families.pointnet.evaluation import evaluate_classification, evaluate_segmentation
from modules.utils import cli_main


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seg", default=None, help="segmenter weights ('' = pretrained_models/pointnet_seg.pt)")
    p.add_argument("--cls", default=None, help="classifier weights ('' = pretrained_models/pointnet_cls.pt)")
    p.add_argument("--data_root", default="data/synth/shapenet_part")
    p.add_argument("--split", default="test")
    p.add_argument("--num_points", type=int, default=2048)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)),
                   help="torch threads (default: OMP_NUM_THREADS, else 2)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"split '{args.split}' of {args.data_root}, {args.num_points} points per shape")
    if args.seg is not None:
        t0 = time.time()
        data = ShapeNetPartDataset(args.data_root, args.split, task="seg", num_points=args.num_points)
        res = evaluate_segmentation(load_segmenter(args.seg), data, batch_size=8)
        print(f"\nsegmentation ({res['num_shapes']} shapes, {time.time() - t0:.0f} s)")
        print("| instance mIoU | class mIoU | point accuracy |\n|---|---|---|")
        print(f"| {res['instance_miou']:.4f} | {res['class_miou']:.4f} | {res['accuracy']:.4f} |")
        print("per category: " + ", ".join(f"{k} {v:.3f}" for k, v in res["per_category"].items()))
    if args.cls is not None:
        t0 = time.time()
        model, names = load_classifier(args.cls)
        data = ShapeNetPartDataset(args.data_root, args.split, task="cls", num_points=args.num_points,
                                   categories=names if len(names) < 16 else ())
        res = evaluate_classification(model, data, names)
        print(f"\nclassification ({res['num_shapes']} shapes, {len(names)} classes, {time.time() - t0:.0f} s)")
        print("| accuracy | mean class accuracy |\n|---|---|")
        print(f"| {res['accuracy']:.4f} | {res['mean_class_accuracy']:.4f} |")
        print("per class: " + ", ".join(f"{k} {v:.3f}" for k, v in res["per_class"].items()))


if __name__ == "__main__":
    main()
