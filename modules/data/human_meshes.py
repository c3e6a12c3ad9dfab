"""Real, unlabelled body meshes (.obj/.ply/.off: FAUST registrations, scans, DFAUST obj exports) -> the
human-sequence layout Neural Parts trains on (`preprocess.py mesh --formats humans`; layout in
`modules.data.humans`). The same files as the embedded humans, without part labels.

Sequences and frames (--sequence):
- stem (default): sequence = the file stem without its trailing number (and one '_', '-' or '.' before it);
  frame = that number. A stem that is only a number takes its folder's name. FAUST
  `registrations/tr_reg_042.ply` -> tr_reg/00042; a DFAUST export `50002_chicken_wings/00021.obj` ->
  50002_chicken_wings/00021; a humans layout's `seq_003/mesh_seq/00007.off` -> seq_003/00007 (a folder named
  mesh_seq stands for its parent). A stem without a trailing number is a one-frame sequence (frame 0).
- folder: every folder is one sequence (its name); frames are the files in sorted order (0, 1, ...).
- file: every file is a one-frame sequence named by its stem.
Sequence names keep [A-Za-z0-9_.-] (anything else becomes '_'); two files giving the same
sequence/frame are refused before anything is written.

Axes: the input is taken as DFAUST's (y up, front +z; FAUST registrations too); other sources give
--up / --front (modules.geometry.frames) and are turned into those axes first.
Frame (--human_frame):
- fit (default): one similarity transform per sequence, from its first frame (the first in frame order
  that loads): surface centroid (area-weighted) at x = z = 0, lowest point at y = -0.47, longest bounding-box
  edge 0.82 -- the frame of the embedded humans (measured over 90 of their frames: lowest point -0.470 +-
  0.004, longest edge 0.816 +- 0.035, centroid x, z within 0.01 +- 0.02 of 0; the bounding-box centre
  wanders 2x more with the pose), so the DFAUST render camera, the volume box [-0.55, 0.55]^3 and models
  trained on the embedded humans fit. Every frame of the sequence uses it, so motion and size are kept
  (as Occupancy Flow maps a sequence into its first frame's loc/scale).
- dfaust: the input is in DFAUST metres (feet near y = 0): stored = (x - (0, 0.55, 0)) / 2, exactly as
  `preprocess.py dfaust`.
original = R^T (stored * scale + loc), R the --up/--front rotation (identity by default); each frame's
scale, loc and R are in its marker (OUT/.done/), scale and loc are printed per sequence.

Per frame: occupancy labels from `mesh_dataset.label_mesh` (the labelling of `preprocess.py mesh`:
already_watertight / made_watertight / winding_number, implausible labels flagged and not written);
100k area-weighted surface points with normals (raw surface, normals turned out of the labelled volume);
100k uniform volume points in [-0.55, 0.55]^3 with their occupancies (Neural Parts draws its "equal"
in/out sample with importance weights from these at load time, as the original's transforms do); the
labelled closed mesh as mesh_seq/NNNNN.off; with --views > 0 one 224x224 render from the DFAUST camera
(grey mesh on white) + camera.npz. Splits (--split_by): whole sequences (default; as DFAUST and the
embedded humans, no body in two splits) or single frames, shuffled by --seed and cut 70/10/20 with at least
one unit in val and test when there are 3 or more (2: train and val; fewer than 3 sequences: by frame,
said in the summary, so a FAUST-like folder of one sequence still trains and validates), or every frame
in one named split (train / val / test). A mesh that cannot be read is named,
skipped, and the run ends with exit code 1 (EXIT_PARTIAL); the per-frame report is OUT/humans_report.csv.
Resumable (markers) and shardable (--shard) as the other `preprocess.py` batches.
"""
import json
import os
import re
import time
import zlib
from dataclasses import dataclass

import numpy as np

from modules.data.categories import HUMAN
# the labelling, checks, surface sampling and report of `preprocess.py mesh`, reused (one labelling path)
from modules.data.mesh_dataset import REPORT_FIELDS, MeshConfig, find_meshes, format_report, label_and_sample, write_report
from modules.data.writers import (DFAUST_FROM_STORED, SPLIT_FRACTIONS, ShapeRecord, check_formats, commit_shape,
                                  marker_path, parse_shard, read_marker, run_batch, write_formats, write_indexes)
from modules.geometry.frames import frame_from_options, frame_name, rotate_points, to_canonical_rotation
from modules.geometry.io import load_mesh
from modules.utils import ShapeLabError, atomic_write

SEQUENCE_RULES = ("stem", "folder", "file")
HUMAN_FRAMES = ("fit", "dfaust")
SPLIT_BY = ("sequence", "frame", "train", "val", "test")
HUMAN_EXTENT = 0.82         # longest bounding-box edge of a fitted first frame (embedded bodies: 0.816 mean)
HUMAN_LOWEST_Y = -0.47      # lowest point of a fitted first frame (embedded meshes: -0.470 mean)
HUMAN_SYNSET, HUMAN_GROUP = HUMAN[1], HUMAN[0]
_TRAILING_NUMBER = re.compile(r"^(.*?)[_.\-]?(\d+)$")
__all__ = ["add_arguments", "plan_frames", "process_frame", "preprocess_human_meshes", "run_human_meshes",
           "sequence_of", "fit_transform"]


def add_arguments(p):
    """The humans-only flags of `preprocess.py mesh` (used with --formats humans)."""
    p.add_argument("--sequence", choices=SEQUENCE_RULES, default="stem",
                   help="--formats humans: how files form sequences: stem (tr_reg_042 -> tr_reg/00042; default), "
                        "folder (one sequence per folder, frames in file order), file (one frame each)")
    p.add_argument("--human_frame", choices=HUMAN_FRAMES, default="fit",
                   help="--formats humans: fit (default: each sequence scaled/centred from its first frame like the "
                        "embedded humans) or dfaust (input in DFAUST metres, y up)")
    p.add_argument("--split_by", choices=SPLIT_BY, default="sequence",
                   help="--formats humans: split whole sequences (default), single frames, or put every frame in "
                        "train / val / test")
    return p


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name).strip(".") or "seq"


def sequence_of(path, rule="stem"):
    """(sequence name, frame number or None) of one mesh file under a naming rule (see the module docstring);
    None: numbered later by sorted order (rule "folder")."""
    folder_path = os.path.dirname(os.path.abspath(path))
    if os.path.basename(folder_path) == "mesh_seq":    # a humans layout itself: <sequence>/mesh_seq/NNNNN.off
        folder_path = os.path.dirname(folder_path)
    folder = os.path.basename(folder_path)
    stem = os.path.splitext(os.path.basename(path))[0]
    if rule == "file":
        return _safe(stem), 0
    if rule == "folder":
        return _safe(folder), None
    m = _TRAILING_NUMBER.match(stem)
    if m is None:
        return _safe(stem), 0
    return _safe(m.group(1) or folder), int(m.group(2))


def plan_frames(paths, rule="stem"):
    """[(path, sequence, frame)] sorted by sequence and frame; two files on one sequence/frame are refused."""
    if rule not in SEQUENCE_RULES:
        raise ShapeLabError(f"--sequence {rule!r}: expected one of {', '.join(SEQUENCE_RULES)}")
    named = [(p, *sequence_of(p, rule)) for p in sorted(paths)]
    if rule == "folder":
        count, where, numbered = {}, {}, []
        for p, seq, _ in named:
            folder = os.path.dirname(os.path.abspath(p))
            if where.setdefault(seq, folder) != folder:
                raise ShapeLabError(f"--sequence folder: {where[seq]} and {folder} would both be sequence '{seq}'; "
                                    f"give the folders different names or use --sequence stem")
            numbered.append((p, seq, count.get(seq, 0)))
            count[seq] = count.get(seq, 0) + 1
        named = numbered
    seen = {}
    for p, seq, frame in named:
        key = (seq, frame)
        if key in seen:
            raise ShapeLabError(f"--sequence {rule}: {seen[key]} and {p} are both frame {frame} of sequence "
                                f"'{seq}'; rename one or use --sequence folder / file")
        seen[key] = p
    return sorted(named, key=lambda t: (t[1], t[2]))


def fit_transform(vertices, faces):
    """(s, offset) with stored = s * v + offset: the fitted human frame of a first frame (vertices (V,3) y-up,
    faces (F,3); see the module docstring)."""
    v = np.asarray(vertices, np.float64)
    tri = v[np.asarray(faces, np.int64)]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    lo, hi = v.min(0), v.max(0)
    extent = float((hi - lo).max())
    if not extent > 0 or not area.sum() > 0:
        raise ShapeLabError("mesh has zero extent or zero area")
    centroid = (area[:, None] * tri.mean(1)).sum(0) / area.sum()
    s = HUMAN_EXTENT / extent
    anchor = np.array([centroid[0], lo[1], centroid[2]])
    return s, np.array([0.0, HUMAN_LOWEST_Y, 0.0]) - s * anchor


def _dfaust_transform():
    """stored = s * x + offset for DFAUST metres: the inverse of DFAUST_FROM_STORED, as `preprocess.py dfaust`."""
    scale, shift = DFAUST_FROM_STORED
    return 1.0 / scale, -np.asarray(shift, np.float64) / scale


def sequence_transforms(frames, mode="fit", R=np.eye(3)):
    """{sequence: (s, offset)} with stored = s * (R @ x) + offset; fit: from the first frame of each sequence
    that loads (the others are reported by their own jobs)."""
    if mode not in HUMAN_FRAMES:
        raise ShapeLabError(f"--human_frame {mode!r}: expected one of {', '.join(HUMAN_FRAMES)}")
    out = {}
    for path, seq, _ in frames:
        if seq in out:
            continue
        if mode == "dfaust":
            out[seq] = _dfaust_transform()
            continue
        try:
            mesh = load_mesh(path)
            out[seq] = fit_transform(rotate_points(np.asarray(mesh.vertices, np.float64), R), mesh.faces)
        except ShapeLabError:
            continue    # a corrupt first frame: the next one fits the sequence; this one fails in its job
    return out


def _rng(seed, key, stream):
    return np.random.default_rng([seed, zlib.crc32(key.encode()), stream])


def quota_split(units, seed):
    """{unit: split}: units shuffled by `seed`, cut 70/10/20 by count (SPLIT_FRACTIONS) with at least one in val
    and test from 3 units on (2 units: train, val; 1: train)."""
    units = sorted(units)
    order = [units[i] for i in np.random.default_rng([seed, 99]).permutation(len(units))]
    n = len(order)
    n_val = 0 if n < 2 else max(1, int(round(dict(SPLIT_FRACTIONS)["val"] * n)))
    n_test = 0 if n < 3 else max(1, int(round(dict(SPLIT_FRACTIONS)["test"] * n)))
    names = ["val"] * n_val + ["test"] * n_test
    names = ["train"] * (n - len(names)) + names
    return dict(zip(order, names))


def assign_splits(frames, seed=0, split_by="sequence"):
    """({(sequence, frame): split}, how) for all frames [(path, sequence, frame)] of a run (every shard
    computes the same). how: the rule used ("sequence" falls back to "frame" below 3 sequences)."""
    if split_by not in SPLIT_BY:
        raise ShapeLabError(f"--split_by {split_by!r}: expected one of {', '.join(SPLIT_BY)}")
    keys = [(seq, frame) for _, seq, frame in frames]
    if split_by in ("train", "val", "test"):
        return {k: split_by for k in keys}, split_by
    sequences = sorted({seq for seq, _ in keys})
    if split_by == "sequence" and len(sequences) >= 3:
        of = quota_split(sequences, seed)
        return {k: of[k[0]] for k in keys}, "sequence"
    return quota_split(keys, seed), "frame" if split_by == "frame" else "frame (fewer than 3 sequences)"


@dataclass
class FrameJob:
    """One frame to write: stored = scale * (rotation @ x) + offset for its input vertices x."""
    path: str
    sequence: str
    frame: int
    scale: float
    offset: np.ndarray
    split: str
    mode: str                 # --human_frame
    rotation: np.ndarray      # input axes -> canonical (= DFAUST's axes)
    axes: str                 # the input axes, for the report

    @property
    def sid(self):
        return f"{self.sequence}/{self.frame:05d}"


def process_frame(cfg, job):
    """Label, sample and write one FrameJob. Returns the report row (REPORT_FIELDS); "flagged" rows were not
    written. Raises ShapeLabError for a mesh that cannot be read or has no area."""
    t0 = time.time()
    sid = job.sid
    mesh = load_mesh(job.path)
    vertices = rotate_points(np.asarray(mesh.vertices, np.float64), job.rotation) * job.scale + job.offset
    faces = np.asarray(mesh.faces, np.int64)
    row, labels, samples = label_and_sample(vertices, faces, job.path, sid, job.axes, cfg, _rng(cfg.seed, sid, 1),
                                            _rng(cfg.seed, sid, 3), ())
    if row["reason"] is not None:
        row["seconds"] = time.time() - t0
        return row
    rec = ShapeRecord(HUMAN_SYNSET, sid, HUMAN_GROUP, labels.vertices.astype(np.float32), labels.faces, samples,
                      render_mesh=(vertices.astype(np.float32), faces, None))
    row["status"] = "written"
    commit_shape(cfg, rec, ["humans"], lambda out: write_formats(rec, cfg, ["humans"], out, _rng(cfg.seed, sid, 2)),
                 dict(source=os.path.abspath(job.path), variant="mesh", split=job.split, human_frame=job.mode,
                      scale=1.0 / job.scale, loc=(-np.asarray(job.offset, np.float64) / job.scale).tolist(),
                      rotation=np.asarray(job.rotation, np.float64).tolist(),
                      report={k: row.get(k) for k in REPORT_FIELDS if k not in ("status", "seconds")}))
    row["seconds"] = time.time() - t0
    return row


def _process_job(args):
    cfg, job = args
    return process_frame(cfg, job)


def _done(cfg, job):
    """Finished by an earlier run with the same inputs and options."""
    m = read_marker(cfg.out, HUMAN_SYNSET, job.sid)
    return (m is not None and "humans" in m.get("formats", ()) and m.get("views") == cfg.views
            and m.get("seed") == cfg.seed and m.get("source") == os.path.abspath(job.path)
            and m.get("human_frame") == job.mode
            and np.allclose(m.get("rotation", np.eye(3).tolist()), job.rotation)
            and np.isclose(m.get("scale", 0.0), 1.0 / job.scale))


def preprocess_human_meshes(cfg, inputs, rule="stem", mode="fit", split_by="sequence", jobs=1, shard=(0, 1),
                            progress=True, up=None, front=None):
    """Every mesh found in `inputs` -> OUT/humans/ (cfg: a mesh_dataset.MeshConfig; up/front: the input's
    axes, default DFAUST's). Returns the batch summary: written, skipped (already done), failed [(path,
    message)] (unreadable and flagged), flagged, rows (also in OUT/humans_report.csv), transforms
    {sequence: (s, offset)}, splits {split: frames}, rotation (3,3)."""
    check_formats(("humans",), cfg.views)
    axes = frame_from_options(up, front, "dfaust")
    R = to_canonical_rotation(axes)
    paths = find_meshes(inputs)
    if not paths:
        raise ShapeLabError(f"no .obj/.off/.ply meshes found in {', '.join(inputs)}")
    frames = plan_frames(paths, rule)
    mine = frames[shard[0]::shard[1]]
    split_of, split_how = assign_splits(frames, cfg.seed, split_by)
    transforms = sequence_transforms(mine if mode == "dfaust" else frames, mode, R)
    todo, done, failed = [], [], []
    for path, seq, frame in mine:
        if seq not in transforms:
            failed.append((path, f"no frame of sequence '{seq}' could be read to fit --human_frame fit"))
            continue
        s, offset = transforms[seq]
        job = FrameJob(path, seq, frame, s, offset, split_of[(seq, frame)], mode, R,
                       frame_name(axes))
        (done if _done(cfg, job) else todo).append(job)
    for j in done:     # finished frames keep their files; only a changed split is rewritten in the marker
        m = read_marker(cfg.out, HUMAN_SYNSET, j.sid)
        if m.get("split") != j.split:
            with atomic_write(marker_path(cfg.out, HUMAN_SYNSET, j.sid)) as tmp, open(tmp, "w") as f:
                json.dump(dict(m, split=j.split), f, sort_keys=True)
    summary = run_batch(_process_job, [(cfg, j) for j in todo], jobs=jobs, desc="humans", progress=progress,
                        describe=lambda a: a[1].path)
    rows = [dict((read_marker(cfg.out, HUMAN_SYNSET, j.sid) or {}).get("report", {}), status="already done",
                 name=j.sid, source=os.path.abspath(j.path)) for j in done]
    rows += [row for _, row in summary["results"]]
    failed += [(j.path, msg) for (_, j), msg in summary["failed"]]
    rows += [dict(status="unreadable", name=os.path.basename(p), source=os.path.abspath(p), reason=msg)
             for p, msg in failed]
    order = {os.path.abspath(f[0]): i for i, f in enumerate(frames)}
    rows.sort(key=lambda r: order.get(r["source"], len(order)))
    flagged = [(r["source"], r["reason"]) for r in rows if r["status"] == "flagged"]
    report = os.path.join(cfg.out, "humans_report.csv" if shard[1] == 1 else
                          f"humans_report_shard{shard[0]}of{shard[1]}.csv")
    os.makedirs(cfg.out, exist_ok=True)
    write_report(report, rows)
    write_indexes(cfg.out, cfg.seed, cfg.views)
    summary.update(written=sum(r["status"] == "written" for r in rows), requested=len(mine), skipped=len(done),
                   flagged=flagged, failed=failed + flagged, rows=rows, report=report, transforms=transforms,
                   splits={sp: sum(1 for j in todo + done if j.split == sp) for sp in ("train", "val", "test")},
                   split_how=split_how, rotation=R)
    return summary


def run_human_meshes(args):
    """`preprocess.py mesh --formats humans`: run and print the summary, per-sequence frames and the per-frame
    table. Returns the summary (the caller turns failures into exit code EXIT_PARTIAL)."""
    cfg = MeshConfig(out=args.out, seed=args.seed, formats=("humans",), views=args.views)
    summary = preprocess_human_meshes(cfg, args.inputs, getattr(args, "sequence", "stem"),
                                      getattr(args, "human_frame", "fit"), getattr(args, "split_by", "sequence"),
                                      jobs=args.jobs, shard=parse_shard(args.shard), progress=not args.no_progress,
                                      up=getattr(args, "up", None), front=getattr(args, "front", None))
    R = summary["rotation"]
    n_bad = len(summary["failed"])
    print(f"mesh --formats humans: {summary['requested']} frames, {summary['written']} written, "
          f"{summary['skipped']} already done, {len(summary['flagged'])} flagged, "
          f"{n_bad - len(summary['flagged'])} unreadable, {summary['seconds']:.1f} s -> "
          f"{os.path.join(cfg.out, 'humans')}")
    for seq, (s, offset) in sorted(summary["transforms"].items()):
        loc = -np.asarray(offset) / s
        text = f"stored * {1 / s:.4g} + ({loc[0]:.4g}, {loc[1]:.4g}, {loc[2]:.4g})"
        print(f"  sequence {seq}: original = " + (text if np.allclose(R, np.eye(3)) else f"R^T ({text})"))
    sp = summary["splits"]
    print(f"  splits: train {sp['train']}, val {sp['val']}, test {sp['test']} frames (by {summary['split_how']}); "
          f"no part labels (real meshes)")
    print(format_report(summary["rows"]))
    print(f"  report: {summary['report']}")
    return summary
