"""The embedded synthetic dataset: generation speed, disk per shape, label quality, variety, and the
picture grid. Prints Markdown tables.

    .venv/bin/python benchmarks/data_generation.py                       # quickstart subset + quality + variety + grid
    .venv/bin/python benchmarks/data_generation.py --full                # also the full default (16 + human, 100 each, 24 views)
    .venv/bin/python benchmarks/data_generation.py --skip-speed --quality-shapes 3

Speed: `preprocess.py synth` as a library call (-j JOBS) on a fresh folder: 3 categories x 40 shapes,
all formats, 1 view (the quickstart subset), and with --full the full default (else a sample of it:
--full-sample shapes per category, CPU time extrapolated to 100). Wall time, shapes/s, CPU seconds
per shape (this process + workers; on a shared, overloaded CPU the wall time overstates what an idle
machine needs, CPU s / jobs does not) and disk per shape (du of the folder / shapes).
Quality, per category on --quality-shapes shapes (read back from the written files):
- occupancy: points.npz labels vs `mesh_contains` on the exported model.off (agreement, %);
- surface: distance of pointcloud.npz points to model.off (max and 99.9th percentile);
- labels: every .seg label inside 1..k, and which part ids occur in the written shapes.
Variety: structural variants among 100 shapes per category (the grammar draws, seed 0).
Grid: 8 shapes per category coloured by part -> --grid (default docs/images/synth_grid.png).
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time

import numpy as np

from modules.data import categories, onet, shapenet_part
from modules.data.shapes import FRAMES_PER_SEQUENCE, MAKERS, human_sequence_params
from modules.data.synth import SynthConfig, generate, mesh_of, shape_rng, union_sdf
from modules.utils import cli_main

QUICK = ["chair", "airplane", "table"]


def du_bytes(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


def cpu_seconds():
    """User + system CPU of this process and its reaped children (the worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def speed_row(name, cats, per_category, views, jobs, root, scale_to=None):
    """Time one generator run; with scale_to, also extrapolate CPU time to `scale_to` shapes per category."""
    out = os.path.join(root, name)
    shutil.rmtree(out, ignore_errors=True)
    cfg = SynthConfig(out=out, views=views)
    t0, c0 = time.time(), cpu_seconds()
    summary = generate(cfg, cats, per_category, jobs=jobs, progress=False)
    wall, cpu = time.time() - t0, cpu_seconds() - c0
    n = summary["written"]
    size = du_bytes(out)
    est = ""
    if scale_to:
        est = f" -> {len(cats)} x {scale_to}: {cpu / n * len(cats) * scale_to / jobs / 60:.1f} min on {jobs} idle cores"
    print(f"| {name} | {len(cats)} x {per_category} | {views} | {jobs} | {wall:.1f} | {n / wall:.2f} | "
          f"{cpu / n:.2f} | {cpu / n * n / jobs:.0f}{est} | {size / max(n, 1) / 2**20:.2f} | {len(summary['failed'])} |",
          flush=True)
    return out


def quality(root, shapes_per_category):
    import open3d as o3d
    from modules.geometry.mesh_contains import mesh_contains
    print("\n| category | shapes | occupancy agreement % (min shape) | surface dist max | surface dist p99.9 | "
          "labels valid | part ids seen / all |")
    print("|---|---|---|---|---|---|---|")
    worst = 100.0
    for name in categories.CATEGORIES:
        synset = categories.SYNSETS[name]
        ids = [i for s in onet.SPLITS for syn, i in _lst(root, synset, s)][:shapes_per_category]
        if not ids:
            continue
        agree, dmax, d999, valid = [], 0.0, [], True
        for sid in ids:
            d = os.path.join(root, "onet", synset, sid)
            mesh = onet.read_mesh(os.path.join(d, "model.off"))   # canonical axes, as the samples
            v, f = np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces)
            pts, occ = onet.read_points_npz(os.path.join(d, "points.npz"))
            agree.append(100.0 * np.mean(mesh_contains(v, f, pts) == occ))
            surf, _ = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"))
            scene = o3d.t.geometry.RaycastingScene()
            scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f.astype(np.uint32)))
            dist = scene.compute_distance(o3d.core.Tensor(surf.astype(np.float32))).numpy()
            dmax = max(dmax, float(dist.max()))
            d999.append(float(np.percentile(dist, 99.9)))
        seen = set()
        sp = os.path.join(root, "shapenet_part")
        k = len(categories.part_names(name))
        for s in shapenet_part.SPLITS:
            for syn, sid in shapenet_part.read_split(sp, s):
                if syn != synset:
                    continue
                lab = shapenet_part.read_seg(os.path.join(sp, syn, "points_label", sid + ".seg"))
                valid &= bool(lab.min() >= 1 and lab.max() <= k)
                seen |= set((lab + categories.part_ids(name)[0] - 1).tolist())
        worst = min(worst, min(agree))
        print(f"| {name} | {len(ids)} | {np.mean(agree):.3f} ({min(agree):.3f}) | {dmax:.2e} | {max(d999):.2e} | "
              f"{'yes' if valid else 'NO'} | {len(seen)} / {k} |", flush=True)
    print(f"\nworst shape occupancy agreement: {worst:.3f} %")


def _lst(root, synset, split):
    path = os.path.join(root, "onet", synset, f"{split}.lst")
    return [(synset, i) for i in onet.read_lst(path)] if os.path.exists(path) else []


def variety(seed=0, n=100):
    """Variants and part ids among the first n shapes per category (the grammar draws of the generator)."""
    from modules.data.shapes import make_human
    print(f"\n| category | variants in {n} shapes | part ids present / all | most common variants |")
    print("|---|---|---|---|")
    for name in categories.ALL_CATEGORIES:
        counts, parts = {}, set()
        for i in range(n):
            if name == "human":
                params = human_sequence_params(shape_rng(seed, name, i // FRAMES_PER_SEQUENCE))
                prims, v = make_human(params, i % FRAMES_PER_SEQUENCE)
            else:
                prims, v = MAKERS[name](shape_rng(seed, name, i))
            counts[v] = counts.get(v, 0) + 1
            parts |= {p.part for p in prims}
        top = ", ".join(f"{k} {c}" for k, c in sorted(counts.items(), key=lambda kv: -kv[1])[:4])
        print(f"| {name} | {len(counts)} | {len(parts)} / {len(categories.part_ids(name))} | {top} |")


def picture_grid(path, per_row=8, size=112, seed=0):
    """8 shapes per category, coloured by part, one row per category (seed-0 shapes 0..7)."""
    import torch
    from PIL import Image, ImageDraw
    from modules.data.synth import build_shape
    from modules.geometry import rasterizer
    from modules.vis.colors import part_colors
    torch.set_num_threads(1)
    label_w = 90
    names = categories.ALL_CATEGORIES
    canvas = Image.new("RGB", (label_w + per_row * size, len(names) * size), "white")
    draw = ImageDraw.Draw(canvas)
    eye = 1.9 * np.array([np.cos(np.radians(25)) * np.sin(np.radians(35)), np.sin(np.radians(25)),
                          np.cos(np.radians(25)) * np.cos(np.radians(35))])
    for r, name in enumerate(names):
        draw.text((6, r * size + size // 2 - 6), name, fill=(0, 0, 0))
        for c in range(per_row):
            index = c * (FRAMES_PER_SEQUENCE // 4 + 1) if name == "human" else c   # humans: two sequences
            shape = build_shape(name, index, seed, resolution=64)
            v, f = mesh_of(shape.prims, 64)
            colors = part_colors(union_sdf(shape.prims, v, far=0.02)[1])
            cam = rasterizer.look_at_camera(eye, (0, 0, 0), fov_deg=38, width=size, height=size)
            with torch.no_grad():
                img = rasterizer.render_mesh(torch.as_tensor(v), torch.as_tensor(f), cam,
                                             vertex_colors=torch.as_tensor(colors, dtype=torch.float32))
            rgb = rasterizer.to_uint8_image(img["rgba"], background=(1, 1, 1))
            canvas.paste(Image.fromarray(rgb), (label_w + c * size, r * size))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp.png"
    canvas.save(tmp, optimize=True)
    os.replace(tmp, path)
    print(f"\npicture grid: {path} ({os.path.getsize(path) / 1024:.0f} KB, {canvas.size[0]}x{canvas.size[1]})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", "-j", type=int, default=2)
    p.add_argument("--full", action="store_true", help="also time the full default (16 + human, 100 each, 24 views)")
    p.add_argument("--full-sample", type=int, default=3,
                   help="without --full: time the full settings (24 views, all formats) on this many shapes per "
                        "category and extrapolate the CPU time to 100 (0 = skip)")
    p.add_argument("--skip-speed", action="store_true", help="no speed rows; evaluate --data instead")
    p.add_argument("--data", default=None, help="dataset root to evaluate (default: the quickstart run's)")
    p.add_argument("--quality-shapes", type=int, default=5, help="shapes per category for the quality table")
    p.add_argument("--workdir", default=None, help="where the timed runs write (default: a temp folder, removed)")
    p.add_argument("--grid", default="docs/images/synth_grid.png")
    args = p.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="synth_bench_")
    data = args.data
    try:
        if not args.skip_speed:
            print(f"cpu cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
            print("| run | categories x shapes | views | -j | wall s | shapes/s | CPU s/shape | "
                  "CPU s / jobs (= wall on idle cores) | MiB/shape | failed |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            quick = speed_row("quickstart", QUICK, 40, 1, args.jobs, work)
            if args.full:
                full = speed_row("full", categories.ALL_CATEGORIES, 100, 24, args.jobs, work)
                data = data or full
            elif args.full_sample:
                speed_row("full-settings sample", categories.ALL_CATEGORIES, args.full_sample, 24, args.jobs, work,
                          scale_to=100)
            data = data or quick
        if data is None:
            qdir = os.path.join(work, "quality")
            generate(SynthConfig(out=qdir, views=0, formats=("onet", "shapenet_part")), categories.CATEGORIES,
                     args.quality_shapes, jobs=args.jobs, progress=False)
            data = qdir
        elif args.skip_speed is False and data == quick:
            # quality over every category: add the other 13 categories (5 shapes each, no renders)
            generate(SynthConfig(out=data, views=0, formats=("onet", "shapenet_part")), categories.CATEGORIES,
                     args.quality_shapes, jobs=args.jobs, progress=False)
        quality(data, args.quality_shapes)
        variety()
        if args.grid:
            picture_grid(args.grid)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
