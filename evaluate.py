"""Evaluate generated meshes against their ground truth (ONet metrics: IoU, Chamfer-L1/L2, normals, F-score).

    python evaluate.py -generation_path experiments/EXP/evaluation_CKPT_@64x2/generation [-gt_path DIR] [-j 2]

Writes evaluation_results.csv (one row per object), evaluation_results_classes.csv (per class, class mean,
object mean) and evaluation_results.md next to generation/. See README.md (Meshes, volumes, metrics).
Ground truth may be partial: an ONet folder without points.npz gives every metric but IoU (left empty,
and said so); no split (.lst) files are needed (every generated object is evaluated).
Exit codes: 0 all objects evaluated, 1 some failed (summary printed, failures listed), 2 bad input.
"""
import argparse
import sys

from modules.config import flag_type
from modules.utils import EXIT_PARTIAL, ArgumentParser, ShapeLabError, cli_main, get_device


def parse_args(argv=None):
    p = ArgumentParser(prog="evaluate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-generation_path", "--generation_path", required=True,
                   help="the generation/ folder written by generate.py (or its parent)")
    p.add_argument("-gt_path", "--gt_path", default=None,
                   help="dataset root holding <class>/<id>/ ground truth (default: data.root recorded in "
                        "generation_config.yaml next to generation/)")
    p.add_argument("-reconst", "--reconst", action="store_true",
                   help="accepted for the AIR-Nets README spelling; reconstruction metrics are always computed")
    p.add_argument("-data_type", "--data_type", choices=["onet", "ifnet", "human"], default=None,
                   help="ground-truth layout; default: detected per object (pointcloud.npz -> onet, "
                        "isosurf_scaled.off / model.off -> ifnet protocol); human: the human-sequence layout "
                        "(<sequence>/<frame> against surface_points_seq, mesh_seq, points_seq)")
    p.add_argument("-j", "--jobs", type=flag_type("int >= 1"), default=1, help="parallel worker processes (default 1)")
    p.add_argument("-n_samples", "--n_samples", type=flag_type("int >= 1"), default=100000,
                   help="points sampled on each predicted mesh (ONet: 100000)")
    p.add_argument("-iou_samples", "--iou_samples", type=flag_type("int >= 1"), default=100000,
                   help="uniform points for mesh-vs-mesh IoU in the IF-Net layout (IF-Net: 1000000)")
    p.add_argument("-contains_method", "--contains_method", choices=["raycast", "winding", "auto"], default="raycast",
                   help="inside test of the predicted mesh for IoU (raycast = ONet's ray parity)")
    p.add_argument("-device", "--device", default="auto",
                   help="auto | cpu | cuda[:N]: accepted like every script's; the metrics run on the CPU "
                        "(NumPy / SciPy k-d trees), so this only checks the value")
    p.add_argument("-no_progress", "--no_progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    get_device(args.device)
    from modules.evaluation import evaluate_generation, markdown_table, write_results  # deferred: trimesh, scipy
    rows, summary, out_dir = evaluate_generation(args.generation_path, args.gt_path, jobs=args.jobs,
                                                 n_samples=args.n_samples, iou_samples=args.iou_samples,
                                                 contains_method=args.contains_method, data_type=args.data_type,
                                                 progress=not args.no_progress)
    paths = write_results(out_dir, rows, summary)
    print(markdown_table(summary, rows))
    print("wrote " + ", ".join(paths))
    failed = [r for r in rows if r.get("error")]
    if failed:
        print(f"error: {len(failed)} of {len(rows)} objects failed (their rows in evaluation_results.csv say why; "
              f"first: {failed[0]['class']}/{failed[0]['id']}: {failed[0]['error']})", file=sys.stderr)
        sys.exit(EXIT_PARTIAL)


if __name__ == "__main__":
    main()
