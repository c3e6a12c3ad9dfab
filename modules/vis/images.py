"""Pictures of images: titled grids (torchvision's make_grid/save_image) and heat-map overlays with
a colour bar (GradCAM-family maps on input images).

Images are float tensors in [0,1] (uint8 is accepted and scaled), (B,C,H,W) or a list of (C,H,W)
tensors / HxWxC arrays, with C = 1 (grey), 3 (RGB) or 4 (RGBA). RGBA is composited over a
background colour (white by default) before drawing, as the renders are shown elsewhere.
"""
import math

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from PIL import Image, ImageDraw, ImageFont
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import make_grid, save_image

from modules.utils import ShapeLabError, atomic_write
from modules.vis.figures import new_figure, save_figure


def _one_image(img, name):
    """(C,H,W) tensor or HxW / HxWxC array -> (C,H,W) float tensor in [0,1]."""
    if not torch.is_tensor(img):
        a = np.asarray(img)
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
            raise ShapeLabError(f"{name}: expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}")
        img = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3 or img.shape[0] not in (1, 3, 4):
        raise ShapeLabError(f"{name}: expected a (C,H,W) image with C in 1, 3, 4, got {tuple(img.shape)}")
    img = img.detach().cpu()
    if img.dtype == torch.uint8:
        return TF.to_dtype(img, torch.float32, scale=True)
    return img.float().clamp(0, 1)


def to_image_batch(images, name="images", size=None, background=(1.0, 1.0, 1.0)):
    """Images (see module docstring) -> (B,3,H,W) float in [0,1].

    Grey becomes RGB; RGBA is composited over `background` (None keeps RGBA, then all must be RGBA).
    All images are resized (torchvision, antialiased) to `size` (int or (h,w)) or to the first one's size.
    """
    if torch.is_tensor(images) and images.ndim == 4:
        items = list(images)
    elif torch.is_tensor(images) and images.ndim in (2, 3):
        items = [images]
    elif isinstance(images, (list, tuple)):
        items = list(images)
    elif isinstance(images, np.ndarray) and images.ndim in (2, 3):
        items = [images]
    else:
        raise ShapeLabError(f"{name}: expected a (B,C,H,W) tensor or a list of images, got {type(images).__name__}")
    if not items:
        raise ShapeLabError(f"{name}: no images given")
    out = []
    for i, item in enumerate(items):
        img = _one_image(item, f"{name}[{i}]")
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        if img.shape[0] == 4 and background is not None:
            bg = torch.tensor(background, dtype=img.dtype).view(3, 1, 1)
            img = img[:3] * img[3:] + bg * (1 - img[3:])
        out.append(img)
    if len({im.shape[0] for im in out}) > 1:
        raise ShapeLabError(f"{name}: mixed RGB and RGBA images with background=None")
    target = out[0].shape[1:] if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    out = [im if im.shape[1:] == tuple(target) else TF.resize(im, list(target), antialias=True).clamp(0, 1)
           for im in out]
    return torch.stack(out)


def title_band(text, width, height):
    """(3,height,width) white band with `text` in black, shortened with '...' to fit."""
    band = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(band)
    font = ImageFont.load_default(size=max(8, int(height * 0.75)))
    if draw.textlength(text, font=font) > width - 2:
        while text and draw.textlength(text + "...", font=font) > width - 2:
            text = text[:-1]
        text += "..."
    draw.text((width / 2, height / 2), text, fill="black", font=font, anchor="mm")
    return TF.to_dtype(TF.pil_to_tensor(band), torch.float32, scale=True)


def save_image_grid(path, images, titles=None, nrow=8, padding=2, pad_value=1.0, tile_size=None,
                    background=(1.0, 1.0, 1.0), title_height=None):
    """Save images as one PNG grid (torchvision make_grid + save_image), optionally titled.

    images: see `to_image_batch`; tile_size resizes every tile (e.g. 128 to enlarge 64x64 renders).
    titles: one string per image, drawn in a white band above its tile (height `title_height`,
    default max(12, H/8) pixels). Returns the (C, H_grid, W_grid) grid tensor (e.g. for TensorBoard).
    """
    batch = to_image_batch(images, size=tile_size, background=background)
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != len(batch):
            raise ShapeLabError(f"save_image_grid: {len(titles)} titles for {len(batch)} images")
        h, w = batch.shape[2:]
        band_h = int(title_height or max(12, h // 8))
        bands = torch.stack([title_band(t, w, band_h) for t in titles])
        if batch.shape[1] == 4:  # opaque title bands on RGBA tiles
            bands = torch.cat([bands, torch.ones(len(bands), 1, band_h, w)], dim=1)
        batch = torch.cat([bands, batch], dim=2)
    grid = make_grid(batch, nrow=max(1, int(nrow)), padding=padding, pad_value=pad_value)
    with atomic_write(path, suffix=".png") as tmp:
        save_image(grid, tmp, format="png")
    return grid


def heatmap_overlay(image, heat, alpha=0.5, cmap="jet", vmin=None, vmax=None, background=(1.0, 1.0, 1.0)):
    """Blend a heat map over an image: (3,H,W) = (1-alpha)*image + alpha*cmap(norm(heat)).

    image: (C,H,W) / HxWxC, C in 1, 3, 4 (RGBA composited over `background`).
    heat: (h,w) or (1,h,w), any range; resized bilinearly (torchvision) to (H,W), then mapped to
    [0,1] with [vmin, vmax] (default: the map's min and max; a constant map maps to 0).
    """
    img = to_image_batch([image], name="heatmap_overlay image", background=background)[0]
    heat = torch.as_tensor(np.asarray(heat.detach().cpu() if torch.is_tensor(heat) else heat), dtype=torch.float32)
    if heat.ndim == 3 and heat.shape[0] == 1:
        heat = heat[0]
    if heat.ndim != 2:
        raise ShapeLabError(f"heatmap_overlay: expected a (h,w) or (1,h,w) heat map, got {tuple(heat.shape)}")
    if not 0.0 <= alpha <= 1.0:
        raise ShapeLabError(f"heatmap_overlay: alpha={alpha}, expected a value in [0, 1]")
    heat = TF.resize(heat[None], list(img.shape[1:]), interpolation=TF.InterpolationMode.BILINEAR,
                     antialias=False)[0]
    lo = float(heat.min()) if vmin is None else float(vmin)
    hi = float(heat.max()) if vmax is None else float(vmax)
    unit = ((heat - lo) / (hi - lo)).clamp(0, 1) if hi > lo else torch.zeros_like(heat)
    colours = torch.from_numpy(colormaps[cmap](unit.numpy())[..., :3]).float().permute(2, 0, 1)
    return (1 - alpha) * img + alpha * colours


def save_heatmap_overlays(path, images, heats, titles=None, alpha=0.5, cmap="jet", vmin=None, vmax=None,
                          shared_scale=True, panel_size=3.0, dpi=100):
    """One PNG with a panel per image: the heat map blended over it, plus a colour bar.

    images: (B,C,H,W) or a list; heats: (B,h,w), (B,1,h,w) or a list of (h,w) maps (e.g. LayerGradCam
    output). With shared_scale, all panels use one [vmin, vmax] (default: min/max over all maps) and
    one colour bar; otherwise each panel has its own range and colour bar.
    """
    batch = to_image_batch(images)
    heats = [h.detach().cpu().float() if torch.is_tensor(h) else torch.as_tensor(np.asarray(h), dtype=torch.float32)
             for h in heats]
    heats = [h[0] if h.ndim == 3 and h.shape[0] == 1 else h for h in heats]
    if len(heats) != len(batch):
        raise ShapeLabError(f"save_heatmap_overlays: {len(heats)} heat maps for {len(batch)} images")
    if titles is not None and len(titles) != len(batch):
        raise ShapeLabError(f"save_heatmap_overlays: {len(titles)} titles for {len(batch)} images")
    n = len(batch)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = new_figure(figsize=(panel_size * ncols * 1.2, panel_size * nrows), dpi=dpi)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    if shared_scale:
        lo = min(float(h.min()) for h in heats) if vmin is None else float(vmin)
        hi = max(float(h.max()) for h in heats) if vmax is None else float(vmax)
    for i, (ax, img, heat) in enumerate(zip(axes, batch, heats)):
        a = lo if shared_scale else (float(heat.min()) if vmin is None else float(vmin))
        b = hi if shared_scale else (float(heat.max()) if vmax is None else float(vmax))
        over = heatmap_overlay(img, heat, alpha=alpha, cmap=cmap, vmin=a, vmax=b)
        ax.imshow(over.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
        if not shared_scale:
            fig.colorbar(ScalarMappable(norm=Normalize(a, b if b > a else a + 1e-12), cmap=cmap), ax=ax,
                         fraction=0.046, pad=0.04)
    if shared_scale:
        fig.colorbar(ScalarMappable(norm=Normalize(lo, hi if hi > lo else lo + 1e-12), cmap=cmap), ax=axes,
                     fraction=0.04, pad=0.03, aspect=12 * nrows)
    return save_figure(fig, path)
