"""Soft rasterizer speed and memory: culled (modules.geometry.soft_rasterizer) vs dense vs the hard z-buffer.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/soft_rasterizer.py [--batch 64] [--image-size 64] [--aa 2]
        [--dense-batch 1] [--repeats 2] [--threads 2] [--no-dense]

Scene (genren's renderer): a batch of 1002-vertex / 2000-face icospheres (frequency-10 subdivision of the
icosahedron, as `meshzoo.icosa_sphere(10)` that genren uses as its template), radius 0.5 with 3% radial noise,
random vertex colours, random views at distance 1.2 (genren's eye), SoftRas settings σ=1e-5, γ=1e-4,
fill_back, 128² rasterization average-pooled to 64². Each method runs in its own subprocess, so its peak
memory is that process's peak RSS (resource.getrusage) minus its RSS just before the timed calls.

  * soft: soft_render forward + backward (gradients for vertices and colours), whole batch;
  * dense: the same SoftRas math on every pixel x face pair (no culling; face chunks under
    torch.utils.checkpoint so memory stays bounded), forward + backward on --dense-batch images, time scaled
    linearly to --batch (stated in the table);
  * hard: modules.geometry.rasterizer.rasterize (z-buffer) forward, one call per image at the raster size;
    also this module's hard=True mode forward.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.checkpoint import checkpoint  # noqa: E402

from modules.geometry.ico_sphere import icosa_sphere  # noqa: E402  (genren's template, meshzoo.icosa_sphere)
from modules.geometry.rasterizer import rasterize  # noqa: E402
from modules.geometry.soft_rasterizer import (SoftRasterizationSettings, _candidate_pairs, _face_table,  # noqa: E402
                                              _gather_faces, _keep, _pair_terms, camera_from_view_transform,
                                              look_at_view_transform, project_vertices, soft_render)
from modules.utils import cli_main  # noqa: E402


def scene(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    v, f = icosa_sphere(10)
    verts = v[None] * 0.5 * (1 + 0.03 * torch.randn(batch, v.shape[0], 1, generator=g))
    colors = torch.rand(batch, v.shape[0], 3, generator=g)
    R, T = look_at_view_transform(1.2, torch.rand(batch, generator=g) * 120 - 60,
                                  torch.rand(batch, generator=g) * 360)
    return verts, f, colors, R, T


def dense_render(verts, faces, R, T, colors, st, face_chunk=64):
    """SoftRas on every pixel x face pair (same math as soft_render, no culling): (B,4,H,W)."""
    S = st.raster_size
    B, Fn = verts.shape[0], faces.shape[0]
    fb = faces[None].expand(B, -1, -1)
    fv = _gather_faces(project_vertices(verts, R, T, st.viewing_angle), fb)          # (B,F,3,3)
    fc = _gather_faces(colors, fb)                                                    # (B,F,3,C)
    j = torch.arange(S, dtype=verts.dtype)
    px = (1 - (2 * j + 1) / S)[None, :].expand(S, S).reshape(1, -1)
    py = (1 - (2 * j + 1) / S)[:, None].expand(S, S).reshape(1, -1)
    bg = torch.as_tensor(st.background, dtype=verts.dtype)
    out = []
    for b in range(B):
        tab = _face_table(fv[b])[..., None]                                           # (7,3,F,1)
        ok_face = (fv[b, :, :, 2] >= st.near).all(1)[:, None]
        ctab = fc[b].permute(1, 2, 0)[..., None]                                      # (3,C,F,1)
        with torch.no_grad():
            zmax = torch.full((S * S,), st.eps, dtype=verts.dtype)
            for a in range(0, Fn, face_chunk):
                _, _, zp, s, _, inc = _pair_terms(tab[:, :, a:a + face_chunk], px, py, st)
                keep = _keep(s, inc, zp, st) & ok_face[a:a + face_chunk]
                zt = (st.far - zp) / (st.far - st.near)
                zmax = torch.maximum(zmax, torch.where(keep, zt, torch.full_like(zt, -1e9)).amax(0))

        def chunk(t, c, ok):
            _, w_clip, zp, s, _, inc = _pair_terms(t, px, py, st)
            keep = _keep(s, inc, zp, st) & ok
            zero = torch.zeros_like(zp)
            log_t = torch.where(keep, F.logsigmoid(-s), zero).sum(0)
            wgt = torch.where(keep, torch.exp(F.logsigmoid(s) + ((st.far - zp) / (st.far - st.near) - zmax) / st.gamma),
                              zero)
            col = (w_clip[:, None] * c).sum(0)                                        # (C,f,P)
            return log_t, (wgt * col).sum(1), wgt.sum(0)
        log_t, num, den = 0, 0, 0
        for a in range(0, Fn, face_chunk):
            lt, nm, dn = checkpoint(chunk, tab[:, :, a:a + face_chunk], ctab[:, :, a:a + face_chunk],
                                    ok_face[a:a + face_chunk], use_reentrant=False)
            log_t, num, den = log_t + lt, num + nm, den + dn
        bgw = torch.exp((st.eps - zmax) / st.gamma)
        rgb = (num + bgw * bg[:, None]) / (den + bgw)
        out.append(torch.cat([rgb, 1 - torch.exp(log_t)[None]], 0).view(-1, S, S))
    img = torch.stack(out)
    k = st.anti_aliasing
    return F.avg_pool2d(img, k, k) if k > 1 else img


def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def child(args):
    torch.set_num_threads(args.threads)
    st = SoftRasterizationSettings(image_size=args.image_size, anti_aliasing=args.aa)
    batch = args.dense_batch if args.method == "dense" else args.batch
    verts, faces, colors, R, T = scene(batch)
    info = {}
    if args.method in ("soft", "dense"):
        fn = soft_render if args.method == "soft" else dense_render

        def run():
            v, c = verts.clone().requires_grad_(), colors.clone().requires_grad_()
            img = fn(v, faces, R, T, colors=c, settings=st) if args.method == "soft" else fn(v, faces, R, T, c, st)
            (img * wts).sum().backward()
            return img.detach()
        wts = torch.rand(batch, 4, args.image_size, args.image_size, generator=torch.Generator().manual_seed(1))
        if args.method == "soft":
            fv = _gather_faces(project_vertices(verts, R, T), faces[None].expand(batch, -1, -1)).reshape(-1, 3, 3)
            info["pairs"] = int(_candidate_pairs(fv, st.raster_size, st)[0].numel())
        if args.method == "dense":        # the dense path computes the same images
            ref = soft_render(verts, faces, R, T, colors=colors, settings=st)
            info["max_abs_diff_vs_soft"] = float((dense_render(verts, faces, R, T, colors, st) - ref).abs().max())
    elif args.method == "hard_zbuffer":
        cams = camera_from_view_transform(R, T, st.raster_size, st.viewing_angle, st.near, st.far)

        def run():
            return [rasterize(verts[b], faces, cams[b]).face_index for b in range(batch)]
    else:
        hs = SoftRasterizationSettings(image_size=args.image_size, anti_aliasing=args.aa, hard=True)

        def run():
            with torch.no_grad():
                return soft_render(verts, faces, R, T, colors=colors, settings=hs)
    repeats = 1 if args.method == "dense" else args.repeats
    run()                                                       # warm-up
    base = rss_mb()
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info.update(method=args.method, batch=batch, time=min(times), cpu=min(cpu), peak_mb=peak,
                extra_mb=max(0.0, peak - base))
    print(json.dumps(info))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--aa", type=int, default=2, help="supersampling factor (rasterize at aa*image-size)")
    ap.add_argument("--dense-batch", type=int, default=1, help="images for the dense timing (scaled to --batch)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)),
                   help="torch threads (default: OMP_NUM_THREADS, else 2)")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense reference (minutes per image)")
    ap.add_argument("--method", choices=["soft", "dense", "hard_zbuffer", "hard_soft"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.method:
        return child(args)
    v, f = icosa_sphere(10)
    print(f"mesh: {v.shape[0]} vertices, {f.shape[0]} faces; batch {args.batch}, {args.image_size * args.aa}² "
          f"-> {args.image_size}², fill_back, sigma 1e-5, {args.threads} threads")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    res = {}
    methods = ("soft", "hard_zbuffer", "hard_soft") if args.no_dense else ("soft", "dense", "hard_zbuffer", "hard_soft")
    for m in methods:
        cmd = [sys.executable, os.path.abspath(__file__), "--method", m] + [
            a for k, val in vars(args).items() if k not in ("method", "no_dense")
            for a in (f"--{k.replace('_', '-')}", str(val))]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode:
            sys.exit(f"{m} failed:\n{out.stderr}")
        res[m] = json.loads(out.stdout.strip().splitlines()[-1])
    scale = args.batch / args.dense_batch
    if "dense" in res:
        for k in ("time", "cpu"):
            res["dense"][k] *= scale
    rows = [("soft forward+backward (culled)", "soft"),
            (f"dense forward+backward (x{scale:g} from batch {args.dense_batch})", "dense"),
            ("hard z-buffer forward (rasterizer.py)", "hard_zbuffer"),
            ("hard mode forward (this module)", "hard_soft")]
    rows = [r for r in rows if r[1] in res]
    print(f"{'method':<52}{'wall s':>9}{'CPU s':>9}{'peak extra MB':>15}")
    for name, m in rows:
        print(f"{name:<52}{res[m]['time']:>9.2f}{res[m]['cpu']:>9.2f}{res[m]['extra_mb']:>15.0f}")
    dense_pairs = args.batch * f.shape[0] * (args.image_size * args.aa) ** 2
    print(f"kept (face, pixel) pairs: {res['soft']['pairs']} vs dense {dense_pairs}")
    if "dense" in res:
        print(f"dense vs soft max |difference| (batch {res['dense']['batch']}): "
              f"{res['dense']['max_abs_diff_vs_soft']:.2e}")
    for k, what in (("time", "wall"), ("cpu", "CPU")):
        dense = f"speed-up over dense {res['dense'][k] / res['soft'][k]:.1f}x (goal >= 20x); " if "dense" in res else ""
        print(f"{what} time: {dense}soft fwd+bwd / hard z-buffer fwd {res['soft'][k] / res['hard_zbuffer'][k]:.2f}x "
              f"(goal <= 3x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("(CPU time = process user+sys over all threads; less sensitive than wall time to other load)")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
