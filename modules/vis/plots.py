"""Multi-panel figures, GIFs and training curves."""
import math
import os

import numpy as np
from PIL import Image

from modules.utils import ShapeLabError, atomic_write
from modules.vis.figures import bounds_of, new_figure, save_figure, to_numpy, figure_to_array
from modules.vis.meshes import draw_mesh, mesh_image
from modules.vis.pointclouds import draw_point_cloud, point_cloud_image


def _image_array(img, name):
    """HxW, HxWx3 or HxWx4 (uint8 or float in [0,1], numpy or torch) -> array imshow accepts."""
    a = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW tensors
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ShapeLabError(f"{name}: expected an HxW, HxWx3 or HxWx4 image, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float64), 0, 1)
    return a


def save_panels_png(path, panels, titles=None, ncols=None, panel_size=3.0, dpi=100, elev=20, azim=-60,
                    share_bounds=True):
    """Side-by-side pictures (input / reconstruction / ground truth, content / style / result, grids).

    Each panel is a dict, one of
      {"points": (N,3), "colors": optional, "point_size": optional}
      {"vertices": (V,3), "faces": (F,3), "colors": optional per-vertex, "face_colors": optional}
      {"image": HxW / HxWx3 / HxWx4 array}
    Any panel may also carry "title", "elev", "azim". With share_bounds, all 3-D panels use one
    common cube, so sizes are comparable between panels.
    """
    if not panels:
        raise ShapeLabError("save_panels_png: no panels given")
    if titles is not None and len(titles) != len(panels):
        raise ShapeLabError(f"save_panels_png: {len(titles)} titles for {len(panels)} panels")
    n = len(panels)
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    fig = new_figure((panel_size * ncols, panel_size * nrows), dpi)
    geometry = []
    for i, p in enumerate(panels):
        if not isinstance(p, dict) or not ({"points", "vertices", "image"} & set(p)):
            raise ShapeLabError(f"panel {i}: expected a dict with 'points', 'vertices'+'faces' or 'image'")
        if "points" in p:
            geometry.append(to_numpy(p["points"], f"panel {i} points", (3,)))
        elif "vertices" in p:
            geometry.append(to_numpy(p["vertices"], f"panel {i} vertices", (3,)))
    shared = bounds_of(geometry) if share_bounds and geometry else None
    for i, p in enumerate(panels):
        title = titles[i] if titles is not None else p.get("title")
        el, az = p.get("elev", elev), p.get("azim", azim)
        if "image" in p:
            ax = fig.add_subplot(nrows, ncols, i + 1)
            a = _image_array(p["image"], f"panel {i} image")
            ax.imshow(a, cmap="gray" if a.ndim == 2 else None)
            ax.set_axis_off()
            if title:
                ax.set_title(title, fontsize=9)
        elif "points" in p:
            ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
            draw_point_cloud(ax, p["points"], p.get("colors"), p.get("point_size"), el, az, title, shared)
        else:
            if "faces" not in p:
                raise ShapeLabError(f"panel {i}: 'vertices' given without 'faces'")
            ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
            draw_mesh(ax, p["vertices"], p["faces"], p.get("colors"), p.get("face_colors"), el, az, title, shared)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.02, hspace=0.1)
    return save_figure(fig, path)


def save_gif(path, frames, fps=4, loop=0):
    """Animated GIF from HxWx3 (or HxWx4) uint8 arrays, float arrays in [0,1], or image file paths."""
    if len(frames) == 0:
        raise ShapeLabError(f"save_gif {path}: no frames")
    images = []
    for i, fr in enumerate(frames):
        if isinstance(fr, (str, os.PathLike)):
            if not os.path.exists(fr):
                raise ShapeLabError(f"save_gif: frame {i} file not found: {fr}")
            images.append(Image.open(fr).convert("RGB"))
            continue
        a = _image_array(fr, f"save_gif frame {i}")
        if a.dtype != np.uint8:
            a = (a * 255 + 0.5).astype(np.uint8)
        if a.ndim == 3 and a.shape[-1] == 4:  # composite over white
            alpha = a[..., 3:4].astype(np.float64) / 255
            a = (a[..., :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)
        images.append(Image.fromarray(a).convert("RGB"))
    if len({im.size for im in images}) != 1:
        raise ShapeLabError(f"save_gif {path}: frames differ in size: {sorted({im.size for im in images})}")
    duration = int(round(1000.0 / fps))
    with atomic_write(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration,
                       loop=loop, disposal=2)
    return path


def save_turntable_gif(path, points=None, colors=None, vertices=None, faces=None, vertex_colors=None,
                       face_colors=None, n_frames=24, fps=8, elev=20, figsize=(3, 3), dpi=100):
    """360-degree GIF of a point cloud (points=...) or a mesh (vertices=..., faces=...)."""
    if (points is None) == (vertices is None):
        raise ShapeLabError("save_turntable_gif: give either points or vertices+faces")
    frames = []
    for k in range(n_frames):
        azim = -60 + 360.0 * k / n_frames
        if points is not None:
            frames.append(point_cloud_image(points, colors, elev=elev, azim=azim, figsize=figsize, dpi=dpi))
        else:
            frames.append(mesh_image(vertices, faces, vertex_colors, face_colors, elev=elev, azim=azim,
                                     figsize=figsize, dpi=dpi))
    return save_gif(path, frames, fps=fps)


def save_loss_curve_png(path, steps, values, title="", ylabel="loss", xlabel="step", logy=False,
                        figsize=(5, 3.5), dpi=100):
    """Line plot of values against steps; `values` may be a dict {name: series} for several curves."""
    series = values if isinstance(values, dict) else {None: values}
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot(1, 1, 1)
    for name, vals in series.items():
        vals = np.asarray(vals, dtype=np.float64).reshape(-1)
        st = np.asarray(steps[name] if isinstance(steps, dict) else steps, dtype=np.float64).reshape(-1)
        if len(st) != len(vals):
            raise ShapeLabError(f"save_loss_curve_png {path}: {len(st)} steps for {len(vals)} values"
                                + (f" in series {name!r}" if name else ""))
        # markers on short series (a validation curve of a few points is otherwise one invisible segment)
        ax.plot(st, vals, label=name, linewidth=1.2, marker="o" if len(vals) <= 50 else None, markersize=4)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(series) > 1 or None not in series:
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["save_panels_png", "save_gif", "save_turntable_gif", "save_loss_curve_png", "figure_to_array"]
