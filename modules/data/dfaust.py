"""Real DFAUST (Bogo et al. 2017) -> the human-sequence layout Neural Parts trains on (`modules.data.humans`).

Reads `registrations_m.hdf5` / `registrations_f.hdf5` directly with h5py: one dataset per
`<subject>_<sequence>` of vertices (6890, 3, frames) float, and `faces` (13776, 3). As the original
(paschalidoud/neural_parts), the first 20 frames of every sequence are skipped, and only frames listed in
`d-faust_splits.csv` ("id,split", id = "<subject>_<sequence>/<frame:05d>", frame = index in the hdf5
sequence) are written, with that split.

Axes: DFAUST registrations are taken as y up, front +z (the canonical axes: `frames.DATASET_FRAMES["dfaust"]`;
y-up metres as 3D-CODED requires of FAUST, front from the Neural Parts render camera at +z -- not confirmed
from a primary source); --up / --front name other axes, which are turned into these first.

Frame: DFAUST vertices are metres; they are stored in the same frame as the embedded human data,
p = (x - (0, 0.55, 0)) / 2 (the inverse of `writers.DFAUST_FROM_STORED`), so the render camera is exactly
the original's (simple-3dviz camera (1,1.5,3) -> (0,0.5,0), 45 degrees, grey 0.3 mesh on white) and the
volume box [-0.55, 0.55]^3 is x, z in [-1.1, 1.1] m, y in [-0.55, 1.65] m.

Per frame, under --out: <seq>/mesh_seq/NNNNN.off, surface_points_seq/NNNNN.npz (100k area-weighted points
with face normals; labels -1: DFAUST has no part labels), points_seq/NNNNN.npz (100k uniform points in the
box, packed occupancies), renderings-downsampled/NNNNN.png (224x224) + camera.npz, and
d-faust_splits.csv at the end of every run (rebuilt from all finished frames). Resumable (a finished
frame has a marker in .done/ and is skipped) and shardable (--shard i/n).

Volume labels need a closed surface: registrations are SMPL meshes (watertight). A mesh that is not
watertight is refused unless --allow_open, where labels are the generalised winding number > 0.5 ("inside"
= enclosed by the surface counting holes as patched; only a well-defined occupancy for almost-closed meshes).
"""
import argparse
import json
import os

import numpy as np

from modules.data import humans
from modules.data.synth import sample_surface
from modules.data.writers import (DFAUST_FROM_STORED, DFAUST_GREY, dfaust_camera, on_white, parse_shard,
                                  run_batch, to_uint8)
from modules.geometry.frames import add_axis_arguments, check_axis_options, frame_from_options, rotate_points, \
    to_canonical_rotation
from modules.geometry.io import save_mesh
from modules.geometry.mesh_contains import is_watertight, mesh_contains
from modules.utils import ShapeLabError, atomic_write

SKIP_FRAMES = 20            # the original drops the first 20 frames of each sequence
N_VERTICES = 6890           # SMPL
BOX_HALF = 0.55             # volume samples in [-0.55, 0.55]^3 of the stored frame (as the embedded humans)


def add_arguments(p):
    """The flags of `preprocess.py dfaust`."""
    p.add_argument("--hdf5", nargs="+", required=True,
                   help="registrations_m.hdf5 / registrations_f.hdf5 (files, or a folder holding them)")
    p.add_argument("--out", default="data/dfaust", help="output root (default data/dfaust)")
    p.add_argument("--splits", default=None,
                   help="d-faust_splits.csv (default: next to the first hdf5 file)")
    p.add_argument("--skip", type=int, default=SKIP_FRAMES, help="frames dropped at the start of each sequence (20)")
    p.add_argument("--sequences", default=None, help="comma-separated <subject>_<sequence> names (default: all)")
    p.add_argument("--n_surface", type=int, default=100_000, help="surface points per frame (100000)")
    p.add_argument("--n_volume", type=int, default=100_000, help="volume points per frame (100000)")
    p.add_argument("--image_size", type=int, default=224, help="render size (224; 0: no renders)")
    p.add_argument("--allow_open", action="store_true",
                   help="accept meshes that are not watertight (labels = winding number > 0.5)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--shard", default="0/1", help="i/n: every n-th frame starting at i (job arrays)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (frame k of a sequence uses seed, name, k)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true")
    add_axis_arguments(p, "the registrations", "DFAUST's y up, front +z")
    return p


def _hdf5_files(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith((".hdf5", ".h5")))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise ShapeLabError(f"--hdf5 {p}: no such file or folder")
    if not files:
        raise ShapeLabError(f"--hdf5 {' '.join(paths)}: no .hdf5 files found")
    return files


def scan_hdf5(path, skip=SKIP_FRAMES):
    """{sequence: number of frames} of one registrations file, checked: `faces` (F,3) present, every other
    dataset (6890, 3, T) with T > skip. Raises ShapeLabError naming the file and dataset."""
    import h5py  # deferred: only this command needs h5py
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ShapeLabError(f"{path}: not a readable HDF5 file ({err})") from None
    with f:
        if "faces" not in f:
            raise ShapeLabError(f"{path}: has no 'faces' dataset (expected a DFAUST registrations file with "
                                f"'faces' (F,3) and '<subject>_<sequence>' (6890,3,frames) datasets)")
        faces = f["faces"]
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ShapeLabError(f"{path}: 'faces' has shape {faces.shape}, expected (F, 3)")
        out = {}
        for name in f:
            if name == "faces":
                continue
            d = f[name]
            if d.ndim != 3 or d.shape[1] != 3:
                raise ShapeLabError(f"{path}: dataset '{name}' has shape {d.shape}, expected (vertices, 3, frames)")
            if d.shape[2] <= skip:
                raise ShapeLabError(f"{path}: sequence '{name}' has {d.shape[2]} frames, not more than the "
                                    f"{skip} skipped at its start (--skip)")
            out[name] = int(d.shape[2])
    return out


def read_frame(path, sequence, frame):
    """(vertices (V,3) float64 in metres, faces (F,3) int64) of one frame."""
    import h5py  # deferred: only this command needs h5py
    with h5py.File(path, "r") as f:
        return np.asarray(f[sequence][:, :, frame], np.float64), np.asarray(f["faces"], np.int64)


def to_stored(vertices):
    """DFAUST metres -> the stored frame of the human layout (inverse of DFAUST_FROM_STORED)."""
    scale, shift = DFAUST_FROM_STORED
    return (np.asarray(vertices, np.float64) - np.asarray(shift)) / scale


def _marker(out, seq, frame):
    return os.path.join(out, ".done", f"{seq}_{int(frame):05d}.json")


def write_frame(job):
    """Write every file of one frame (the marker last). job: (hdf5, sequence, frame, out, opts dict)."""
    path, seq, frame, out, o = job
    v, f = read_frame(path, seq, frame)
    v = to_stored(rotate_points(v, to_canonical_rotation(o["frame"])))
    rng = np.random.default_rng([o["seed"], frame, *seq.encode()])
    paths = humans.frame_paths(out, seq, frame)
    pts, nrm = sample_surface(v, f, o["n_surface"], rng)
    uni = rng.uniform(-BOX_HALF, BOX_HALF, (o["n_volume"], 3))
    occ = mesh_contains(v, f, uni, method="winding" if o["allow_open"] else "raycast")
    save_mesh(paths["mesh"], v, f)
    humans.write_surface_points(paths["surface"], pts, nrm, np.full(len(pts), -1))
    humans.write_points_npz(paths["points"], uni, occ)
    if o["image_size"]:
        from modules.vis.render import render_views  # deferred: torch, only when rendering
        from modules.data import r2n2
        cam = dfaust_camera(o["image_size"])
        (rgba,), = render_views(v, f, [cam], [dict(color=[DFAUST_GREY] * 3)], supersample=2, lighting="simple3dviz")
        r2n2.write_image(paths["render"], on_white(to_uint8(rgba)))
        if not os.path.exists(paths["camera"]):
            humans.write_camera(paths["camera"], cam)
    os.makedirs(os.path.dirname(_marker(out, seq, frame)), exist_ok=True)
    with atomic_write(_marker(out, seq, frame)) as tmp, open(tmp, "w") as fh:
        json.dump({"id": f"{seq}/{frame:05d}", "split": o["split"][(seq, frame)], "seed": o["seed"]}, fh)
    return f"{seq}/{frame:05d}"


def finished_rows(out, seed):
    rows = []
    d = os.path.join(out, ".done")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        try:
            with open(os.path.join(d, name)) as fh:
                m = json.load(fh)
        except (OSError, ValueError):
            continue
        if m.get("seed") == seed:
            seq, _, frame = m["id"].rpartition("/")
            rows.append((seq, int(frame), m["split"]))
    return rows


def plan(args):
    """Check every input (nothing is written before this returns) -> list of frame jobs."""
    check_axis_options(getattr(args, "up", None), getattr(args, "front", None))
    files = _hdf5_files(args.hdf5)
    if args.skip < 0:
        raise ShapeLabError(f"--skip {args.skip}: expected >= 0")
    if args.n_surface < 1 or args.n_volume < 1:
        raise ShapeLabError("--n_surface / --n_volume: expected positive counts")
    splits_path = args.splits or os.path.join(os.path.dirname(os.path.abspath(files[0])), "d-faust_splits.csv")
    if not os.path.isfile(splits_path):
        raise ShapeLabError(f"--splits: {splits_path} not found (DFAUST's d-faust_splits.csv, 'id,split')")
    split_of = {(seq, frame): split for split, rows in humans.read_splits_csv(splits_path).items()
                for seq, frame in rows}
    wanted = None if not args.sequences else {s for s in args.sequences.split(",") if s}
    sources = {}
    for path in files:
        for seq, n in scan_hdf5(path, args.skip).items():
            if seq in sources:
                raise ShapeLabError(f"{path}: sequence '{seq}' is also in {sources[seq][0]}")
            sources[seq] = (path, n)
    if wanted is not None and wanted - set(sources):
        raise ShapeLabError(f"--sequences: {', '.join(sorted(wanted - set(sources)))} not in the hdf5 files")
    first = next(iter(sorted(sources)), None)
    if first is None:
        raise ShapeLabError(f"--hdf5: no sequences in {', '.join(files)}")
    v, f = read_frame(sources[first][0], first, args.skip)   # (axes do not matter for watertightness)
    if not args.allow_open and not is_watertight(v, f):
        raise ShapeLabError(f"{sources[first][0]}: the meshes ('faces') are not watertight, so inside/outside "
                            f"labels are undefined; pass --allow_open for winding-number labels")
    jobs = []
    for seq in sorted(sources):
        if wanted is not None and seq not in wanted:
            continue
        path, n = sources[seq]
        jobs += [(path, seq, k) for k in range(args.skip, n) if (seq, k) in split_of]
    if not jobs:
        raise ShapeLabError(f"{splits_path}: lists none of the frames after the first {args.skip} of the "
                            f"sequences in {', '.join(files)}")
    return jobs, split_of


def run_dfaust(args):
    """`preprocess.py dfaust`: hdf5 registrations -> human layout under args.out. Returns the run summary."""
    jobs, split_of = plan(args)
    i, n = parse_shard(args.shard)
    mine = [j for k, j in enumerate(jobs) if k % n == i]
    todo = [j for j in mine if not os.path.exists(_marker(args.out, j[1], j[2]))]
    opts = {"seed": args.seed, "n_surface": args.n_surface, "n_volume": args.n_volume,
            "image_size": args.image_size, "allow_open": args.allow_open,
            "frame": frame_from_options(getattr(args, "up", None), getattr(args, "front", None), "dfaust"),
            "split": {(j[1], j[2]): split_of[(j[1], j[2])] for j in todo}}
    summary = run_batch(write_frame, [(p, s, k, args.out, opts) for p, s, k in todo], jobs=args.jobs,
                        desc="dfaust", progress=not args.no_progress, describe=lambda j: f"{j[1]}/{j[2]:05d}")
    rows = finished_rows(args.out, args.seed)
    if rows:
        humans.write_splits_csv(os.path.join(args.out, "d-faust_splits.csv"), sorted(rows))
    summary.update(frames=len(jobs), shard=len(mine), already=len(mine) - len(todo))
    print(f"dfaust: {summary['written']} frames written, {summary['already']} already done, "
          f"{len(summary['failed'])} failed (shard {args.shard} of {summary['frames']} frames) -> {args.out}")
    return summary


def parse_args(argv=None):
    return add_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0])).parse_args(argv)
