"""Triangle-mesh pictures with matplotlib's Poly3DCollection (Lambert-shaded faces, y up).

Matplotlib sorts faces by depth (painter's algorithm), which is fine for figures; exact
occlusion and camera models live in modules.geometry.rasterizer.
"""
import numpy as np
from mpl_toolkits.mplot3d.art3d import Poly3DCollection

from modules.utils import ShapeLabError
from modules.vis.colors import part_colors
from modules.vis.figures import (bounds_of, figure_to_array, new_figure, save_figure, setup_3d_axes,
                                 to_numpy, to_plot_coords, view_direction)

DEFAULT_MESH_COLOR = (0.7, 0.72, 0.78)
MAX_FACES = 50_000


def _as_mesh(vertices, faces):
    v = to_numpy(vertices, "vertices", (3,))
    f = to_numpy(faces, "faces", (3,), dtype=np.int64)
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise ShapeLabError(f"faces: indices must lie in [0, {len(v) - 1}], got [{f.min()}, {f.max()}]")
    return v, f


def _rgb(colors, n, name):
    c = colors.detach().cpu().numpy() if hasattr(colors, "detach") else np.asarray(colors)
    if c.ndim == 1 and c.shape[0] == n and np.issubdtype(c.dtype, np.integer) and n not in (3, 4):
        return part_colors(c)  # per-face / per-vertex part ids
    if c.dtype == np.uint8 or (np.issubdtype(c.dtype, np.integer) and c.max(initial=0) > 1):
        c = c / 255.0                                    # 0-255 colours; [1, 0, 0] stays pure red
    c = c.astype(np.float64)
    if c.ndim == 1 and c.shape[0] in (3, 4):
        c = np.tile(c, (n, 1))
    if c.ndim != 2 or c.shape[0] != n or c.shape[1] not in (3, 4):
        raise ShapeLabError(f"{name}: expected (3,), ({n},3) RGB or ({n},) integer ids, got shape {c.shape}")
    return np.clip(c[:, :3], 0, 1)


def decimate(vertices, faces, vertex_colors=None, face_colors=None, max_faces=MAX_FACES, seed=0):
    """Reduce a mesh to at most `max_faces` faces for plotting.

    Quadric decimation (Open3D) when colours are per vertex or absent (it carries vertex colours);
    a random subset of faces when colours are per face (quadric decimation cannot keep them).
    """
    if len(faces) <= max_faces:
        return vertices, faces, vertex_colors, face_colors
    if face_colors is not None:
        keep = np.sort(np.random.default_rng(seed).choice(len(faces), max_faces, replace=False))
        return vertices, faces[keep], None, face_colors[keep]
    import open3d as o3d  # imported lazily: slow to import and only needed for big meshes
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    if vertex_colors is not None:
        mesh.vertex_colors = o3d.utility.Vector3dVector(vertex_colors)
    small = mesh.simplify_quadric_decimation(int(max_faces))
    vc = np.asarray(small.vertex_colors) if vertex_colors is not None else None
    return np.asarray(small.vertices), np.asarray(small.triangles), vc, None


def shade_faces(tri_plot, base, light, ambient=0.35):
    """Two-sided Lambert: ambient + (1-ambient)*|n.l| per face, times the base colour."""
    n = np.cross(tri_plot[:, 1] - tri_plot[:, 0], tri_plot[:, 2] - tri_plot[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    lam = np.abs(n @ (light / np.linalg.norm(light)))
    return np.clip(base * (ambient + (1 - ambient) * lam)[:, None], 0, 1)


def draw_mesh(ax, vertices, faces, vertex_colors=None, face_colors=None, elev=20, azim=-60, title=None,
              bounds=None, max_faces=MAX_FACES, ambient=0.35, edge_color=None):
    """Add a shaded mesh to a 3-D matplotlib axis. The light sits up-left of the viewer."""
    v, f = _as_mesh(vertices, faces)
    if vertex_colors is not None and face_colors is not None:
        raise ShapeLabError("give vertex_colors or face_colors, not both")
    vc = _rgb(vertex_colors, len(v), "vertex_colors") if vertex_colors is not None else None
    fc = _rgb(face_colors, len(f), "face_colors") if face_colors is not None else None
    bounds = bounds if bounds is not None else bounds_of([v])
    v, f, vc, fc = decimate(v, f, vc, fc, max_faces)
    tri = to_plot_coords(v[f])  # (F, 3, 3)
    if fc is not None:
        base = fc
    elif vc is not None:
        base = vc[f].mean(axis=1)
    else:
        base = np.tile(np.asarray(DEFAULT_MESH_COLOR), (len(f), 1))
    eye = view_direction(elev, azim)
    light = eye + 0.4 * view_direction(elev + 90, azim) + 0.3 * view_direction(0, azim + 90)
    coll = Poly3DCollection(tri, facecolors=shade_faces(tri, base, light, ambient),
                            edgecolors=edge_color if edge_color is not None else "none",
                            linewidths=0.2 if edge_color is not None else 0.0)
    ax.add_collection3d(coll)
    setup_3d_axes(ax, bounds, elev, azim, title)


def mesh_figure(vertices, faces, vertex_colors=None, face_colors=None, title=None, elev=20, azim=-60,
                figsize=(4, 4), dpi=100, max_faces=MAX_FACES, edge_color=None):
    fig = new_figure(figsize, dpi)
    ax = fig.add_axes([0, 0, 1, 0.93 if title else 1], projection="3d")
    draw_mesh(ax, vertices, faces, vertex_colors, face_colors, elev, azim, title,
              max_faces=max_faces, edge_color=edge_color)
    return fig


def mesh_image(vertices, faces, vertex_colors=None, face_colors=None, title=None, elev=20, azim=-60,
               figsize=(4, 4), dpi=100, max_faces=MAX_FACES, edge_color=None):
    """(H, W, 3) uint8 picture of a mesh."""
    return figure_to_array(mesh_figure(vertices, faces, vertex_colors, face_colors, title, elev, azim,
                                       figsize, dpi, max_faces, edge_color))


def save_mesh_png(path, vertices, faces, vertex_colors=None, face_colors=None, title=None, elev=20, azim=-60,
                  figsize=(4, 4), dpi=100, max_faces=MAX_FACES, edge_color=None):
    """Write a PNG of a triangle mesh; colours per vertex or per face ((3,), (N,3) RGB or (N,) part ids).

    Meshes above `max_faces` faces are decimated first (see `decimate`)."""
    return save_figure(mesh_figure(vertices, faces, vertex_colors, face_colors, title, elev, azim,
                                   figsize, dpi, max_faces, edge_color), path)
