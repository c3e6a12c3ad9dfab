"""How varied is the procedural data? Per category and grammar variety (basic / rich):

- variants: distinct structural variants (the grammar's variant names) drawn in N shapes;
- CD-L1: mean pairwise Chamfer-L1 between the N shapes (ONet definition: 0.5 (accuracy + completeness) of
  unsquared nearest distances; shapes centred with longest bbox edge 1; `modules.geometry.chamfer_distance`
  on --points surface samples each);
- aspect: bbox aspect spread, the mean over x/y/z of the standard deviation (over the N shapes) of
  extent / longest extent;
- with --check K: the first K shapes of each category go through the real-mesh labelling of
  `preprocess.py mesh` (modules.data.mesh_dataset.label_mesh): the path it takes, the inside fraction of
  the points.npz box and the IoU of its labels with the exact (SDF) occupancy.

    python benchmarks/shape_variety.py                       # all 24 categories, N=12, both varieties
    python benchmarks/shape_variety.py --n 20 --categories chair,sofa --check 2
    python benchmarks/shape_variety.py --picture docs/images/shape_variety.png --no-table
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from modules.data import categories  # noqa: E402
from modules.data.mesh_dataset import label_mesh  # noqa: E402
from modules.data.shapes import RICH, VARIETIES  # noqa: E402
from modules.data.synth import BOX_PADDING, LABEL_FAR, build_shape, occupancy, sample_surface  # noqa: E402
from modules.data.primitives import union_sdf  # noqa: E402
from modules.geometry import chamfer_distance  # noqa: E402
from modules.utils import ShapeLabError, cli_main  # noqa: E402


def pairwise_chamfer_l1(clouds):
    """Mean over all pairs of 0.5 (acc + comp), clouds (N, P, 3) -> float."""
    n = len(clouds)
    i, j = np.triu_indices(n, 1)
    x, y = torch.as_tensor(clouds[i]), torch.as_tensor(clouds[j])
    (dx, dy), _ = chamfer_distance(x, y, batch_reduction=None, point_reduction=None)
    return float((0.5 * (dx.sqrt().mean(1) + dy.sqrt().mean(1))).mean())


def aspect_spread(extents):
    """extents (N, 3) -> mean over axes of the std over shapes of extent / longest extent."""
    e = np.asarray(extents, float)
    return float((e / e.max(1, keepdims=True)).std(0).mean())


def label_check(shape, rng, n=20_000):
    """(path, inside fraction, IoU with the exact occupancy) of the project's real-mesh labelling."""
    labels = label_mesh(shape.vertices, shape.faces, rng)
    half = 0.5 + BOX_PADDING / 2
    pts = rng.uniform(-half, half, (n, 3))
    got, exact = labels.inside(pts), occupancy(shape.prims, pts)
    union = np.count_nonzero(got | exact)
    return labels.path, float(got.mean()), (np.count_nonzero(got & exact) / union if union else 1.0)


def category_row(name, variety, n, points, resolution, check, seed):
    rng = np.random.default_rng(seed)
    variants, clouds, extents, checks = set(), [], [], []
    for i in range(n):
        s = build_shape(name, i, seed, resolution, variety)
        variants.add(s.variant)
        clouds.append(sample_surface(s.vertices, s.faces, points, rng)[0].astype(np.float32))
        extents.append(s.vertices.max(0) - s.vertices.min(0))
        if i < check:
            checks.append(label_check(s, rng))
    return dict(category=name, variety=variety, variants=len(variants), cd=pairwise_chamfer_l1(np.stack(clouds)),
                aspect=aspect_spread(extents), checks=checks)


def print_table(rows):
    print(f"{'category':<12} {'variety':<6} {'variants':>8} {'CD-L1':>7} {'aspect':>7}  label check (path inside IoU)")
    for r in rows:
        chk = "; ".join(f"{p} {f:.3f} {iou:.3f}" for p, f, iou in r["checks"])
        print(f"{r['category']:<12} {r['variety']:<6} {r['variants']:8d} {r['cd']:7.4f} {r['aspect']:7.3f}  {chk}")
    by = {v: [r for r in rows if r["variety"] == v] for v in VARIETIES}
    if all(by.values()):
        print("\nmean over categories: " + ", ".join(
            f"{v}: {np.mean([r['variants'] for r in rs]):.2f} variants, CD-L1 {np.mean([r['cd'] for r in rs]):.4f}, "
            f"aspect {np.mean([r['aspect'] for r in rs]):.3f}" for v, rs in by.items()))
        b, r = by["basic"], by["rich"]
        print(f"rich / basic: variants x{np.mean([x['variants'] for x in r]) / np.mean([x['variants'] for x in b]):.2f}, "
              f"CD-L1 x{np.mean([x['cd'] for x in r]) / np.mean([x['cd'] for x in b]):.2f}, "
              f"aspect x{np.mean([x['aspect'] for x in r]) / np.mean([x['aspect'] for x in b]):.2f}")


def save_picture(path, seed=0, per_row=6, size=160):
    """A grid: the 8 ONet-only categories (rich) and the ShapeNet-Part categories with rich grammars,
    part-coloured, titled 'category: variant'."""
    # deferred: only the picture needs the renderer
    from modules.vis.colors import part_colors
    from modules.vis.images import save_image_grid
    from modules.vis.render import render_image, turntable_cameras
    names = categories.EXTRA_CATEGORIES + [c for c in categories.CATEGORIES if c in RICH]
    images, titles = [], []
    for name in names:
        for i in range(per_row):
            s = build_shape(name, i, seed, 96, "rich")
            colors = part_colors(union_sdf(s.prims, s.vertices, far=LABEL_FAR)[1])
            cam = turntable_cameras(s.vertices, n_views=1, width=size, height=size, start_azimuth_deg=35)[0]
            images.append(render_image(s.vertices, s.faces, cam, vertex_colors=colors, supersample=2))
            titles.append(f"{name}: {s.variant}")
    save_image_grid(path, images, titles=titles, nrow=per_row, title_height=14)
    print(f"wrote {path} ({len(images)} shapes)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--categories", default="all+onet",
                   help="names or a set (modules.data.categories.NAMED_SETS; default all+onet without the human)")
    p.add_argument("--varieties", default="basic,rich")
    p.add_argument("--n", type=int, default=12, help="shapes per category and variety (default 12)")
    p.add_argument("--points", type=int, default=2048, help="surface samples per shape for Chamfer (default 2048)")
    p.add_argument("--resolution", type=int, default=64, help="marching-cubes resolution (default 64)")
    p.add_argument("--check", type=int, default=1, help="shapes per category through label_mesh (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--picture", default=None, help="also write the picture grid here (PNG)")
    p.add_argument("--no-table", action="store_true", help="only the picture")
    args = p.parse_args(argv)
    if args.n < 2:
        raise ShapeLabError(f"--n must be >= 2 (pairwise Chamfer), got {args.n}")
    names = [c for c in categories.category_list(args.categories) if c != categories.HUMAN[0]]
    varieties = [v.strip() for v in args.varieties.split(",") if v.strip()]
    bad = [v for v in varieties if v not in VARIETIES]
    if bad:
        raise ShapeLabError(f"--varieties: unknown {', '.join(bad)}; valid: {', '.join(VARIETIES)}")
    torch.set_num_threads(1)
    if not args.no_table:
        t0 = time.time()
        rows = [category_row(c, v, args.n, args.points, args.resolution, args.check, args.seed)
                for c in names for v in varieties]
        print(f"N={args.n} shapes per category and variety, {args.points} points, resolution {args.resolution}, "
              f"seed {args.seed} ({time.time() - t0:.0f} s)\n")
        print_table(rows)
    if args.picture:
        save_picture(args.picture, args.seed)


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
