"""Real meshes (.obj/.off/.ply: ShapeNetCore, ModelNet, scans) -> the same files as the synthetic data
(`preprocess.py mesh`), and the NST seed's vertex export (`preprocess.py xyz`).

Per mesh: turn it from its source frame into the canonical one (y up, front +z; `source_frame`: --up /
--front, else ShapeNetCore v2 for .../models/model_normalized.*, ShapeNetCore v1 for <synset>/<id>/model.*,
ModelNet for paths under a ModelNet* folder, else the canonical frame; the writers then write each layout
in its real dataset's axes), centre the bounding box and scale its longest edge to 1 (ONet's `loc`/`scale`
are stored so that original = normalised * scale + loc), choose how to label occupancy (`label_mesh`), check that the
labels are plausible, sample the surface (area-weighted, 100k points + normals), voxelise, render.

Occupancy, one of three paths (reported per shape):
- already_watertight: the mesh is closed and consistently oriented -> its winding number.
- made_watertight: otherwise the mesh is made watertight first, as the originals do (ONet fuses depth
  maps, IF-Net uses DISN's distance-field isosurfaces): point-cloud-utils' Manifold, its vertices
  projected back onto the input surface. This is the path for double-sided triangle soups (ShapeNetCore:
  every face has a reversed twin, so the raw winding number is 0 everywhere). For a one-sided open mesh
  the raw winding number is a second opinion: the two must agree (IoU >= MIN_AGREEMENT).
- winding_number: a one-sided open mesh whose holes are wider than Manifold's octree leaves (the outside
  leaks in and the watertight mesh is a thin shell) but whose raw winding number is unambiguous
  (few points between 0.25 and 0.75) -> the raw winding number (Jacobson et al. 2013).
A shape is FLAGGED (reported, not written, the batch fails) when its labels are implausible: inside
fraction of the points.npz box below MIN_INSIDE or above MAX_INSIDE (the largest possible for a shape
normalised to the unit cube is 1/1.1^3 = 0.75), or the watertight and raw-winding labels disagree while
the winding number is ambiguous (a random triangle soup). The saved meshes (model.off, isosurf_scaled.off)
and voxels are the labelled, closed mesh; renders and surface samples use the raw mesh (exact geometry),
with normals turned to point out of the labelled volume and samples hidden inside it (interior parts
of a car, say) dropped. A mesh that cannot be read is listed and skipped; the others are processed.
Parallel (-j), shardable (--shard i/n), resumable (markers); a per-shape report mesh_report.csv is
written next to the output.
"""
import csv
import os
import time
import zlib
from dataclasses import dataclass

import numpy as np

from modules.data.synth import BOX_PADDING, sample_surface, sample_volume
from modules.data.writers import (ShapeRecord, WriteConfig, check_formats, commit_shape, is_done, parse_shard,
                                  read_marker, run_batch, split_from_uniform, write_formats, write_indexes)
from modules.geometry.frames import (check_axis_options, frame_from_options, frame_name, rotate_points,
                                     to_canonical_rotation)
from modules.geometry.io import MESH_EXTENSIONS, load_mesh, load_point_cloud, save_point_cloud
from modules.geometry.mesh_contains import (closed_winding_number, double_sided_fraction, is_watertight, make_watertight,
                                            winding_number)
from modules.geometry.voxels import voxel_centers, voxelize_points
from modules.utils import PartialFailure, ShapeLabError, atomic_write
from modules.vis.pointclouds import save_point_cloud_png

MESH_FORMATS = ("onet", "ifnet", "r2n2", "genren")   # formats that need no part labels
PATHS = ("already_watertight", "made_watertight", "winding_number")
MIN_INSIDE = 1e-3       # inside fraction of the points.npz box below this: no volume (flagged)
MAX_INSIDE = 0.9        # above this: inverted or filled-box labels (a unit-cube shape fills at most 0.75)
MIN_AGREEMENT = 0.9     # IoU of made-watertight vs raw winding labels needed to trust the watertight mesh
MAX_AMBIGUOUS = 0.01    # fraction of the box where 0.25 < |w| < 0.75 up to which the raw winding is trusted
DOUBLE_SIDED = 0.5      # fraction of faces with a reversed twin above which the raw winding is meaningless
N_PROBE = 5_000         # uniform points used to compare the labellings (IoU to about +-0.01)
SURFACE_EPS = 0.004     # offset along the normal used to orient surface normals and find hidden samples
REPORT_FIELDS = ("status", "name", "source", "frame", "faces", "path", "resolution", "inside_fraction", "double_sided", "agreement",
                 "ambiguous", "surface", "seconds", "reason")
__all__ = ["find_meshes", "mesh_items", "label_mesh", "process_mesh", "preprocess_meshes", "mesh_to_xyz",
           "BOX_PADDING", "PATHS"]


@dataclass
class MeshConfig(WriteConfig):
    formats: tuple = MESH_FORMATS
    n_surface: int = 100_000
    n_uniform: int = 100_000
    watertight_resolution: int = 20_000   # Manifold octree leaves (holes narrower than ~one leaf are closed)
    up: str = None                        # source axes (--up / --front); None: by path, see source_frame
    front: str = None


def find_meshes(inputs):
    """Mesh files (.obj .off .ply) among `inputs` (files, or folders searched recursively), sorted."""
    found = []
    for path in inputs:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                found += [os.path.join(root, f) for f in files if os.path.splitext(f)[1].lower() in MESH_EXTENSIONS]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise ShapeLabError(f"--in (--data_path) {path}: no such file or folder")
    return sorted(set(found))


def _is_synset(name):
    return len(name) == 8 and name.isdigit()


def mesh_items(paths, category=None):
    """[(path, synset folder, id)]: ShapeNet paths <synset>/<id>/[models/]model*.ext keep their synset and
    id; other files go under `category` (default 'mesh') named by their file name (plus folders when
    two files share a name)."""
    items = []
    for p in paths:
        parts = os.path.normpath(os.path.abspath(p)).split(os.sep)
        stem = os.path.splitext(parts[-1])[0]
        up = parts[-3:-1] if parts[-2] != "models" else parts[-4:-2]
        if category is None and len(up) == 2 and _is_synset(up[0]):
            items.append([p, up[0], up[1]])
        else:
            items.append([p, category or "mesh", stem])
    seen = {}
    for it in items:
        seen.setdefault((it[1], it[2]), []).append(it)
    for group in seen.values():
        if len(group) > 1:
            for it in group:
                rel = os.path.splitext(os.path.relpath(it[0]))[0]
                it[2] = rel.replace(os.sep, "_").replace("..", "up").lstrip("_.")
    return [tuple(it) for it in items]


def path_frame(path):
    """The frame a mesh file is in, by its path: ShapeNetCore v2 (<id>/models/model_normalized.*), ShapeNetCore
    v1 (<synset>/<id>/model.*), ModelNet (under a folder named ModelNet*), else the canonical frame."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    stem = os.path.splitext(parts[-1])[0]
    if stem == "model_normalized" and len(parts) >= 2 and parts[-2] == "models":
        return "shapenet_v2"
    if stem == "model" and len(parts) >= 3 and _is_synset(parts[-3]):
        return "shapenet_v1"
    if any(p.lower().startswith("modelnet") for p in parts[:-1]):
        return "modelnet"
    return "canonical"


def source_frame(path, up=None, front=None):
    """(up, front) of a source file: --up / --front where given, the rest from `path_frame(path)`."""
    return frame_from_options(up, front, path_frame(path))


def _item_rng(seed, synset, sid, stream):
    return np.random.default_rng([seed, zlib.crc32(f"{synset}/{sid}".encode()), stream])


def normalise_mesh(vertices):
    """(vertices centred with longest bbox edge 1, loc (3,), scale) with original = v * scale + loc."""
    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(0), v.max(0)
    scale = float((hi - lo).max())
    if not scale > 0:
        raise ShapeLabError("mesh has zero extent (all vertices at one point)")
    loc = (lo + hi) / 2
    return (v - loc) / scale, loc, scale


@dataclass
class MeshLabels:
    """How a mesh is labelled: `path` (one of PATHS), `inside(points (P,3)) -> bool (P,)`, the closed mesh
    the labels belong to (vertices, faces), statistics for the report, and `flag` (None, or why the labels
    are implausible)."""
    path: str
    inside: object
    vertices: np.ndarray
    faces: np.ndarray
    stats: dict
    flag: str = None


def _winding_inside(vertices, faces):
    return lambda p: np.abs(winding_number(vertices, faces, p, fast=True)) > 0.5


def _closed_inside(vertices, faces):
    # ray casting: the same winding number for a closed mesh, and fast on long thin triangles
    return lambda p: np.abs(closed_winding_number(vertices, faces, p)) > 0.5


def _iou(a, b):
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def label_mesh(vertices, faces, rng, resolution=20_000, seed=0):
    """Choose the occupancy labelling of a normalised mesh (vertices (V,3) in the unit cube, faces (F,3)).

    See the module docstring for the three paths and the flags. `rng` draws N_PROBE points in the
    points.npz box to compare labellings. Returns a MeshLabels.
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    stats = dict(double_sided=double_sided_fraction(vertices, faces), agreement=None, ambiguous=None)
    if is_watertight(vertices, faces):
        return MeshLabels("already_watertight", _closed_inside(vertices, faces), vertices, faces, stats)
    half = 0.5 + BOX_PADDING / 2
    probe = rng.uniform(-half, half, (N_PROBE, 3))
    raw_w = None
    if stats["double_sided"] < DOUBLE_SIDED:  # one-sided: the raw winding number means something
        raw_w = np.abs(winding_number(vertices, faces, probe, fast=True))
        stats["ambiguous"] = float(np.mean((raw_w > 0.25) & (raw_w < 0.75)))
    labels = None
    # Manifold closes holes narrower than about one octree leaf; when the outside leaked in (the labels
    # disagree with the raw winding number, or there is no volume) retry once with 8x larger leaves --
    # the projection onto the surface keeps the geometry
    for res in (resolution, max(500, resolution // 8)):
        try:
            wv, wf = make_watertight(vertices, faces, resolution=res, seed=seed)
        except (ShapeLabError, RuntimeError, ValueError) as err:
            stats["watertight_error"] = str(err)
            continue
        labels = MeshLabels("made_watertight", _closed_inside(wv, wf), wv, wf, stats)
        stats["resolution"] = res
        inside = labels.inside(probe)
        if raw_w is None:
            if np.mean(inside) >= MIN_INSIDE:
                return labels
            continue
        stats["agreement"] = float(_iou(inside, raw_w > 0.5))
        if stats["agreement"] >= MIN_AGREEMENT:
            return labels
    if raw_w is not None and stats["ambiguous"] <= MAX_AMBIGUOUS:
        return MeshLabels("winding_number", _winding_inside(vertices, faces), vertices, faces, stats)
    if labels is None:
        return MeshLabels("made_watertight", None, vertices, faces, stats,
                          flag=f"could not be made watertight ({stats.get('watertight_error')})")
    if raw_w is None:
        return labels   # no volume even with large leaves: the inside-fraction check flags it
    labels.flag = (f"watertight and raw winding-number labels disagree (IoU {stats['agreement']:.2f}) and the "
                   f"winding number is ambiguous on {100 * stats['ambiguous']:.1f}% of the box")
    return labels


def label_and_sample(vertices, faces, path, name, frame_text, cfg, rng, label_rng, sigmas):
    """The part every real-mesh path shares: area check, watertight labelling, surface and volume samples.
    vertices (V,3) float64 already in the output frame, faces (F,3). -> (report row, labels, samples or None);
    samples is None (and row["reason"] says why) when the shape is flagged. Raises ShapeLabError when the mesh
    has no area."""
    tri = vertices[faces]
    if not np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum() > 0:
        raise ShapeLabError(f"{path}: mesh has zero surface area")
    labels = label_mesh(vertices, faces, label_rng, cfg.watertight_resolution, cfg.seed)
    row = dict(status="flagged", name=name, source=os.path.abspath(path), frame=frame_text, faces=len(faces),
               path=labels.path, inside_fraction=None, surface=None, reason=labels.flag,
               **{k: labels.stats.get(k) for k in ("resolution", "double_sided", "agreement", "ambiguous")})
    if labels.flag is not None:
        return row, labels, None
    if labels.path == "made_watertight":
        pts, nrm, row["surface"] = oriented_surface(vertices, faces, labels, cfg.n_surface, rng)
    else:
        (pts, nrm), row["surface"] = sample_surface(vertices, faces, cfg.n_surface, rng), "raw"
    samples = dict(surface=pts, normals=nrm, labels=None)      # real meshes carry no part labels
    samples.update(sample_volume(pts, cfg.n_uniform, sigmas, rng, labels.inside))
    row["inside_fraction"] = float(np.mean(samples["uniform_occ"]))
    row["reason"] = check_inside_fraction(row["inside_fraction"])
    return row, labels, (samples if row["reason"] is None else None)


def check_inside_fraction(fraction):
    if fraction < MIN_INSIDE:
        return (f"inside fraction {fraction:.4f} < {MIN_INSIDE}: no volume (an open or one-sided surface "
                f"that could not be closed)")
    if fraction > MAX_INSIDE:
        return f"inside fraction {fraction:.4f} > {MAX_INSIDE} of the box: inverted labels or a triangle soup"
    return None


def oriented_surface(vertices, faces, labels, n, rng):
    """n area-weighted samples of the raw surface, normals pointing out of the labelled volume, samples
    hidden inside it dropped -> (points, normals, source). Falls back to the labelled (closed) mesh when
    more than half the raw surface is hidden."""
    m = int(n * 1.5) + 16
    pts, nrm = sample_surface(vertices, faces, m, rng)
    outer = labels.inside(pts + SURFACE_EPS * nrm)
    inner = labels.inside(pts - SURFACE_EPS * nrm)
    nrm[outer & ~inner] *= -1
    keep = ~(outer & inner)
    if np.count_nonzero(keep) >= n:
        return pts[keep][:n], nrm[keep][:n], "raw"
    pts, nrm = sample_surface(labels.vertices, labels.faces, n, rng)
    return pts, nrm, "watertight"


def process_mesh(cfg, item):
    """Load, normalise, label, check, sample and write one mesh.

    Returns the report row (dict with REPORT_FIELDS); status "flagged" rows were not written. Raises
    ShapeLabError for meshes that cannot be read or have no area.
    """
    t0 = time.time()
    path, synset, sid = item
    mesh = load_mesh(path)
    frame = source_frame(path, cfg.up, cfg.front)
    vertices, loc, scale = normalise_mesh(rotate_points(np.asarray(mesh.vertices, np.float64),
                                                        to_canonical_rotation(frame)))
    faces = np.asarray(mesh.faces, np.int64)
    row, labels, samples = label_and_sample(vertices, faces, path, f"{synset}/{sid}", frame_name(frame), cfg,
                                            _item_rng(cfg.seed, synset, sid, 1),
                                            _item_rng(cfg.seed, synset, sid, 3), cfg.sigmas)
    if samples is not None:
        samples["loc_scale"] = (loc, scale)
    if row["reason"] is not None:
        row["seconds"] = time.time() - t0
        return row
    formats = [f for f in cfg.formats if f in MESH_FORMATS]
    lv, lf = labels.vertices.astype(np.float32), labels.faces
    voxels = None
    if "r2n2" in formats:   # surface cells from the 100k samples (trimesh's subdivide_to_size, which
        # voxelize_mesh uses, explodes on long thin triangles: 540 s for a 20k-face cylinder) + inside centres
        centres = voxel_centers(32).reshape(-1, 3)
        voxels = voxelize_points(samples["surface"], 32) | labels.inside(centres).reshape(32, 32, 32)
    rec = ShapeRecord(synset, sid, synset, lv, lf, samples, None, voxels,
                      render_mesh=(vertices.astype(np.float32), faces, None))
    split = split_from_uniform(_item_rng(cfg.seed, synset, sid, 99).random())
    view_rng = _item_rng(cfg.seed, synset, sid, 2)
    row["status"] = "written"
    row["seconds"] = time.time() - t0   # labelling and sampling; the writers' time is added below
    commit_shape(cfg, rec, formats, lambda stage: write_formats(rec, cfg, formats, stage, view_rng),
                 dict(source=os.path.abspath(path), variant="mesh", split=split, loc=list(map(float, loc)),
                      scale=scale, report={k: row[k] for k in REPORT_FIELDS if k not in ("status", "seconds")}))
    row["seconds"] = time.time() - t0
    return row


def _process_item(args):
    cfg, item = args
    return process_mesh(cfg, item)


def report_path(out, shard=(0, 1)):
    """The per-shape report of a run: OUT/mesh_report.csv (one per shard when sharded)."""
    name = "mesh_report.csv" if shard[1] == 1 else f"mesh_report_shard{shard[0]}of{shard[1]}.csv"
    return os.path.join(out, name)


def preprocess_meshes(cfg, inputs, jobs=1, shard=(0, 1), category=None, progress=True):
    """Process every mesh found in `inputs`; returns the batch summary: written, skipped (already done),
    failed = [(path, message)] for every mesh not written (unreadable or flagged), flagged = [(path,
    reason)], rows = the per-shape report rows (also written to `report_path`)."""
    check_formats(cfg.formats, cfg.views)
    bad = [f for f in cfg.formats if f not in MESH_FORMATS]
    if bad:
        raise ShapeLabError(f"--formats {','.join(bad)}: real meshes carry no part labels; "
                            f"use {', '.join(MESH_FORMATS)}")
    paths = find_meshes(inputs)
    if not paths:
        raise ShapeLabError(f"no .obj/.off/.ply meshes found in {', '.join(inputs)}")
    items = mesh_items(paths, category)[shard[0]::shard[1]]
    done = [it for it in items if is_done(cfg, it[1], it[2], cfg.formats)]
    todo = [(cfg, it) for it in items if it not in done]
    summary = run_batch(_process_item, todo, jobs=jobs, desc="meshes", progress=progress, describe=lambda a: a[1][0])
    rows = []
    for it in done:
        info = (read_marker(cfg.out, it[1], it[2]) or {}).get("report", {})
        rows.append(dict(info, status="already done", name=f"{it[1]}/{it[2]}", source=os.path.abspath(it[0])))
    for (_, it), row in summary["results"]:
        rows.append(row)
    for (_, it), msg in summary["failed"]:
        rows.append(dict(status="unreadable", name=f"{it[1]}/{it[2]}", source=os.path.abspath(it[0]), reason=msg))
    order = {os.path.abspath(it[0]): i for i, it in enumerate(items)}
    rows.sort(key=lambda r: order.get(r["source"], len(order)))
    flagged = [(r["source"], r["reason"]) for r in rows if r["status"] == "flagged"]
    failed = [(it[0], msg) for (_, it), msg in summary["failed"]]
    summary.update(written=sum(r["status"] == "written" for r in rows), requested=len(items), skipped=len(done),
                   flagged=flagged, failed=failed + flagged, rows=rows, report=report_path(cfg.out, shard))
    write_report(summary["report"], rows)
    write_indexes(cfg.out, cfg.seed, cfg.views)
    return summary


def _fmt(value, spec):
    return "" if value is None else format(value, spec)


def write_report(path, rows):
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=REPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k) for k in REPORT_FIELDS})


def format_report(rows):
    """The per-shape table printed after a run (one line per mesh)."""
    lines = [f"  {'status':<12} {'path':<18} {'inside':>7} {'2-sided':>7} {'IoU':>5} {'faces':>7} {'s':>6}  name"]
    for r in rows:
        lines.append(f"  {r['status']:<12} {r.get('path') or '-':<18} {_fmt(r.get('inside_fraction'), '.4f'):>7} "
                     f"{_fmt(r.get('double_sided'), '.2f'):>7} {_fmt(r.get('agreement'), '.2f'):>5} "
                     f"{_fmt(r.get('faces'), 'd'):>7} {_fmt(r.get('seconds'), '.1f'):>6}  {r['name']}")
        if r["status"] in ("flagged", "unreadable"):
            lines.append(f"      {r['source']}: {r.get('reason')}")
    return "\n".join(lines)


def run_mesh(args):
    """`preprocess.py mesh`: run, print the summary and per-shape table; a batch with any mesh not written
    ends with a ShapeLabError (exit code 2) naming how many and where the report is."""
    fmts = tuple(f.strip() for f in args.formats.split(",")) if args.formats else MESH_FORMATS
    up, front = getattr(args, "up", None), getattr(args, "front", None)
    check_axis_options(up, front)      # a bad --up / --front fails before any work
    cfg = MeshConfig(out=args.out, seed=args.seed, formats=fmts, views=args.views, up=up, front=front)
    summary = preprocess_meshes(cfg, args.inputs, jobs=args.jobs, shard=parse_shard(args.shard),
                                category=args.category, progress=not args.no_progress)
    n_bad = len(summary["failed"])
    print(f"mesh: {summary['requested']} meshes, {summary['written']} written, {summary['skipped']} already done, "
          f"{len(summary['flagged'])} flagged, {n_bad - len(summary['flagged'])} unreadable, "
          f"{summary['seconds']:.1f} s -> {cfg.out}")
    print(format_report(summary["rows"]))
    print(f"  report: {summary['report']}")
    if n_bad:
        raise PartialFailure(f"mesh: {n_bad} of {summary['requested']} meshes not written "
                            f"({len(summary['flagged'])} flagged, {n_bad - len(summary['flagged'])} unreadable); "
                            f"see {summary['report']}")
    return summary


# ------------------------------------------------------------------ NST seed: preprocess.py xyz

def mesh_to_xyz(path, out_path, iters=0, normals=None, up=None, front=None):
    """Vertices of the mesh after `iters` Loop subdivisions -> .xyz ('x y z') or .xyzn (+ vertex normals),
    turned into the canonical frame the PointNet weights use (source axes: up/front, else `source_frame`).

    As the NST seed's preprocess.py (open3d `subdivide_loop`), except: `iters` subdivisions are applied
    whenever iters >= 1 (the seed skipped iters == 1), the output path is a file, no viewer opens, and the
    seed's ShapeNetCore v2 meshes (front -z) are turned into the canonical frame (front +z).
    """
    import open3d as o3d  # deferred on purpose: heavy optional dependency, only the xyz export needs it
    mesh = load_mesh(path)
    R = to_canonical_rotation(source_frame(path, up, front))
    vertices = rotate_points(np.asarray(mesh.vertices, np.float64), R)
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices),
                                  o3d.utility.Vector3iVector(np.asarray(mesh.faces, np.int32)))
    if iters < 0:
        raise ShapeLabError(f"--subdiv_iters must be >= 0, got {iters}")
    if iters > 0:
        m = m.subdivide_loop(number_of_iterations=int(iters))
    m.compute_vertex_normals()
    ext = os.path.splitext(out_path)[1].lower()
    if ext not in (".xyz", ".xyzn"):
        raise ShapeLabError(f"{out_path}: output must end in .xyz or .xyzn")
    with_normals = ext == ".xyzn" if normals is None else normals
    save_point_cloud(out_path, np.asarray(m.vertices, np.float32),
                     normals=np.asarray(m.vertex_normals, np.float32) if with_normals else None)
    return len(m.vertices)


def run_xyz(args):
    check_axis_options(getattr(args, "up", None), getattr(args, "front", None))
    paths = find_meshes(args.inputs)
    if not paths:
        raise ShapeLabError(f"no .obj/.off/.ply meshes found in {', '.join(args.inputs)}")
    ext = "." + args.format
    if args.out is None:
        name = f"{args.exp_name}___sbd{args.iters}" if len(paths) == 1 else None
        outs = [os.path.join("data", "preprocessed_meshes", (name or os.path.splitext(os.path.basename(p))[0]) + ext)
                for p in paths]
    elif len(paths) == 1 and os.path.splitext(args.out)[1].lower() in (".xyz", ".xyzn"):
        outs = [args.out]
    else:
        outs = [os.path.join(args.out, os.path.splitext(os.path.basename(p))[0] + ext) for p in paths]
    existing = [o for o in outs if os.path.exists(o)]
    if existing and not getattr(args, "overwrite", False):
        raise ShapeLabError(f"{existing[0]} already exists (an earlier run's output): give another --out / --exp_name, "
                            f"or --overwrite to replace it")
    failed = []
    for p, o in zip(paths, outs):
        try:
            n = mesh_to_xyz(p, o, args.iters, up=getattr(args, "up", None), front=getattr(args, "front", None))
            print(f"{p} -> {o} ({n} points)")
            if args.visualize:
                png = os.path.splitext(o)[0] + ".png"
                save_point_cloud_png(png, load_point_cloud(o)["points"])
                print(f"  picture: {png}")
        except ShapeLabError as err:
            failed.append((p, str(err)))
            print(f"  SKIPPED {p}: {err}")
    if failed:
        raise PartialFailure(f"xyz: {len(failed)} of {len(paths)} meshes could not be converted: "
                            + ", ".join(p for p, _ in failed))
    return failed
