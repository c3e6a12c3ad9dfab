"""genren evaluation glue: pictures of both cycles, pose errors, image statistics, textured PLY export.

Picture conventions: model images are (B,4,S,S) with RGB in [-1,1] over black and alpha in [0,1]; `to_display`
turns them into RGBA in [0,1] (composited over white by modules.vis.images).
"""
import math

import numpy as np
import torch
from torchvision.utils import make_grid

from modules.geometry.soft_rasterizer import look_at_view_transform
from modules.losses.genren import rotation_angle
from modules.utils import atomic_write
from modules.vis.images import to_image_batch

VIEWS = ((30.0, 20.0), (150.0, 20.0), (270.0, 35.0))     # (azimuth, elevation) of the 3 mesh views


def to_display(images):
    """(B,4,S,S) model images -> (B,4,S,S) RGBA in [0,1]."""
    return torch.cat([(images[:, :3] + 1) / 2, images[:, 3:]], 1).clamp(0, 1)


def view_rotation(azim, elev, device=None):
    """(3,3) object rotation that shows the canonical shape from (azimuth, elevation) in degrees with genren's fixed
    camera on +z: R = Rx(elev) Ry(-azim) (the inverse of moving the camera)."""
    a, e = math.radians(azim), math.radians(elev)
    Ry = torch.tensor([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    Rx = torch.tensor([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
    return (Rx @ Ry).to(device)


@torch.no_grad()
def render_views(model, verts, colors, views=VIEWS):
    """Canonical textured meshes (B,V,3), colours (B,V,3) in [0,1] -> (B,len(views),4,S,S) renders at the origin."""
    out = []
    for azim, elev in views:
        R = view_rotation(azim, elev, verts.device)
        out.append(model.render(verts @ R.T, colors))
    return torch.stack(out, 1)


@torch.no_grad()
def reconstruction_grid(model, images):
    """Vision cycle picture, one row per image: input | textured reconstruction from 3 views | re-render with the
    most probable pose. -> (3, H, W) grid in [0,1] (RGBA composited over white)."""
    out = model.cycle_2(images)
    best = model.best_hypothesis(out)
    idx = torch.arange(images.shape[0], device=images.device)
    colors = out["colors"][idx, best]
    views = render_views(model, out["verts"], colors)
    rows = torch.cat([images[:, None], views, out["renders"][idx, best][:, None]], 1)
    return _grid(rows)


@torch.no_grad()
def graphics_grid(model, points, normals, n_renders=3, seed=0):
    """Graphics cycle picture, one row per shape: the shape (its mesh-AE reconstruction, grey, 3/4 view) | n_renders
    generated renders with random poses and textures. -> (3, H, W) grid in [0,1]."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = model.encode_shape(points, normals)
    _, verts = model.deform(v)
    grey = torch.full_like(verts, 0.7)
    cols = [render_views(model, verts, grey, views=((30.0, 20.0),))]
    for _ in range(n_renders):
        xi_p = torch.randn(points.shape[0], model.dim_xi_p, generator=g).to(points.device)
        xi_T = torch.randn(points.shape[0], model.dim_xi_T, generator=g).to(points.device)
        cols.append(model.shape_to_image(points, normals, xi_p=xi_p, xi_T=xi_T)["renders"][:, None])
    return _grid(torch.cat(cols, 1))


def _grid(rows):
    B, K = rows.shape[:2]
    tiles = to_image_batch(to_display(rows.flatten(0, 1)).cpu())
    return make_grid(tiles, nrow=K, padding=2, pad_value=1.0)


# --- metrics ---------------------------------------------------------------------------------------------------

def r2n2_view_rotation(azimuth, elevation):
    """Object rotation (3,3) under genren's camera (eye on +z, y up) that shows the shape as an R2N2 metadata
    view (azimuth, elevation in degrees; camera at that azimuth/elevation around the y-up shape, PyTorch3D's R2N2
    convention): R_obj = R0 R_cam^T with R0, R_cam the look-at rotations of the two cameras."""
    R0, _ = look_at_view_transform(dist=1.0, elev=0.0, azim=0.0)
    Rc, _ = look_at_view_transform(dist=1.0, elev=float(elevation), azim=float(azimuth))
    return (R0[0] @ Rc[0].T)


def pose_error_degrees(R_pred, R_true):
    """Geodesic angle in degrees between predicted and true object rotations (...,3,3)."""
    return torch.rad2deg(rotation_angle(R_pred, R_true, eps=0.0))


def image_statistics(images):
    """Per-image statistics of (B,4,S,S) model images -> (B,10) float64: foreground fraction, bounding-box width and
    height (fractions of the frame), mean and std of foreground RGB (in [0,1]), edge density of the mask."""
    rgb, a = (images[:, :3] + 1) / 2, images[:, 3]
    m = (a > 0.5).float()
    S = images.shape[-1]
    fg = m.flatten(1).mean(1)
    cnt = m.flatten(1).sum(1).clamp_min(1)
    mean = (rgb * m[:, None]).flatten(2).sum(2) / cnt[:, None]
    std = (((rgb - mean[:, :, None, None]) ** 2 * m[:, None]).flatten(2).sum(2) / cnt[:, None]).sqrt()
    rows, cols = m.amax(2), m.amax(1)
    width, height = cols.sum(1) / S, rows.sum(1) / S
    edges = ((m[:, 1:, :] != m[:, :-1, :]).float().flatten(1).sum(1)
             + (m[:, :, 1:] != m[:, :, :-1]).float().flatten(1).sum(1)) / (S * S)
    return torch.cat([fg[:, None], width[:, None], height[:, None], mean, std, edges[:, None]], 1).double()


def frechet_distance(a, b, eps=1e-6):
    """Fréchet distance between Gaussians fitted to two sets of feature rows (N,D), (M,D) (the FID formula,
    on image_statistics instead of Inception features): |mu_a - mu_b|² + tr(Ca + Cb - 2 (Ca Cb)^1/2); eps·I is
    added to both covariances (constant statistics make them singular)."""
    from scipy import linalg  # deferred: scipy.linalg only for this metric
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ridge = eps * np.eye(a.shape[1])
    ca, cb = np.cov(a, rowvar=False) + ridge, np.cov(b, rowvar=False) + ridge
    covmean = linalg.sqrtm(ca @ cb)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * covmean))


# --- files -------------------------------------------------------------------------------------------------------

def save_textured_ply(path, verts, faces, colors):
    """A vertex-coloured PLY (trimesh): verts (V,3), faces (F,3), colors (V,3) in [0,1]."""
    import trimesh  # deferred: trimesh only to write this file
    rgba = np.concatenate([np.clip(np.asarray(colors) * 255, 0, 255), np.full((len(verts), 1), 255)], 1).astype(np.uint8)
    mesh = trimesh.Trimesh(np.asarray(verts), np.asarray(faces), vertex_colors=rgba, process=False)
    with atomic_write(path) as tmp:
        mesh.export(tmp, file_type="ply")


def silhouette_iou(pred_alpha, true_alpha, threshold=0.5):
    """(B,S,S) alphas -> (B,) IoU of the masks alpha > threshold (1 when both are empty)."""
    p, t = pred_alpha > threshold, true_alpha > threshold
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


__all__ = ["reconstruction_grid", "graphics_grid", "render_views", "to_display", "r2n2_view_rotation",
           "pose_error_degrees", "image_statistics", "frechet_distance", "save_textured_ply", "silhouette_iou"]
