"""Evaluate generated meshes against ground truth (the logic behind `evaluate.py`).

Input layout (generate.py / AIR-Nets):  <out>/generation/<class>/<id>/surface_reconstruction.off; the objects
scored are those of generation/manifest.yaml (generate.py's last run in that folder), not every mesh lying there;
a folder without a manifest (older runs, hand-made folders) has every mesh found scored.
Ground truth, per object, one of
- ONet layout  <gt>/<class>/<id>/pointcloud.npz (points, normals) + points.npz (points, bit-packed
  occupancies): surface metrics from 100k samples on the prediction against the stored cloud, IoU on
  the stored points and labels (ONet / ConvONet / AIR-Nets "onet" protocol).
- IF-Net layout <gt>/<class>/<id>/isosurf_scaled.off (or model.off): the same surface metrics against
  100k samples of the ground-truth mesh, IoU of the two meshes on uniform points in [-0.5, 0.5]^3
  (IF-Net uses 1M points; `iou_samples`). An IF-Net folder with only surface_30000_samples.npy gives the
  distance metrics and F-scores against those points (no normals, no IoU: the row leaves them empty).
- ONet layout with pointcloud.npz but no points.npz: the surface metrics; IoU left empty (the
  row's `note` says so).
- human sequences (`data_type="human"`, the DFAUST-style layout of modules.data.humans): generation/
  <sequence>/<frame>/ against <gt>/<sequence>/surface_points_seq/<frame>.npz (points, normals; part labels
  not needed) or mesh_seq/<frame>.off, and points_seq/<frame>.npz for the IoU.
Outputs next to generation/: evaluation_results.csv (one row per object, `error` says why a row has no
numbers), evaluation_results_classes.csv (per class, class mean, object mean) and evaluation_results.md
(the same summary as a Markdown table).
"""
import csv
import math
import os
import signal
import time

import numpy as np
import yaml

from modules.data.categories import SYNSET_TO_NAME
from modules.data import humans
from modules.data.humans import frame_paths
from modules.data.ifnet import read_surface_samples
from modules.data.occupancy_datasets import read_ground_truth_mesh
from modules.data.npz import check_array, load_npz
from modules.data.onet import read_pointcloud_npz, read_points_npz
from modules.geometry.io import load_mesh
from modules.metrics import eval_mesh, mesh_iou, sample_mesh_surface
from modules.utils import ShapeLabError, atomic_write, check_output_file, save_yaml

MESH_NAME = "surface_reconstruction.off"
GT_MESH_NAMES = ("isosurf_scaled.off", "model.off")
IFNET_SURFACE_NAME = "surface_30000_samples.npy"  # fallback GT: surface metrics only (no normals, no IoU)
# Columns of the Markdown summary (all metrics go into the CSV files).
RESULT_FILES = ("evaluation_results.csv", "evaluation_results_classes.csv", "evaluation_results.md")
SUMMARY_METRICS = ("iou", "chamfer-L1", "chamfer-L2", "normals", "f-score", "f-score-0.005", "f-score-0.015",
                   "f-score-0.02", "f1@0.05")


def resolve_generation_dir(path):
    """Accept the generation/ folder or its parent -> (generation_dir, out_dir where results go)."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise ShapeLabError(f"-generation_path {path}: not a folder")
    if os.path.basename(path) != "generation" and os.path.isdir(os.path.join(path, "generation")):
        path = os.path.join(path, "generation")
    return path, os.path.dirname(path)


def find_generated_meshes(generation_dir, required=True):
    """[(class, id, mesh path)] for every <class>/<id>/surface_reconstruction.off, sorted (none found: an error
    when `required`)."""
    found = []
    for cls in sorted(os.listdir(generation_dir)):
        cls_dir = os.path.join(generation_dir, cls)
        if not os.path.isdir(cls_dir):
            continue
        for obj in sorted(os.listdir(cls_dir)):
            path = os.path.join(cls_dir, obj, MESH_NAME)
            if os.path.isfile(path):
                found.append((cls, obj, path))
    if not found and required:
        raise ShapeLabError(f"{generation_dir}: no <class>/<id>/{MESH_NAME} files found")
    return found


MANIFEST_NAME = "manifest.yaml"   # in generation/: what generate.py's last run there covered


def write_manifest(generation_dir, info):
    """generation/manifest.yaml (atomic: temp file + rename). `info` holds `objects` ('<class>/<id>' of every
    object of the run, failed ones included), `failed` ({'<class>/<id>': message}), `complete` (False while
    generate.py runs, so an interrupted run is not taken for a finished one) and what the meshes came from
    (checkpoint, data root, split, `inputs`)."""
    path = os.path.join(generation_dir, MANIFEST_NAME)
    save_yaml(info, path)
    return path


def read_manifest(generation_dir):
    """The manifest generate.py wrote in generation_dir, or None (a folder from before manifests)."""
    path = os.path.join(generation_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            info = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as err:
        raise ShapeLabError(f"{path}: unreadable ({err.__class__.__name__}); delete it and rerun generate.py") from None
    if not isinstance(info, dict) or not isinstance(info.get("objects"), list):
        raise ShapeLabError(f"{path}: expected a mapping with an 'objects' list; delete it and rerun generate.py")
    return info


def manifest_meshes(generation_dir, log=print):
    """[(class, id, mesh path, error or '')] to evaluate: exactly the objects of generation/manifest.yaml (objects
    generate.py failed on carry its message; other meshes in the folder are ignored, with a one-line warning), or,
    without a manifest (older folders), every mesh found, with a one-line note."""
    manifest = read_manifest(generation_dir)
    if manifest is None:
        found = find_generated_meshes(generation_dir)
        log(f"note: {generation_dir} has no {MANIFEST_NAME} (written before generate.py recorded its objects): "
            f"evaluating all {len(found)} meshes found, which may include objects of earlier runs")
        return [(cls, obj, path, "") for cls, obj, path in found]
    where = os.path.join(generation_dir, MANIFEST_NAME)
    if not manifest.get("complete"):
        raise ShapeLabError(f"{where}: generate.py did not finish in this folder (interrupted?); rerun the same "
                            f"generate.py command (it keeps the meshes already written), then evaluate")
    failed = manifest.get("failed") or {}
    tasks = []
    for key in manifest["objects"]:
        cls, _, obj = str(key).partition("/")
        path = os.path.join(generation_dir, cls, obj, MESH_NAME)
        error = f"generate.py failed: {failed[key]}" if key in failed else \
            ("" if os.path.isfile(path) else f"{MESH_NAME} missing (listed in {MANIFEST_NAME})")
        tasks.append((cls, obj, path, error))
    if tasks and all(err for *_, err in tasks) and not failed:
        raise ShapeLabError(f"{generation_dir}: none of the {len(tasks)} objects in {MANIFEST_NAME} has a "
                            f"<class>/<id>/{MESH_NAME}")
    log(f"evaluating the {len(tasks)} objects of generate.py's last run in this folder ({MANIFEST_NAME}: "
        f"{(manifest.get('data') or {}).get('root', '?')}, split {(manifest.get('data') or {}).get('split', '?')}, "
        f"checkpoint {manifest.get('checkpoint', '?')})")
    listed = {(cls, obj) for cls, obj, _, _ in tasks}
    others = [f"{cls}/{obj}" for cls, obj, _ in find_generated_meshes(generation_dir, required=False)
              if (cls, obj) not in listed]
    if others:
        log(f"warning: ignoring {len(others)} other mesh(es) in {generation_dir} that generate.py's last run did not "
            f"write (an earlier run's), e.g. {', '.join(others[:3])}")
    return tasks


def default_gt_path(out_dir):
    """The data root recorded by generate.py in generation_config.yaml next to generation/."""
    config = os.path.join(out_dir, "generation_config.yaml")
    if os.path.isfile(config):
        with open(config) as f:
            info = yaml.safe_load(f) or {}
        root = (info.get("data") or {}).get("root")
        if root:
            return root
    if not os.path.isfile(config):
        raise ShapeLabError(f"no -gt_path given and {config} does not exist (generate.py writes it when it "
                            f"finishes: rerun an interrupted generate.py, or pass -gt_path DIR)")
    raise ShapeLabError(f"no -gt_path given and {config} does not record data.root; pass -gt_path DIR")


NO_IOU_NOTE = "no points.npz: IoU left empty"


def evaluate_object(task):
    """One row: {class, id, <metrics>, seconds, error, note}. Never raises for a bad mesh or ground truth."""

    cls, obj, mesh_path, gt_dir, opts = task
    row = {"class": cls, "id": obj}
    start = time.perf_counter()
    try:
        mesh = load_mesh(mesh_path, allow_empty=True)
        data_type = opts.get("data_type")
        if data_type == "human":
            row.update(_evaluate_human(mesh, opts["gt_root"], cls, obj, opts))
        else:
            layout = ground_truth_layout(gt_dir, data_type)
            if layout == "onet":
                gt_points, gt_normals = read_pointcloud_npz(os.path.join(gt_dir, "pointcloud.npz"))
                iou_path = os.path.join(gt_dir, "points.npz")
                if os.path.isfile(iou_path):
                    iou_points, iou_occ = read_points_npz(iou_path)
                else:
                    iou_points, iou_occ = None, None
                    row["note"] = NO_IOU_NOTE
                row.update(eval_mesh(mesh, gt_points, gt_normals, iou_points, iou_occ, n_samples=opts["n_samples"],
                                     contains_method=opts["contains_method"]))
            elif layout.endswith(".npy"):  # IF-Net folder without its mesh: surface samples only, no normals / IoU
                row.update(eval_mesh(mesh, read_surface_samples(layout), None, n_samples=opts["n_samples"]))
            else:
                row.update(_evaluate_against_mesh(mesh, layout, opts))
        row["empty"] = int(len(mesh.faces) == 0)
        row["error"] = ""
    except ShapeLabError as err:
        row["error"] = str(err)
    except Exception as err:  # one corrupt object must not stop the batch; it is reported in its row
        row["error"] = f"{type(err).__name__}: {err}"
    row["seconds"] = time.perf_counter() - start
    return row


def _evaluate_against_mesh(mesh, gt_path, opts, iou=True):
    gt_mesh = read_ground_truth_mesh(gt_path)     # stored in the real dataset's axes; read in canonical ones
    gt_points, gt_normals = sample_mesh_surface(gt_mesh.vertices, gt_mesh.faces, opts["n_samples"], seed=1)
    if len(gt_points) == 0:
        raise ShapeLabError(f"{gt_path}: ground-truth mesh has zero area")
    row = eval_mesh(mesh, gt_points, gt_normals, n_samples=opts["n_samples"])
    if iou:
        row["iou"] = 0.0 if len(mesh.faces) == 0 else mesh_iou(
            mesh, gt_mesh, n_points=opts["iou_samples"], box=(-0.5, 0.5), contains_method=opts["contains_method"])
    return row


def _evaluate_human(mesh, gt_root, sequence, frame, opts):
    """A frame of a human sequence: surface metrics against surface_points_seq (or the frame's mesh), IoU on
    points_seq when it is there."""
    if not frame.isdigit():
        raise ShapeLabError(f"{sequence}/{frame}: a human frame folder is named by its frame number (00000)")
    paths = frame_paths(gt_root, sequence, int(frame))
    if not os.path.isdir(os.path.join(gt_root, sequence)):
        raise ShapeLabError(f"ground truth sequence not found: {os.path.join(gt_root, sequence)}")
    iou_points = iou_occ = None
    if os.path.isfile(paths["points"]):
        iou_points, iou_occ = humans.read_points_npz(paths["points"])   # the human layout's frame, not ONet's
    if os.path.isfile(paths["surface"]):
        d = load_npz(paths["surface"], ["points", "normals"], "surface points")
        points = check_array(d["points"], (None, 3), paths["surface"], "points").astype(np.float32)
        normals = check_array(d["normals"], (len(points), 3), paths["surface"], "normals").astype(np.float32)
        row = eval_mesh(mesh, points, normals, iou_points, iou_occ, n_samples=opts["n_samples"],
                        contains_method=opts["contains_method"])
    elif os.path.isfile(paths["mesh"]):
        gt_mesh = load_mesh(paths["mesh"])
        points, normals = sample_mesh_surface(gt_mesh.vertices, gt_mesh.faces, opts["n_samples"], seed=1)
        row = eval_mesh(mesh, points, normals, iou_points, iou_occ, n_samples=opts["n_samples"],
                        contains_method=opts["contains_method"])
    else:
        raise ShapeLabError(f"{sequence}/{frame}: no ground truth, expected {paths['surface']} or {paths['mesh']}")
    if iou_points is None:
        row["note"] = "no points_seq file: IoU left empty"
    return row


def ground_truth_layout(gt_dir, data_type=None):
    """'onet' when pointcloud.npz is there (points.npz gives the IoU), else the path of the IF-Net
    ground-truth mesh (or surface samples)."""
    if not os.path.isdir(gt_dir):
        raise ShapeLabError(f"ground truth folder not found: {gt_dir}")
    has_onet = os.path.isfile(os.path.join(gt_dir, "pointcloud.npz"))
    if has_onet and data_type in (None, "onet"):
        return "onet"
    if data_type != "onet":
        for name in GT_MESH_NAMES + (IFNET_SURFACE_NAME,):
            path = os.path.join(gt_dir, name)
            if os.path.isfile(path):
                return path
    wanted = "pointcloud.npz (+ points.npz for IoU)" if data_type == "onet" else \
        f"pointcloud.npz (ONet) or {' / '.join(GT_MESH_NAMES + (IFNET_SURFACE_NAME,))} (IF-Net)"
    raise ShapeLabError(f"{gt_dir}: no ground truth found, expected {wanted}")


def _init_worker():
    import torch
    torch.set_num_threads(1)  # one process per core; nested threads only contend
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle: no worker tracebacks


def evaluate_generation(generation_path, gt_path=None, jobs=1, n_samples=100000, iou_samples=100000,
                        contains_method="raycast", data_type=None, progress=True, log=print):
    """Evaluate the generated meshes -> (rows, summary, out_dir): the objects of generation/manifest.yaml, or
    every mesh in a folder without one (see manifest_meshes). See the module docstring."""
    from tqdm import tqdm

    generation_dir, out_dir = resolve_generation_dir(generation_path)
    gt_root = gt_path if gt_path is not None else default_gt_path(out_dir)
    if not os.path.isdir(gt_root):
        raise ShapeLabError(f"-gt_path {gt_root}: not a folder")
    if int(n_samples) < 1 or int(iou_samples) < 1:
        raise ShapeLabError(f"n_samples {n_samples} / iou_samples {iou_samples}: expected integers >= 1")
    for name in RESULT_FILES:
        check_output_file(os.path.join(out_dir, name), "results file")
    opts = {"n_samples": int(n_samples), "iou_samples": int(iou_samples), "contains_method": contains_method,
            "data_type": data_type, "gt_root": gt_root}
    listed = manifest_meshes(generation_dir, log)
    tasks = [(cls, obj, path, os.path.join(gt_root, cls, obj), opts) for cls, obj, path, error in listed if not error]
    if jobs <= 1:
        rows = [evaluate_object(t) for t in tqdm(tasks, desc="evaluate", disable=not progress)]
    else:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
            rows = list(tqdm(pool.map(evaluate_object, tasks, chunksize=1), total=len(tasks), desc="evaluate",
                             disable=not progress))
    done = iter(rows)     # the manifest's order; objects without a mesh to score get a row with their error
    rows = [next(done) if not error else {"class": cls, "id": obj, "error": error, "seconds": 0.0}
            for cls, obj, _, error in listed]
    names = _class_names(gt_root)
    return rows, summarize(rows, names), out_dir


def summarize(rows, names=None):
    """Per-class means, the class mean (mean of class means) and the object mean (over objects).

    Rows with an error are counted in `failed` and left out of the means.
    """
    names = names or {}
    metrics = metric_columns(rows)
    by_class = {}
    for row in rows:
        by_class.setdefault(row["class"], []).append(row)
    summary = []
    for cls, group in by_class.items():
        good = [r for r in group if not r.get("error")]
        entry = {"class": cls, "name": names.get(cls, cls), "objects": len(group), "failed": len(group) - len(good),
                 "empty": sum(int(r.get("empty", 0)) for r in good)}
        entry.update({m: _mean([r[m] for r in good if m in r]) for m in metrics})
        summary.append(entry)
    good_rows = [r for r in rows if not r.get("error")]
    class_mean = {"class": "class mean", "name": "class mean", "objects": len(rows),
                  "failed": len(rows) - len(good_rows), "empty": sum(int(r.get("empty", 0)) for r in good_rows)}
    class_mean.update({m: _mean([e[m] for e in summary]) for m in metrics})
    object_mean = dict(class_mean, **{"class": "object mean", "name": "object mean"})
    object_mean.update({m: _mean([r[m] for r in good_rows if m in r]) for m in metrics})
    return summary + [class_mean, object_mean]


def metric_columns(rows):
    cols = []
    for row in rows:
        for key in row:
            if key not in ("class", "id", "error", "seconds", "empty", "note") and key not in cols:
                cols.append(key)
    return cols


def write_results(out_dir, rows, summary):
    """evaluation_results.csv, evaluation_results_classes.csv, evaluation_results.md (atomic)."""
    metrics = metric_columns(rows)
    object_cols = ["class", "id"] + metrics + ["empty", "seconds", "error", "note"]
    _write_csv(os.path.join(out_dir, "evaluation_results.csv"), object_cols, rows)
    class_cols = ["class", "name", "objects", "failed", "empty"] + metrics
    _write_csv(os.path.join(out_dir, "evaluation_results_classes.csv"), class_cols, summary)
    with atomic_write(os.path.join(out_dir, "evaluation_results.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(markdown_table(summary, rows))
    return [os.path.join(out_dir, n) for n in
            ("evaluation_results.csv", "evaluation_results_classes.csv", "evaluation_results.md")]


def markdown_table(summary, rows):
    shown = [m for m in SUMMARY_METRICS if any(m in e for e in summary)]
    head = ["class", "objects", "failed", "empty"] + shown
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in summary:
        label = entry["name"] if entry["name"] == entry["class"] else f"{entry['name']} ({entry['class']})"
        if entry["class"] in ("class mean", "object mean"):
            label = f"**{label}**"
        cells = [label, str(entry["objects"]), str(entry["failed"]), str(entry.get("empty", 0))] + \
            [_fmt(entry.get(m)) for m in shown]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in rows if r.get("error")]
    text = "\n".join(lines) + "\n"
    text += "\nchamfer-L1 / chamfer-L2 in unit-cube units (papers print chamfer-L1 x10); f1@0.05 in percent.\n"
    empty = [r for r in rows if not r.get("error") and r.get("empty")]
    if empty:
        text += (f"\n{len(empty)} of {len(rows)} predicted meshes are empty (the occupancy never crossed the "
                 f"threshold): they count with IoU 0 and the distance of an empty prediction.\n")
    notes = sorted({r["note"] for r in rows if r.get("note") and not r.get("error")})
    for note in notes:
        count = sum(1 for r in rows if r.get("note") == note and not r.get("error"))
        text += f"\n{count} object(s): {note}.\n"
    if failed:
        text += f"\n{len(failed)} object(s) failed and are left out of the means:\n\n"
        text += "".join(f"- {r['class']}/{r['id']}: {r['error']}\n" for r in failed)
    return text


def _write_csv(path, columns, rows):
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({c: _csv_value(row.get(c)) for c in columns})


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return v


def _fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"     # small values (Chamfer-L2) keep their digits


def _mean(values):
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else float("nan")


def _class_names(gt_root):
    """{synset: name} from the ONet metadata.yaml when there is one, else ShapeLab's category table."""
    names = {}
    meta = os.path.join(gt_root, "metadata.yaml")
    if os.path.isfile(meta):
        try:
            with open(meta) as f:
                info = yaml.safe_load(f) or {}
            names = {k: str(v.get("name", k)) for k, v in info.items() if isinstance(v, dict)}
        except (OSError, yaml.YAMLError):
            names = {}
    if not names:
        names = dict(SYNSET_TO_NAME)
    return names
