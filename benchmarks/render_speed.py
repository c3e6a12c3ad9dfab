"""Rasterizer speed and agreement: modules.geometry.rasterizer vs Open3D's Embree ray caster.

    .venv/bin/python benchmarks/render_speed.py [--threads 1] [--repeats 5] [--sizes 224 512]

For icospheres of 1k-80k faces seen from a 3/4 view, prints the best-of-N wall time of
`render_mesh` (rasterize + Lambert shade) and of `rasterize` alone, the time Open3D's
`RaycastingScene.cast_rays` needs for one ray per pixel centre, their ratio, and the fraction of
pixels on which both pick the same face (coverage and visibility agreement).
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import time

import numpy as np
import torch
import trimesh

from modules.geometry.rasterizer import look_at_camera, rasterize, render_mesh
from modules.utils import cli_main


def best_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def open3d_face_ids(vertices, faces, cam, threads):
    import open3d as o3d
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    H, W = cam.height, cam.width
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    pix = np.stack([jj, ii, np.ones_like(jj)], -1).reshape(-1, 3)
    K, R, t = (x.double().numpy() for x in (cam.K, cam.R, cam.t))
    dirs = (pix @ np.linalg.inv(K).T) @ R                 # camera rays (z = 1) in world space
    origin = np.broadcast_to(-R.T @ t, dirs.shape)
    rays = o3d.core.Tensor(np.concatenate([origin, dirs], 1).astype(np.float32))

    def cast():
        return scene.cast_rays(rays, nthreads=threads)
    ids = cast()["primitive_ids"].numpy().astype(np.int64)
    ids[ids == np.iinfo(np.uint32).max] = -1
    return ids.reshape(H, W), cast


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch and Open3D threads")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    p.add_argument("--levels", type=int, nargs="+", default=[3, 4, 5, 6], help="icosphere subdivisions")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} torch={torch.__version__} best of {args.repeats}")
    print(f"{'faces':>7} {'size':>5} {'render_mesh s':>14} {'rasterize s':>12} {'open3d s':>9} "
          f"{'ratio':>6} {'same face':>10}")
    for level in args.levels:
        mesh = trimesh.creation.icosphere(subdivisions=level)
        v = torch.tensor(mesh.vertices, dtype=torch.float32)
        f = torch.tensor(mesh.faces)
        for size in args.sizes:
            cam = look_at_camera(eye=(1.0, 1.5, 3.0), fov_deg=45, width=size, height=size)
            t_render = best_time(lambda: render_mesh(v, f, cam), args.repeats)
            t_rast = best_time(lambda: rasterize(v, f, cam), args.repeats)
            ours = rasterize(v, f, cam).face_index.numpy()
            ref, cast = open3d_face_ids(mesh.vertices, mesh.faces, cam, args.threads)
            t_o3d = best_time(cast, args.repeats)
            same = (ours == ref).mean()
            print(f"{len(mesh.faces):>7} {size:>5} {t_render:>14.4f} {t_rast:>12.4f} {t_o3d:>9.4f} "
                  f"{t_rast / t_o3d:>6.1f} {100 * same:>9.2f}%")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
