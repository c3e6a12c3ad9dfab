"""Point-cloud pictures (y-up shapes shown upright, equal aspect)."""
import numpy as np

from modules.utils import ShapeLabError
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Patch

from modules.vis.colors import PART_PALETTE, attribution_colormap, attribution_scale, part_colors
from modules.vis.figures import (bounds_of, figure_to_array, new_figure, save_figure, setup_3d_axes,
                                 to_numpy, to_plot_coords)

DEFAULT_POINT_COLOR = (0.27, 0.51, 0.71)


def resolve_point_colors(colors, n, name="colors"):
    """None -> one default colour; (N,) integer ids -> part_colors; (3,) or (N,3)/(N,4) RGB(A): floats in
    [0,1], integer arrays in 0-255."""
    if colors is None:
        return np.tile(np.asarray(DEFAULT_POINT_COLOR), (n, 1))
    c = colors.detach().cpu().numpy() if hasattr(colors, "detach") else np.asarray(colors)
    if c.ndim == 1 and c.shape[0] == n and np.issubdtype(c.dtype, np.integer) and n not in (3, 4):
        return part_colors(c)
    if c.dtype == np.uint8 or (np.issubdtype(c.dtype, np.integer) and c.max(initial=0) > 1):
        c = c / 255.0                                    # 0-255 colours; [1, 0, 0] stays pure red
    c = c.astype(np.float64)
    if c.ndim == 1 and c.shape[0] in (3, 4):
        return np.tile(np.clip(c, 0, 1), (n, 1))
    if c.ndim == 2 and c.shape[0] == n and c.shape[1] in (3, 4):
        return np.clip(c, 0, 1)
    raise ShapeLabError(f"{name}: expected None, (N,) integer part ids, (3,) or (N,3) RGB with N={n}, "
                        f"got shape {c.shape}")


def default_point_size(n):
    """Marker area that keeps 1k-100k point clouds readable at ~400 px."""
    return float(np.clip(6000.0 / max(n, 1), 0.5, 20.0))


def draw_point_cloud(ax, points, colors=None, point_size=None, elev=20, azim=-60, title=None, bounds=None):
    """Scatter (N,3) world points on a 3-D matplotlib axis (y up)."""
    p = to_numpy(points, "points", (3,))
    c = resolve_point_colors(colors, len(p))
    q = to_plot_coords(p)
    s = default_point_size(len(p)) if point_size is None else point_size
    ax.scatter(q[:, 0], q[:, 1], q[:, 2], c=c, s=s, linewidths=0, depthshade=True)
    setup_3d_axes(ax, bounds if bounds is not None else bounds_of([p]), elev, azim, title)


def add_colorbar(fig, values, mode="negpos", label=None, scale=None, rect=(0.8, 0.12, 0.03, 0.7)):
    """A colour bar matching attribution_colors(values, mode, scale): [-s, s] (negpos) or [0, s]
    (magnitude), s = scale or max |value|, with the values' actual min and max written under it."""
    values = np.asarray(values, dtype=np.float64)
    s = (attribution_scale(values) if scale is None else float(scale)) or 1.0
    norm = Normalize(-s if mode == "negpos" else 0.0, s)
    cax = fig.add_axes(list(rect))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=attribution_colormap(mode)), cax=cax)
    bar.ax.tick_params(labelsize=7)
    if label:
        bar.set_label(label, fontsize=7)
    if values.size:
        fig.text(rect[0] + rect[2] / 2, rect[1] - 0.02, f"min {values.min():.3g}\nmax {values.max():.3g}",
                 ha="center", va="top", fontsize=6)
    return bar


def add_part_legend(fig, names, labels=None):
    """Legend of part colours: names {global part id: name}; with `labels` (N,) only the ids present,
    each with its number of points."""
    present = None if labels is None else dict(zip(*np.unique(np.asarray(labels), return_counts=True)))
    handles = []
    for pid, name in names.items():
        if present is not None and pid not in present:
            continue
        text = f"{pid} {name}" + (f" ({present[pid]})" if present is not None else "")
        handles.append(Patch(color=PART_PALETTE[pid] if 0 <= pid < len(PART_PALETTE) else part_colors([pid])[0],
                             label=text))
    if handles:
        fig.legend(handles=handles, loc="lower left", fontsize=7, frameon=False)


def point_cloud_figure(points, colors=None, title=None, elev=20, azim=-60, point_size=None,
                       figsize=(4, 4), dpi=100, colorbar=None, legend=None):
    """colorbar: dict(values=(N,), mode='negpos'|'magnitude', label=str, scale=optional float) -> a colour
    bar on the right (pass the same scale as to attribution_colors);
    legend: dict(names={part id: name}, labels=(N,) or None) -> a part legend at the bottom left."""
    fig = new_figure(figsize, dpi)
    ax = fig.add_axes([0, 0, 0.78 if colorbar else 1, 0.93 if title else 1], projection="3d")
    draw_point_cloud(ax, points, colors, point_size, elev, azim, title)
    if colorbar:
        add_colorbar(fig, colorbar["values"], colorbar.get("mode", "negpos"), colorbar.get("label"),
                     colorbar.get("scale"))
    if legend:
        add_part_legend(fig, legend["names"], legend.get("labels"))
    return fig


def point_cloud_image(points, colors=None, title=None, elev=20, azim=-60, point_size=None,
                      figsize=(4, 4), dpi=100, colorbar=None, legend=None):
    """(H, W, 3) uint8 picture of a point cloud, H = figsize[1]*dpi, W = figsize[0]*dpi."""
    return figure_to_array(point_cloud_figure(points, colors, title, elev, azim, point_size, figsize, dpi,
                                              colorbar, legend))


def save_point_cloud_png(path, points, colors=None, title=None, elev=20, azim=-60, point_size=None,
                         figsize=(4, 4), dpi=100, colorbar=None, legend=None):
    """Write a PNG of an (N,3) point cloud; colors: None, (N,) part ids, (3,) or (N,3) RGB in [0,1];
    colorbar / legend as in point_cloud_figure."""
    return save_figure(point_cloud_figure(points, colors, title, elev, azim, point_size, figsize, dpi,
                                          colorbar, legend), path)
