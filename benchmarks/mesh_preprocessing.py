"""Time `preprocess.py mesh` per mesh on generated meshes of the kinds real data has, and check its labels.

Kinds (each written as .obj, .off and .ply in turn):
- closed:  a sphere, a cylinder and a box that overlap (three closed parts, no boolean union)
- double:  the same surface as a double-sided triangle soup (every face twice, reversed, no shared
           vertices), as ShapeNetCore stores many models
- open:    the closed mesh with a few small holes cut into it
- soup:    a random triangle soup (must be FLAGGED, not written)
For each mesh: seconds (load, label, sample, write all formats, renders included), the occupancy path
taken, the inside fraction of points.npz, and for the first three kinds the label accuracy on the
points.npz points against the analytic union of the three primitives.

    OMP_NUM_THREADS=2 python benchmarks/mesh_preprocessing.py [--faces 20000,70000] [--views 24] [--threads 2]

The cylinder part has about n_faces/4 sections, so its side and cap triangles are long thin slivers (a 70k-face
mesh: ~0.9 x 0.0001 side faces), the case that makes bounding-box rasterizers slow. The load average is
printed before and after: the machine may be shared, and the times scale with it.
"""
import argparse
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402

from modules.data import onet  # noqa: E402
from modules.data.mesh_dataset import MeshConfig, preprocess_meshes  # noqa: E402
from modules.utils import cli_main  # noqa: E402

SPHERE_R = 0.35
CYL_R, CYL_H = 0.12, 0.9          # along x
BOX_C, BOX_E = (0.0, -0.25, 0.0), (0.6, 0.2, 0.5)
KINDS = ("closed", "double", "open", "soup")
EXTS = (".obj", ".off", ".ply")


def analytic_inside(p):
    """Inside the union of the three primitives (the frame the meshes are built in)."""
    p = np.asarray(p, np.float64)
    sphere = np.linalg.norm(p, axis=1) < SPHERE_R
    cyl = (np.abs(p[:, 0]) < CYL_H / 2) & (np.linalg.norm(p[:, 1:], axis=1) < CYL_R)
    box = np.all(np.abs(p - BOX_C) < np.asarray(BOX_E) / 2, axis=1)
    return sphere | cyl | box


def closed_mesh(n_faces):
    """Three overlapping closed parts with about n_faces faces in all -> (vertices, faces)."""
    level = max(1, int(math.log(0.6 * n_faces / 20, 4)))
    k = max(0, int(math.log(0.2 * n_faces / 12, 4)))
    sphere = trimesh.creation.icosphere(level, radius=SPHERE_R)
    box = trimesh.creation.box(extents=BOX_E)
    for _ in range(k):
        box = box.subdivide()
    box.apply_translation(BOX_C)
    sections = max(16, (n_faces - len(sphere.faces) - len(box.faces)) // 4)
    cyl = trimesh.creation.cylinder(CYL_R, CYL_H, sections=sections)
    cyl.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (0, 1, 0)))
    mesh = trimesh.util.concatenate([sphere, cyl, box])
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def double_sided(vertices, faces):
    """Every face twice (the second reversed), every corner its own vertex: a ShapeNetCore-style soup."""
    tri = np.asarray(vertices)[np.asarray(faces)]
    soup = np.concatenate([tri, tri[:, ::-1]])
    return soup.reshape(-1, 3), np.arange(3 * len(soup)).reshape(-1, 3)


def with_holes(vertices, faces, n_holes=6, radius=0.03, seed=0):
    """Remove the faces whose centre lies within `radius` of a few random surface points."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    centres = mesh.sample(n_holes, seed=seed)
    d = np.linalg.norm(mesh.triangles_center[:, None] - centres[None], axis=-1).min(1)
    return vertices, faces[d > radius]


def random_soup(n_faces, seed=0, size=0.1):
    """n_faces triangles with centres uniform in [-0.5,0.5]^3 and corners N(centre, size^2)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.5, 0.5, (n_faces, 1, 3))
    tri = centres + rng.normal(0, size, (n_faces, 3, 3))
    return tri.reshape(-1, 3), np.arange(3 * n_faces).reshape(-1, 3)


def make_mesh(kind, n_faces):
    if kind == "soup":
        return random_soup(n_faces)
    if kind == "double":
        return double_sided(*closed_mesh(n_faces // 2))
    v, f = closed_mesh(n_faces)
    return with_holes(v, f) if kind == "open" else (v, f)


def label_accuracy(out, name):
    """Agreement of points.npz's occupancies with the analytic union (points mapped back with loc/scale)."""
    path = os.path.join(out, "onet", "mesh", name, "points.npz")
    loc, scale = onet.read_loc_scale(path)      # canonical axes, as the points the reader returns
    pts, occ = onet.read_points_npz(path)
    truth = analytic_inside(np.asarray(pts, np.float64) * scale + loc)
    return float(np.mean(occ == truth)), float(np.mean(truth))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", default="20000,70000", help="comma-separated face counts (default %(default)s)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    parser.add_argument("--views", type=int, default=24, help="renders per shape, as preprocess.py (default 24)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(x) for x in args.faces.split(",")]
    kinds = [k.strip() for k in args.kinds.split(",")]
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch threads {torch.get_num_threads()}, cores "
          f"visible: {os.cpu_count()}, views {args.views}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'kind':<7} {'faces':>7} {'file':<5} {'seconds':>8} {'status':<8} {'path':<18} {'inside':>7} "
          f"{'true':>7} {'label acc':>9}")
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        i = 0
        for n in sizes:
            for kind in kinds:
                ext = EXTS[i % len(EXTS)]
                i += 1
                v, f = make_mesh(kind, n)
                name = f"{kind}_{n}"
                src = os.path.join(tmp, "in", name + ext)
                os.makedirs(os.path.dirname(src), exist_ok=True)
                trimesh.Trimesh(v, f, process=False).export(src)
                cfg = MeshConfig(out=os.path.join(tmp, "out"), views=args.views)
                t0 = time.time()
                summary = preprocess_meshes(cfg, [src], jobs=1, progress=False)
                seconds = time.time() - t0
                row = summary["rows"][0]
                acc, true = ("", "")
                if row["status"] == "written" and kind != "soup":
                    a, t = label_accuracy(cfg.out, name)
                    acc, true = f"{a:.4f}", f"{t:.4f}"
                inside = "" if row.get("inside_fraction") is None else f"{row['inside_fraction']:.4f}"
                print(f"{kind:<7} {len(f):>7} {ext:<5} {seconds:>8.1f} {row['status']:<8} {row['path']:<18} "
                      f"{inside:>7} {true:>7} {acc:>9}", flush=True)
                if row["status"] == "flagged":
                    print(f"        flagged: {row['reason']}")
                times.append(seconds)
    print(f"max {max(times):.1f} s, mean {np.mean(times):.1f} s per mesh; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
