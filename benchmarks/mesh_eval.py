"""Meshes and evaluation: mesh_contains vs open3d / trimesh, MISE vs dense extraction, one-object evaluation.

    .venv/bin/python benchmarks/mesh_eval.py            # full sizes (trimesh.contains needs `pip install rtree`)
    .venv/bin/python benchmarks/mesh_eval.py --quick    # smaller, for a smoke run

Prints one table. Times are the best of --repeats runs: wall clock on this machine (whatever else runs on it)
and the process CPU time of that run summed over threads (a steadier figure on a shared machine).
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import tempfile
import time

import numpy as np


import trimesh

from modules.geometry.mesh_contains import mesh_contains
from modules.geometry.mise import dense_extract, grid_points, mise_extract
from modules.utils import cli_main


def best_time(fn, repeats):
    """Best wall time of `repeats` runs -> (Seconds, output); Seconds.cpu is that run's process CPU time."""
    best, best_cpu, out = float("inf"), float("nan"), None
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if wall < best:
            best, best_cpu = wall, cpu
    return Seconds(best, best_cpu), out


class Seconds(float):
    """A wall-clock time that also carries the process CPU time (all threads) of the same run."""

    def __new__(cls, wall, cpu):
        obj = super().__new__(cls, wall)
        obj.cpu = cpu
        return obj


def torus_fn(p):  # > 0.5 inside a torus (major radius 0.25, tube 0.1), smooth signed-distance-like values
    p = np.asarray(p, np.float64)
    q = np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2) - 0.25
    return 1.0 - np.sqrt(q ** 2 + p[:, 2] ** 2) / 0.2


def sphere_fn(p):
    p = np.asarray(p, np.float64)
    return 0.5 + (0.35 - np.linalg.norm(p - np.array([0.05, -0.03, 0.02]), axis=1))


def rounded_box_fn(p):
    p = np.asarray(p, np.float64)
    q = np.abs(p) - np.array([0.3, 0.2, 0.12])
    dist = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0) - 0.03
    return 0.5 - dist


def bench_mesh_contains(rows, args):
    import open3d as o3d

    mesh = trimesh.creation.torus(0.3, 0.1, major_sections=100, minor_sections=50)  # 10,000 faces, watertight
    v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.5, 0.5, (args.contains_points, 3))

    def open3d_direct():
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
        return scene.compute_occupancy(o3d.core.Tensor(pts.astype(np.float32)), nsamples=3).numpy() > 0.5

    t_ours, inside = best_time(lambda: mesh_contains(v, f, pts), args.repeats)
    t_o3d, inside_o3d = best_time(open3d_direct, args.repeats)
    label = f"mesh_contains {len(pts) // 1000}k pts vs {len(f)}-face mesh"
    rows.append((label, "ours (auto -> raycast, 3 rays)", t_ours, ""))
    rows.append((label, "open3d RaycastingScene direct", t_o3d, f"ours / open3d = {t_ours / t_o3d:.2f}x"))
    try:
        import rtree  # noqa: F401  (trimesh.contains is unusably slow without it)
        t_tm, inside_tm = best_time(lambda: mesh.contains(pts), 1)
        rows.append((label, "trimesh.contains (rtree)", t_tm,
                     f"trimesh / ours = {t_tm / t_ours:.0f}x; disagree on {int((inside_tm != inside).sum())} pts"))
    except ImportError:
        rows.append((label, "trimesh.contains", Seconds(float("nan"), float("nan")), "skipped: rtree not installed"))
    n_w = min(2000, len(pts))
    t_w, inside_w = best_time(lambda: mesh_contains(v, f, pts[:n_w], method="winding"), 1)
    rows.append((f"mesh_contains {n_w} pts vs {len(f)}-face mesh", "ours, winding number, exact (non-watertight path)", t_w,
                 f"agrees with raycast on {float((inside_w == inside[:n_w]).mean()) * 100:.2f}% of points"))
    t_f, inside_f = best_time(lambda: mesh_contains(v, f, pts, method="winding"), 1)
    rows.append((label, "ours, winding number, fast (clustered) path", t_f,
                 f"agrees with raycast on {float((inside_f == inside).mean()) * 100:.2f}% of points"))
    assert (inside == inside_o3d).mean() > 0.999


def bench_mise(rows, args):
    r0, steps = args.mise_res, 2
    final = r0 * 2 ** steps + 1
    for name, fn in (("sphere", sphere_fn), ("torus", torus_fn), ("rounded box", rounded_box_fn)):
        t_mise, (v, f, n_mise, values) = best_time(
            lambda: mise_extract(fn, r0, steps, threshold=0.5, return_values=True), 1)
        t_dense, (dv, df, n_dense) = best_time(lambda: dense_extract(fn, final, threshold=0.5), 1)
        dense_values = fn(grid_points(final).reshape(-1, 3)).reshape((final,) * 3)
        a, b = values > 0.5, dense_values > 0.5
        grid_iou = (a & b).sum() / (a | b).sum()
        pts = np.random.default_rng(1).uniform(-0.5, 0.5, (100000, 3))
        ia, ib = mesh_contains(v, f, pts), mesh_contains(dv, df, pts)
        mesh_iou = (ia & ib).sum() / (ia | ib).sum()
        label = f"MISE {r0}->{final} (2 steps), {name}"
        rows.append((label, f"MISE: {n_mise:,} evaluations", t_mise,
                     f"{n_dense / n_mise:.1f}x fewer than dense; IoU vs dense: grid {grid_iou:.4f}, mesh {mesh_iou:.4f}"))
        rows.append((label, f"dense {final}^3: {n_dense:,} evaluations", t_dense, ""))


def bench_evaluate(rows, args):
    """One object at the full protocol: 100k samples each way, IoU on 100k points (ONet layout)."""
    from modules.data.onet import write_pointcloud_npz, write_points_npz
    from modules.evaluation import evaluate_object
    from modules.geometry.io import save_mesh

    n = args.eval_points
    v, f, _ = mise_extract(torus_fn, args.mise_res, 2, threshold=0.5)  # the "prediction": a MISE mesh
    gt = trimesh.creation.torus(0.25, 0.1, major_sections=256, minor_sections=128)
    rng = np.random.default_rng(2)
    gt_points, face_idx = trimesh.sample.sample_surface(gt, n, seed=3)
    uniform = rng.uniform(-0.55, 0.55, (n, 3))
    occ = torus_fn(uniform) > 0.5
    with tempfile.TemporaryDirectory() as tmp:
        gdir, mdir = os.path.join(tmp, "gt", "c", "o"), os.path.join(tmp, "generation", "c", "o")
        os.makedirs(gdir)
        write_pointcloud_npz(os.path.join(gdir, "pointcloud.npz"), gt_points, gt.face_normals[face_idx])
        write_points_npz(os.path.join(gdir, "points.npz"), uniform, occ)
        mesh_path = os.path.join(mdir, "surface_reconstruction.off")
        save_mesh(mesh_path, v, f)
        opts = {"n_samples": n, "iou_samples": n, "contains_method": "raycast", "data_type": None}
        evaluate_object(("c", "o", mesh_path, gdir, opts))  # warm up imports
        t, row = best_time(lambda: evaluate_object(("c", "o", mesh_path, gdir, opts)), args.repeats)
    assert not row["error"], row["error"]
    rows.append((f"evaluate one object ({n // 1000}k samples each way, IoU on {n // 1000}k)",
                 f"load + all metrics, {len(f):,}-face mesh", t,
                 f"iou {row['iou']:.4f}, chamfer-L1 {row['chamfer-L1']:.5f}, normals {row['normals']:.4f}, "
                 f"f-score {row['f-score']:.4f}"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    args.contains_points = 20000 if args.quick else 100000
    args.mise_res = 16 if args.quick else 64
    args.eval_points = 20000 if args.quick else 100000
    rows = []
    bench_mesh_contains(rows, args)
    bench_mise(rows, args)
    bench_evaluate(rows, args)
    print(f"{os.cpu_count()} CPU cores; best of {args.repeats} runs where repeated\n")
    print("| benchmark | method | wall s | CPU s | notes |")
    print("|---|---|---|---|---|")
    for label, method, seconds, notes in rows:
        cpu = getattr(seconds, "cpu", float("nan"))
        print(f"| {label} | {method} | {seconds:.3f} | {cpu:.3f} | {notes} |")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
