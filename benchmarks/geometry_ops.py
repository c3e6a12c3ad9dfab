"""Speed of the geometry ops against their baselines, measured side by side in one run; prints a
Markdown table (median of --repeats runs per row; ratios are the meaningful figures on a shared CPU).

    .venv/bin/python benchmarks/geometry_ops.py [--points 30000] [--repeats 5] [--no-brute]

Rows:
- chamfer_distance (x, y: 30k points each), forward + backward, vs a chunked brute-force torch.cdist
  Chamfer (forward + backward chunk by chunk) and vs scipy cKDTree building both trees and running
  the two nearest-neighbour queries alone (no gradient).
- sample_farthest_points 30k -> 512 and a batch 16 x 3000 -> 500 vs open3d's
  PointCloud.farthest_point_down_sample (one call per cloud), plus index equality with a naive loop
  and point-set equality with open3d.
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import statistics
import time

import numpy as np
import open3d as o3d
import torch
from scipy.spatial import cKDTree

from modules.geometry import chamfer_distance, sample_farthest_points
from modules.geometry.sample_farthest_points import farthest_point_indices_naive
from modules.utils import cli_main


def timed(fn, repeats):
    """Median wall time of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def chamfer_ours(x, y):
    x = x.detach().requires_grad_(True)  # fresh leaves sharing storage (no copy in the timing)
    y = y.detach().requires_grad_(True)
    loss, _ = chamfer_distance(x, y)
    loss.backward()
    return loss.item()


def chamfer_brute(x, y, chunk=2048):
    """Chunked brute force: exact same loss, each chunk's cdist built, reduced and backpropagated."""
    x = x.detach().requires_grad_(True)
    y = y.detach().requires_grad_(True)
    total = 0.0
    for a, b in ((x, y), (y, x)):
        n = a.shape[1]
        for s in range(0, n, chunk):
            d = torch.cdist(a[:, s:s + chunk], b).pow(2).min(dim=2).values.sum() / n
            d.backward()
            total += d.item()
    return total


def chamfer_scipy(xn, yn):
    """Two trees, two nearest-neighbour queries; no gradient (the floor for a tree-based loss)."""
    dx, _ = cKDTree(yn).query(xn, k=1, workers=-1)
    dy, _ = cKDTree(xn).query(yn, k=1, workers=-1)
    return float((dx ** 2).mean() + (dy ** 2).mean())




def fps_open3d(batch, k):
    """open3d's FPS, one cloud at a time (it has no batch API); returns the sampled coordinates."""
    out = []
    for cloud in batch:
        pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud))
        out.append(np.asarray(pc.farthest_point_down_sample(k).points))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=30000, help="points per cloud for the chamfer rows")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (median reported)")
    parser.add_argument("--no-brute", action="store_true", help="skip the slow brute-force chamfer baseline")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []

    x, y = torch.rand(1, args.points, 3), torch.rand(1, args.points, 3)
    xn, yn = x[0].double().numpy(), y[0].double().numpy()
    t_ours = timed(lambda: chamfer_ours(x, y), args.repeats)
    t_scipy = timed(lambda: chamfer_scipy(xn, yn), args.repeats)
    same = abs(chamfer_ours(x, y) - chamfer_scipy(xn, yn)) < 1e-6
    name = f"chamfer_distance {args.points} vs {args.points}"
    rows.append((name + ", fwd+bwd", "scipy cKDTree: 2 trees + 2 NN queries, no grad", t_ours, t_scipy,
                 f"same loss: {same}"))
    if not args.no_brute:
        t = time.perf_counter()  # one run: it takes minutes on 2 cores
        brute = chamfer_brute(x, y)
        t_brute = time.perf_counter() - t
        same = abs(chamfer_ours(x, y) - brute) < 1e-6
        rows.append((name + ", fwd+bwd", "chunked brute-force torch.cdist, fwd+bwd", t_ours, t_brute,
                     f"same loss: {same}"))

    for n, p, k in ((1, 30000, 512), (16, 3000, 500)):
        pts = torch.rand(n, p, 3)
        t_ours = timed(lambda: sample_farthest_points(pts, K=k), args.repeats)
        batch64 = [c.double().numpy() for c in pts]
        t_o3d = timed(lambda: fps_open3d(batch64, k), args.repeats)
        _, idx = sample_farthest_points(pts, K=k)
        naive_ok = all(idx[i].tolist() == farthest_point_indices_naive(pts[i].numpy(), k) for i in range(n))
        # open3d computes in float64: compare our float64 run with it as point sets
        _, idx64 = sample_farthest_points(pts.double(), K=k)
        o3d_pts = fps_open3d(batch64, k)
        o3d_ok = all(np.array_equal(np.sort(batch64[i][idx64[i].numpy()], 0), np.sort(o3d_pts[i], 0))
                     for i in range(n))
        label = f"sample_farthest_points {n} x {p} -> {k}"
        rows.append((label, "open3d farthest_point_down_sample (per cloud)", t_ours, t_o3d,
                     f"indices == naive loop: {naive_ok}; same points as open3d: {o3d_ok}"))

    print(f"torch {torch.__version__}, open3d {o3d.__version__}, threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}")
    print()
    print("| op | baseline | ours (s) | baseline (s) | baseline / ours | check |")
    print("|---|---|---|---|---|---|")
    for op, base, t1, t2, check in rows:
        print(f"| {op} | {base} | {t1:.4f} | {t2:.4f} | {t2 / t1:.2f}x | {check} |")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
