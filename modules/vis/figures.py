"""Matplotlib plumbing: off-screen figures (Agg canvas, no pyplot state), atomic PNG saves,
figure -> RGB array, and the y-up 3-D axes every point-cloud and mesh picture uses."""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from modules.utils import ShapeLabError, atomic_write


def new_figure(figsize=(4, 4), dpi=100):
    """A Figure bound to an Agg canvas; never touches pyplot, so it is safe in workers and needs no display."""
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path):
    """Write `fig` as PNG atomically. No bbox_inches='tight', so the size is figsize*dpi exactly."""
    with atomic_write(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
    return path


def figure_to_array(fig):
    """(H, W, 3) uint8 RGB pixels of a drawn figure (for GIF frames and image panels)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def to_numpy(x, name, shape_tail=None, dtype=np.float64):
    """Torch tensor / list / array -> numpy, checking the trailing shape, e.g. (3,) for (N,3)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=dtype)
    if shape_tail is not None and (x.ndim != 1 + len(shape_tail) or x.shape[1:] != tuple(shape_tail)):
        tail = ",".join(str(s) for s in shape_tail)
        raise ShapeLabError(f"{name}: expected shape (N,{tail}), got {tuple(x.shape)}")
    return x


def to_plot_coords(points):
    """World (x, y, z) with y up -> matplotlib (X, Y, Z) with Z up: X=x, Y=-z, Z=y.

    This is a proper rotation (no mirror), so shapes are not flipped left-right.
    """
    p = np.asarray(points)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def view_direction(elev, azim):
    """Unit vector from the scene towards a matplotlib 3-D camera at (elev, azim), in plot coordinates."""
    e, a = np.deg2rad(elev), np.deg2rad(azim)
    return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def bounds_of(point_sets):
    """(center (3,), half extent) of the cube enclosing all given (N,3) world-space arrays."""
    pts = np.concatenate([np.asarray(p).reshape(-1, 3) for p in point_sets if len(p)], axis=0) \
        if any(len(p) for p in point_sets) else np.zeros((1, 3))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    half = max(float((hi - lo).max()) / 2.0, 1e-6)
    return (lo + hi) / 2.0, half


def setup_3d_axes(ax, bounds, elev, azim, title=None):
    """Equal aspect cube around `bounds` (world coords), camera at (elev, azim), axes hidden."""
    center, half = bounds
    c = to_plot_coords(center)
    ax.set_xlim(c[0] - half, c[0] + half)
    ax.set_ylim(c[1] - half, c[1] + half)
    ax.set_zlim(c[2] - half, c[2] + half)
    ax.set_box_aspect((1, 1, 1), zoom=1.35)  # mpl pads 3-D axes generously; use more of the frame
    ax.view_init(elev=elev, azim=azim)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
