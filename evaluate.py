"""Evaluate generated meshes against their ground truth (ONet metrics: IoU, Chamfer-L1/L2, normals, F-score),
or, when the generator that wrote the folder evaluates its own family's outputs (Neural Parts), with that.

    python evaluate.py -generation_path experiments/EXP/evaluation_CKPT_@64x2/generation [-gt_path DIR] [-j 2]

Writes evaluation_results.csv (one row per object), evaluation_results_classes.csv (per class, class mean,
object mean) and evaluation_results.md next to generation/. See README.md (Meshes, volumes, metrics).
Ground truth may be partial: an ONet folder without points.npz gives every metric but IoU (left empty,
and said so); no split (.lst) files are needed (every generated object is evaluated).
The objects scored are those of generation/manifest.yaml, the list generate.py writes of its last run in that
folder (said on the first line printed; other meshes lying there are ignored, with a one-line warning); a folder
without a manifest (written before generate.py recorded one, or by hand) has every mesh found scored.
Exit codes: 0 all objects evaluated, 1 some failed (summary printed, failures listed), 2 bad input.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import sys

import modules.families  # noqa: F401  (registers every family and its generator)
from modules.config import flag_type, read_yaml
from modules.engine.generation import checkpoint_config
from modules.evaluation import resolve_generation_dir
from modules.registry import GENERATORS
from modules.utils import EXIT_PARTIAL, ArgumentParser, cli_main, get_device


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
                   help="auto | cpu | cuda[:N]: families that rebuild their model to evaluate (Neural Parts) run it "
                        "there; mesh metrics run on the CPU (NumPy / SciPy k-d trees)")
    p.add_argument("-no_progress", "--no_progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def family_evaluator(generation_path):
    """The `evaluate` of the generator that wrote generation_path, when its family evaluates its own outputs
    (Neural Parts: primitives against volume samples); None for meshes (the ONet protocol below)."""
    generation_dir, out_dir = resolve_generation_dir(generation_path)
    config = os.path.join(out_dir, "generation_config.yaml")
    info = read_yaml(config) if os.path.isfile(config) else {}
    task = info.get("task")
    if task is None and os.path.isfile(str(info.get("checkpoint"))):      # folders written before "task" was recorded
        task = (checkpoint_config(info["checkpoint"])[1].get("task") or {}).get("name")
    if task in GENERATORS:
        return getattr(GENERATORS.builder(task), "evaluate", None)
    return None


@cli_main
def main(argv=None):
    args = parse_args(argv)
    device = get_device(args.device)
    evaluator = family_evaluator(args.generation_path)
    if evaluator is not None:
        failed = evaluator(args.generation_path, device, progress=not args.no_progress)
        sys.exit(EXIT_PARTIAL if failed else 0)
    from modules.evaluation import evaluate_generation, markdown_table, write_results  # deferred: trimesh, scipy
    rows, summary, out_dir = evaluate_generation(args.generation_path, args.gt_path, jobs=args.jobs,
                                                 n_samples=args.n_samples, iou_samples=args.iou_samples,
                                                 contains_method=args.contains_method, data_type=args.data_type,
                                                 progress=not args.no_progress)
    paths = write_results(out_dir, rows, summary)
    print(markdown_table(summary, rows))
    config = os.path.join(out_dir, "generation_config.yaml")
    unseen = (read_yaml(config).get("categories_not_in_training") or []) if os.path.isfile(config) else []
    if unseen:
        print(f"note: categories {', '.join(unseen)} were not in the model's training data (generalisation, "
              f"not in-category accuracy)")
    print("wrote " + ", ".join(paths))
    failed = [r for r in rows if r.get("error")]
    if failed:
        print(f"error: {len(failed)} of {len(rows)} objects failed (their rows in evaluation_results.csv say why; "
              f"first: {failed[0]['class']}/{failed[0]['id']}: {failed[0]['error']})", file=sys.stderr)
        sys.exit(EXIT_PARTIAL)


if __name__ == "__main__":
    main()
