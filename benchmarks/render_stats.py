"""Image statistics of a folder of renders (ours by default, any real folder by path) and a picture grid.

    .venv/bin/python benchmarks/render_stats.py                         # generate ours, then measure
    .venv/bin/python benchmarks/render_stats.py --root /data/ShapeNetRendering/03001627 --grid real.png
    .venv/bin/python benchmarks/render_stats.py --root data/synth/onet --pattern "*.jpg"

Per image (then mean and standard deviation over the images):
  fg        foreground fraction: alpha > 0.5 for RGBA images; for images without alpha (JPEGs on white),
            pixels whose largest channel differs from white by more than 0.06;
  bbox      bounding-box fill: area of the foreground's bounding box / frame area;
  fg_mean   mean foreground colour (R, G, B in [0,1]) and fg_std its per-image standard deviation (all channels);
  edges     edge density: fraction of pixels where the Sobel gradient of the grey image (on white)
            exceeds 0.25 (object outlines and shading edges);
  border    fraction of images whose foreground touches the frame border (clipped objects).
The same numbers computed on a real folder (R2N2 ShapeNetRendering, ONet img_choy2016) say whether our
renders look like the real ones. A grid of the first --n images (torchvision make_grid) is written to --grid.
"""
import argparse
import fnmatch
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import modules.startup  # noqa: E402,F401,I001  (first project import: Ctrl-C while the imports load exits quietly)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.utils import make_grid, save_image  # noqa: E402

from modules.utils import cli_main  # noqa: E402

WHITE_TOL = 0.06
EDGE_THRESHOLD = 0.25


def find_images(root, pattern):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if fnmatch.fnmatch(f, pattern)]
    return sorted(out)


def load_rgba(path):
    """(H,W,4) float in [0,1]; images without alpha get alpha from 'not white'."""
    with Image.open(path) as im:
        has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        x = np.asarray(im.convert("RGBA"), np.float64) / 255.0
    if not has_alpha:
        x[..., 3] = (np.abs(1.0 - x[..., :3]).max(-1) > WHITE_TOL).astype(np.float64)
    return x


def image_stats(x):
    alpha = x[..., 3]
    fg = alpha > 0.5
    rgb_white = x[..., :3] * alpha[..., None] + (1 - alpha[..., None])
    grey = torch.tensor(rgb_white.mean(-1))[None, None]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=grey.dtype)[None, None] / 4
    gx = torch.nn.functional.conv2d(grey, kx, padding=1)
    gy = torch.nn.functional.conv2d(grey, kx.transpose(2, 3), padding=1)
    mag = (gx ** 2 + gy ** 2).sqrt()[0, 0, 1:-1, 1:-1]
    out = dict(fg=fg.mean(), edges=float((mag > EDGE_THRESHOLD).float().mean()))
    if fg.any():
        rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
        h, w = fg.shape
        out["bbox"] = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / (h * w)
        out["border"] = float(rows[0] == 0 or cols[0] == 0 or rows[-1] == h - 1 or cols[-1] == w - 1)
        c = x[..., :3][fg]
        out["fg_mean"] = c.mean(0)
        out["fg_std"] = float(c.std())
    else:
        out.update(bbox=0.0, border=0.0, fg_mean=np.full(3, np.nan), fg_std=np.nan)
    return out


def summarise(stats):
    rows = []
    for key in ("fg", "bbox", "fg_std", "edges", "border"):
        v = np.array([s[key] for s in stats], np.float64)
        rows.append((key, np.nanmean(v), np.nanstd(v)))
    m = np.array([s["fg_mean"] for s in stats])
    rows.append(("fg_mean R,G,B", np.nanmean(m, 0), np.nanstd(m, 0)))
    return rows


def generate_ours(out, categories, per_category, views, style):
    from modules.data.synth import SynthConfig, generate
    cfg = SynthConfig(out=out, views=views, formats=("r2n2", "onet", "genren"), n_surface=5000, n_uniform=5000,
                      n_genren=1000, resolution=96, render_style=style)
    summary = generate(cfg, categories, per_category, jobs=1, progress=False)
    if summary["failed"]:
        print("failed:", summary["failed"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=None, help="folder of renders (recursive); default: generate ours")
    p.add_argument("--pattern", default="*.png", help="file name pattern, e.g. '*.jpg' for img_choy2016")
    p.add_argument("--grid", default="render_grid.png", help="where to write the picture grid")
    p.add_argument("--n", type=int, default=32, help="images in the grid")
    p.add_argument("--categories", default="chair,airplane,car,table,lamp,motorbike,guitar,mug")
    p.add_argument("--per-category", type=int, default=3)
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--style", default="material", choices=("material", "parts"),
                   help="render style of our generated data")
    p.add_argument("--layout", default="r2n2", choices=("r2n2", "onet", "genren"),
                   help="which of our generated layouts to measure (when --root is not given)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    root, pattern = args.root, args.pattern
    if root is None:
        from modules.data import categories as cats
        names = [c for c in args.categories.split(",") if c in cats.SYNSETS]
        tmp = tempfile.mkdtemp(prefix="render_stats_")
        generate_ours(tmp, names, args.per_category, args.views, args.style)
        sub = {"r2n2": ("r2n2/ShapeNetRendering", "*.png"), "onet": ("onet", "*.jpg"),
               "genren": ("genren", "*.png")}[args.layout]
        root, pattern = os.path.join(tmp, sub[0]), sub[1]
        print(f"generated ours ({', '.join(names)}; {args.per_category} shapes each, {args.views} views, "
              f"style {args.style}) under {tmp}")
    paths = find_images(root, pattern)
    if not paths:
        raise SystemExit(f"no images matching {pattern!r} under {root}")
    images = [load_rgba(q) for q in paths]
    sizes = {im.shape[:2] for im in images}
    print(f"{len(paths)} images under {root} ({pattern}); sizes {sorted(sizes)}")
    print(f"{'statistic':<16}{'mean':>24}{'std':>24}")
    for key, mean, std in summarise([image_stats(x) for x in images]):
        fmt = (lambda v: " ".join(f"{u:.3f}" for u in np.atleast_1d(v)))
        print(f"{key:<16}{fmt(mean):>24}{fmt(std):>24}")
    # grid: first --n images spread over the list, composited on white
    pick = np.linspace(0, len(images) - 1, min(args.n, len(images))).round().astype(int)
    tiles = []
    for i in pick:
        x = images[i]
        if x.shape[:2] != images[pick[0]].shape[:2]:
            continue
        rgb = x[..., :3] * x[..., 3:] + (1 - x[..., 3:])
        tiles.append(torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1))
    grid = make_grid(torch.stack(tiles), nrow=8, padding=2, pad_value=0.5)
    save_image(grid, args.grid)
    print(f"wrote {args.grid} ({len(tiles)} images)")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
