"""genren evaluation glue: pictures of both cycles, pose errors, image statistics, textured PLY export.

Picture conventions: model images are (B,4,S,S) with RGB in [-1,1] over black and alpha in [0,1]; `to_display`
turns them into RGBA in [0,1] (composited over white by modules.vis.images).
"""
import math

import numpy as np
import torch
from torchvision.utils import make_grid

from modules.geometry.soft_rasterizer import look_at_view_transform, project_vertices
from modules.losses.genren import rotation_angle
from modules.utils import atomic_write
from modules.vis.images import title_band, to_image_batch
from modules.vis.render import vertex_normals

VIEWS = ((30.0, 20.0), (150.0, 20.0), (270.0, 35.0))     # (azimuth, elevation) of the 3 mesh views
LIGHT = (-0.35, 0.5, 1.0)      # light direction of the grey shape pictures, in the camera frame (camera on +z)
SHAPE_GREY = 0.8               # albedo of the grey shape pictures
TILE = 128                     # picture tiles are enlarged to this size (renders are 64² or smaller), for the titles


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


def shade_grey(normals):
    """(B,N,3) unit normals in the camera frame -> (B,N,3) grey Lambert colours in [0,1] (two-sided, ambient 0.3),
    so that a shape reads as a 3D surface instead of a flat silhouette."""
    light = torch.tensor(LIGHT, dtype=normals.dtype, device=normals.device)
    lambert = (normals @ (light / light.norm())).abs()
    return (SHAPE_GREY * (0.3 + 0.7 * lambert))[..., None].expand(*normals.shape[:-1], 3)


def splat_points(model, points, colors, radius=1):
    """Point clouds (B,N,3) (posed, in the frame `model.render` takes) with colours (B,N,3) in [0,1] -> (B,4,S,S)
    model images (RGB in [-1,1] over black, alpha in [0,1]) through the model's camera: each point a
    (2·radius+1)² pixel square, the nearest point wins. Same camera and pixel layout as `model.render`, so a cloud
    and a mesh of the same shape cover the same pixels."""
    B, N, _ = points.shape
    S = model.image_size
    ndc = project_vertices(points, model.cam_R.expand(B, 3, 3), model.cam_T.expand(B, 3), model.settings.viewing_angle)
    # the renderer's pixel layout (CyclicGenRen.unproject): NDC +x is the image's left, +y its top
    col = ((1 - ndc[..., 0]) / 2 * S).floor().long()
    row = ((1 - ndc[..., 1]) / 2 * S).floor().long()
    depth, batch = ndc[..., 2], torch.arange(B, device=points.device)[:, None].expand(B, N)
    offsets = torch.arange(-radius, radius + 1, device=points.device)
    pix, z, src = [], [], []
    for dy in offsets:
        for dx in offsets:
            r, c = row + dy, col + dx
            ok = (r >= 0) & (r < S) & (c >= 0) & (c < S) & (depth > 0)
            pix.append((batch * S * S + r * S + c)[ok])
            z.append(depth[ok])
            src.append((batch * N + torch.arange(N, device=points.device))[ok])
    pix, z, src = torch.cat(pix), torch.cat(z), torch.cat(src)
    zbuf = torch.full((B * S * S,), float("inf"), dtype=z.dtype, device=z.device).scatter_reduce(0, pix, z, "amin")
    win = z == zbuf[pix]
    rgba = torch.zeros(B * S * S, 4, dtype=colors.dtype, device=colors.device)
    rgba[pix[win], :3] = colors.reshape(B * N, 3)[src[win]]
    rgba[pix[win], 3] = 1.0
    rgba = rgba.view(B, S, S, 4).permute(0, 3, 1, 2)
    return torch.cat([rgba[:, :3] * 2 - 1, rgba[:, 3:]], 1)


@torch.no_grad()
def shape_views(model, points, normals, verts, view=VIEWS[0]):
    """Grey, shaded pictures of the input clouds (B,N,3) with normals and of meshes (B,V,3) on the model's
    template faces, from one (azimuth, elevation) view -> ((B,4,S,S) input points, (B,4,S,S) mesh)."""
    R = view_rotation(*view, device=points.device)
    cloud = splat_points(model, points @ R.T, shade_grey(normals @ R.T))
    posed = verts @ R.T
    vn = torch.stack([vertex_normals(v, model.template_faces) for v in posed])
    return cloud, model.render(posed, shade_grey(vn))


@torch.no_grad()
def reconstruction_grid(model, images):
    """Vision cycle picture, one row per image, titled columns: input | textured reconstruction from 3 views |
    re-render with the most probable pose. -> (3, H, W) grid in [0,1] (RGBA composited over white)."""
    out = model.cycle_2(images)
    best = model.best_hypothesis(out)
    idx = torch.arange(images.shape[0], device=images.device)
    colors = out["colors"][idx, best]
    views = render_views(model, out["verts"], colors)
    rows = torch.cat([images[:, None], views, out["renders"][idx, best][:, None]], 1)
    titles = ["input image"] + [f"recon. az {a:.0f} el {e:.0f}" for a, e in VIEWS] + ["re-render, best pose"]
    return _grid(rows, titles)


@torch.no_grad()
def graphics_grid(model, points, normals, n_renders=3, seed=0):
    """Graphics cycle picture, one row per shape, titled columns: the input point cloud (grey, shaded by its
    normals) | its mesh-AE reconstruction (the shape the renders use, grey, shaded), both from the same 3/4 view |
    n_renders generated renders with random poses and textures. -> (3, H, W) grid in [0,1]."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = model.encode_shape(points, normals)
    _, verts = model.deform(v)
    cloud, mesh = shape_views(model, points, normals, verts)
    cols = [cloud[:, None], mesh[:, None]]
    for _ in range(n_renders):
        xi_p = torch.randn(points.shape[0], model.dim_xi_p, generator=g).to(points.device)
        xi_T = torch.randn(points.shape[0], model.dim_xi_T, generator=g).to(points.device)
        cols.append(model.shape_to_image(points, normals, xi_p=xi_p, xi_T=xi_T)["renders"][:, None])
    titles = ["input points", "mesh AE"] + [f"render {k + 1}" for k in range(n_renders)]
    return _grid(torch.cat(cols, 1), titles)


def _grid(rows, titles, padding=2):
    """rows (B,K,4,S,S) model images, one title per column -> (3, H, W): a title band above the columns and the
    tiles enlarged to TILE pixels (RGBA over white)."""
    B, K = rows.shape[:2]
    tiles = to_image_batch(to_display(rows.flatten(0, 1)).cpu(), size=max(TILE, rows.shape[-1]))
    grid = make_grid(tiles, nrow=K, padding=padding, pad_value=1.0)
    w = tiles.shape[-1]
    band_h = max(12, w // 8)
    header = torch.ones(3, band_h + padding, grid.shape[-1])
    for k, title in enumerate(titles):
        x = padding + k * (w + padding)
        header[:, padding:, x:x + w] = title_band(title, w, band_h)
    return torch.cat([header, grid], 1)


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


__all__ = ["reconstruction_grid", "graphics_grid", "shape_views", "splat_points", "shade_grey", "render_views",
           "to_display", "r2n2_view_rotation",
           "pose_error_degrees", "image_statistics", "frechet_distance", "save_textured_ply", "silhouette_iou"]
