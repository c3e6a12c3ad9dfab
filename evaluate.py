"""Evaluate generated meshes against their ground truth (ONet metrics: IoU, Chamfer-L1/L2, normals, F-score).

    python evaluate.py -generation_path experiments/EXP/evaluation_CKPT_@64x2/generation [-gt_path DIR] [-j 2]

Writes evaluation_results.csv (one row per object), evaluation_results_classes.csv (per class, class mean,
object mean) and evaluation_results.md next to generation/. See README.md (Meshes, volumes, metrics).
"""
import argparse

from modules.utils import ShapeLabError, cli_main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-generation_path", "--generation_path", required=True,
                   help="the generation/ folder written by generate.py (or its parent)")
    p.add_argument("-gt_path", "--gt_path", default=None,
                   help="dataset root holding <class>/<id>/ ground truth (default: data.root recorded in "
                        "generation_config.yaml next to generation/)")
    p.add_argument("-reconst", "--reconst", action="store_true",
                   help="accepted for the AIR-Nets README spelling; reconstruction metrics are always computed")
    p.add_argument("-data_type", "--data_type", choices=["onet", "ifnet", "human"], default=None,
                   help="ground-truth layout; default: detected per object (pointcloud.npz -> onet, "
                        "isosurf_scaled.off / model.off -> ifnet protocol)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("-n_samples", "--n_samples", type=int, default=100000,
                   help="points sampled on each predicted mesh (ONet: 100000)")
    p.add_argument("-iou_samples", "--iou_samples", type=int, default=100000,
                   help="uniform points for mesh-vs-mesh IoU in the IF-Net layout (IF-Net: 1000000)")
    p.add_argument("-contains_method", "--contains_method", choices=["raycast", "winding", "auto"], default="raycast",
                   help="inside test of the predicted mesh for IoU (raycast = ONet's ray parity)")
    p.add_argument("-no_progress", "--no_progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    if args.jobs < 1:
        raise ShapeLabError(f"-j {args.jobs}: expected a positive number of processes")
    from modules.evaluation import evaluate_generation, markdown_table, write_results
    data_type = "ifnet" if args.data_type == "human" else args.data_type
    rows, summary, out_dir = evaluate_generation(args.generation_path, args.gt_path, jobs=args.jobs,
                                                 n_samples=args.n_samples, iou_samples=args.iou_samples,
                                                 contains_method=args.contains_method, data_type=data_type,
                                                 progress=not args.no_progress)
    paths = write_results(out_dir, rows, summary)
    print(markdown_table(summary, rows))
    print("wrote " + ", ".join(paths))
    failed = sum(1 for r in rows if r.get("error"))
    if failed:
        print(f"{failed} of {len(rows)} objects failed (rows with an error in evaluation_results.csv)")


if __name__ == "__main__":
    main()
