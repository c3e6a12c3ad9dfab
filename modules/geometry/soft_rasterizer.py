"""Differentiable soft rasterizer (SoftRas, Liu et al. ICCV 2019) in plain torch: batched, CPU and GPU.

    from modules.geometry.soft_rasterizer import SoftRasterizationSettings, look_at_view_transform, soft_render
    R, T = look_at_view_transform(dist=1.2, elev=0.0, azim=0.0)     # (1,3,3), (1,3): genren's eye (0,0,1.2)
    settings = SoftRasterizationSettings(image_size=64)             # genren's renderer (128² pooled to 64²)
    rgba = soft_render(verts, faces, R, T, colors=vertex_rgb, settings=settings)      # (B,4,64,64)
    alpha = soft_silhouette(verts, faces, R, T, settings=settings)                    # (B,1,64,64)

Semantics (those of SoftRas's `SoftRenderer` / `soft_rasterize_cuda_kernel.cu`, which genren uses):
  * camera: look-at view transform (PyTorch3D convention, see below) + perspective with half-angle
    `viewing_angle` (SoftRas's `perspective`: x_ndc = x / (z tan(angle)); 30° = a 60° full field of view);
  * per pixel p and face f: squared screen-space (NDC) distance d² from the pixel centre to the triangle,
    D = sigmoid(δ d²/σ), δ = +1 strictly inside, -1 outside; outside pairs with d² >= log(1/dist_eps - 1)·σ
    are skipped (D < dist_eps there), exactly SoftRas's threshold;
  * alpha = 1 - Π_f (1 - D) (computed as 1 - exp Σ log σ(-δd²/σ), stable and exact);
  * colour = softmax over normalised depth z̃ = (far - z)/(far - near) with temperature γ:
    Σ_f D exp((z̃ - z̃max)/γ) c_f + exp((eps - z̃max)/γ)·background, divided by the sum of the weights;
    z is the perspective-correct depth at the clipped barycentrics, c_f the vertex colours interpolated with
    the clipped screen-space barycentrics (SoftRas; `perspective_correct=True` corrects them for depth);
  * fill_back=True (SoftRas's `double_side`): back-facing faces contribute to the colour as well;
    with fill_back=False only faces counter-clockwise on screen (front, normal towards the camera, as
    `rasterizer.py`'s `cull_backfaces`) are coloured, while every face still counts in alpha (as in SoftRas);
  * anti_aliasing = k: rasterize at k·image_size and average-pool k×k (SoftRas's anti_aliasing=True is k=2);
  * hard=True: D = 1 on pixel centres inside the triangle (barycentrics in [0,1]), alpha = covered or not,
    colour of the nearest (front, unless fill_back) face: identical coverage and face ids to the z-buffer
    `rasterizer.rasterize` on the same camera (`camera_from_view_transform`).

Where this differs from SoftRas, on purpose:
  * images are not mirrored. SoftRas/NMR's look_at has camera x = up × forward (the viewer's left) and draws
    it to the right; we follow PyTorch3D (NDC +x is the left of the image), so renders agree with the
    z-buffer rasterizer, with cameras.py and with PyTorch3D. (SoftRas's front-face test is mirrored with it.)
  * fill_back is SoftRas's `double_side` flag (what its kernel does), not NMR's duplication of the faces
    with reversed winding: duplication would square (1 - D) in alpha and double every colour weight.
  * near/far: a face with a vertex in front of `near` is dropped whole (its projection is meaningless
    behind the eye; the z-buffer rasterizer does the same); a pixel where the face's interpolated depth
    exceeds `far` is skipped for alpha as well as colour (SoftRas skips it for colour only).

Cost (why this is not a pixels × faces tensor): each face is evaluated only on the pixel centres of its
screen bounding box grown by the support radius r = sqrt(log(1/dist_eps - 1)·σ) (0 in hard mode), where
D falls under dist_eps. Pass 1 (no autograd, chunked to `max_pairs` pairs) enumerates those (face, pixel)
pairs with a vectorised repeat_interleave (no per-face Python loop) and keeps the ones that contribute
(inside, or within r; the barycentrics alone settle the strictly inside pairs and those beyond r of an
edge line, so only the band around the edges needs the full distance); pass 2 recomputes only the kept
pairs with autograd and scatters them into per-pixel sums (index_add). Per-face boxes are tighter than 8×8/16×16 tiles for the small faces of a
2000-face mesh (a 3×3-pixel face would otherwise be tested against a whole tile). With genren's σ = 1e-5,
r ≈ 0.0096 NDC ≈ 0.6 pixel at 128², so the work is close to that of a hard rasterizer plus a thin band.

Camera convention (PyTorch3D's): X_view = X_world @ R + T with R (B,3,3), T (B,3); view space x left,
y up, z forward (depth); NDC x_ndc = x/(z·tan(angle)), y_ndc = y/(z·tan(angle)); pixel (row i, column j) of
an S×S image has its centre at x_ndc = 1 - (2j+1)/S, y_ndc = 1 - (2i+1)/S (row 0 at the top, column 0 at
+x_ndc, i.e. the viewer's left). In OpenCV terms (cameras.py): R_cv = diag(-1,-1,1) R^T, t_cv =
diag(-1,-1,1) T, K from a vertical field of view of 2·viewing_angle.
"""
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from modules.geometry.cameras import Camera, intrinsics_from_fov
from modules.utils import ShapeLabError


@dataclass
class SoftRasterizationSettings:
    """Settings of `soft_render` (defaults: genren's renderer, SoftRas's defaults otherwise).

    image_size: output side H = W (square, as SoftRas); rasterized at image_size * anti_aliasing.
    sigma: σ of D = sigmoid(δ d²/σ), d in NDC units. gamma: softmax temperature over normalised depth.
    dist_eps: D below which outside pairs are skipped (SoftRas: threshold log(1/dist_eps - 1)·σ on d²).
    near, far: camera-space depth range. fill_back: colour back faces too (SoftRas's double_side).
    background: colour of empty pixels, one value per colour channel. anti_aliasing: supersampling factor
    k >= 1 (k×k average pooling). viewing_angle: half field of view in degrees (SoftRas's perspective).
    eps: the background's normalised depth in the softmax. hard: z-buffer coverage and nearest-face colour.
    perspective_correct: interpolate colours with perspective-correct barycentrics (SoftRas: False).
    max_pairs: (face, pixel) candidates evaluated at once in the culling pass; bounds its memory.
    """
    image_size: int = 64
    sigma: float = 1e-5
    gamma: float = 1e-4
    dist_eps: float = 1e-4
    near: float = 0.05
    far: float = 100.0
    fill_back: bool = True
    background: Sequence[float] = (0.0, 0.0, 0.0)
    anti_aliasing: int = 2
    viewing_angle: float = 30.0
    eps: float = 1e-3
    hard: bool = False
    perspective_correct: bool = False
    max_pairs: int = 1 << 20

    def __post_init__(self):
        if int(self.image_size) <= 0 or int(self.anti_aliasing) < 1:
            raise ShapeLabError(f"SoftRasterizationSettings: need image_size > 0 and anti_aliasing >= 1, got "
                                f"{self.image_size}, {self.anti_aliasing}")
        if not (0 < self.near < self.far):
            raise ShapeLabError(f"SoftRasterizationSettings: need 0 < near < far, got {self.near}, {self.far}")
        if self.sigma <= 0 or self.gamma <= 0:
            raise ShapeLabError(f"SoftRasterizationSettings: sigma and gamma must be > 0, got {self.sigma}, "
                                f"{self.gamma}")
        if not 0 < self.dist_eps < 0.5:
            raise ShapeLabError(f"SoftRasterizationSettings: dist_eps must lie in (0, 0.5), got {self.dist_eps}")
        if not 0 < self.viewing_angle < 90:
            raise ShapeLabError(f"SoftRasterizationSettings: viewing_angle (half angle, degrees) must lie in "
                                f"(0, 90), got {self.viewing_angle}")

    @property
    def raster_size(self):
        return int(self.image_size) * int(self.anti_aliasing)

    @property
    def threshold(self):
        """Squared NDC distance beyond which an outside pixel is skipped (0 in hard mode)."""
        return 0.0 if self.hard else math.log(1.0 / self.dist_eps - 1.0) * self.sigma


# --- cameras -------------------------------------------------------------------------------------------

def _as_batch(x, name, dtype, device, width=None):
    t = torch.as_tensor(x, dtype=dtype, device=device) if not isinstance(x, torch.Tensor) else x.to(device, dtype)
    if width is None:
        return t.reshape(-1)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] != width:
        raise ShapeLabError(f"look_at_view_transform: '{name}' must have shape ({width},) or (N,{width}), "
                            f"got {tuple(t.shape)}")
    return t


def look_at_rotation(camera_position, at=((0.0, 0.0, 0.0),), up=((0.0, 1.0, 0.0),)):
    """(N,3) camera centres -> (N,3,3) R, PyTorch3D convention (columns: view x (left), y (up), z (forward))."""
    C = camera_position
    at = _as_batch(at, "at", C.dtype, C.device, 3)
    up = _as_batch(up, "up", C.dtype, C.device, 3)
    z = at - C
    if (z.norm(dim=1) < 1e-12).any():
        raise ShapeLabError("look_at_view_transform: the camera position coincides with 'at'")
    z = F.normalize(z, dim=1)
    x = torch.linalg.cross(up.expand_as(z), z, dim=1)
    if (x.norm(dim=1) < 1e-6).any():
        raise ShapeLabError("look_at_view_transform: 'up' is parallel to the viewing direction")
    x = F.normalize(x, dim=1)
    y = F.normalize(torch.linalg.cross(z, x, dim=1), dim=1)
    return torch.stack([x, y, z], dim=1).transpose(1, 2)


def look_at_view_transform(dist=1.0, elev=0.0, azim=0.0, degrees=True, eye=None, at=((0.0, 0.0, 0.0),),
                           up=((0.0, 1.0, 0.0),), device="cpu", dtype=torch.float32):
    """(R (N,3,3), T (N,3)) world->view for cameras looking at `at`, as PyTorch3D's function of that name.

    The camera sits at `eye` (N,3), or at distance `dist` with elevation `elev` above the xz-plane and azimuth
    `azim` (0 on +z, 90 on +x; y-up world), relative to `at`. dist/elev/azim broadcast to N; tensors keep
    autograd. X_view = X_world @ R + T.
    """
    if eye is not None:
        C = _as_batch(eye, "eye", dtype, device, 3)
        at_t = _as_batch(at, "at", C.dtype, C.device, 3)
    else:
        d, e, a = (_as_batch(v, n, dtype, device) for v, n in ((dist, "dist"), (elev, "elev"), (azim, "azim")))
        d, e, a = torch.broadcast_tensors(d, e, a)
        if degrees:
            e, a = e * (math.pi / 180.0), a * (math.pi / 180.0)
        at_t = _as_batch(at, "at", d.dtype, d.device, 3)
        C = torch.stack([d * torch.cos(e) * torch.sin(a), d * torch.sin(e), d * torch.cos(e) * torch.cos(a)], 1)
        C = C + at_t
    n = max(C.shape[0], at_t.shape[0])
    C = C.expand(n, 3)
    R = look_at_rotation(C, at_t.expand(n, 3), up)
    T = -torch.bmm(R.transpose(1, 2), C[:, :, None])[:, :, 0]
    return R, T


def camera_from_view_transform(R, T, image_size, viewing_angle=30.0, near=0.05, far=100.0):
    """list of B cameras.Camera (OpenCV pinhole) equal to the soft rasterizer's (R (B,3,3), T (B,3)) camera on an
    image_size² image: what `rasterizer.rasterize` needs to render the very same view."""
    flip = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=R.dtype, device=R.device))
    K = intrinsics_from_fov(2.0 * viewing_angle, image_size, image_size, dtype=R.dtype)
    return [Camera(K=K, R=flip @ R[b].transpose(0, 1), t=flip @ T[b], width=image_size, height=image_size,
                   near=near, far=far) for b in range(R.shape[0])]


def project_vertices(verts, R, T, viewing_angle=30.0):
    """(B,V,3) world vertices -> (B,V,3) [x_ndc, y_ndc, z_view] (SoftRas look_at + perspective)."""
    view = verts @ R.to(verts.dtype) + T.to(verts.dtype)[:, None, :]
    z = view[..., 2]
    # Vertices at or behind the eye get a harmless divisor (their faces are dropped by the near test), so that
    # backward never divides 0 by 0.
    zs = torch.where(z > 1e-9, z, torch.ones_like(z)) * math.tan(math.radians(viewing_angle))
    return torch.stack([view[..., 0] / zs, view[..., 1] / zs, z], dim=-1)


# --- the rasterizer ------------------------------------------------------------------------------------

def _cross2(ax, ay, bx, by):
    return ax * by - ay * bx


def _face_table(fv):
    """(G,3,3) NDC faces -> (7,3,G) per-face constants, row k of each block for the edge opposite vertex k
    (from vertex k+1 to k+2): barycentric coefficients A, B, C (w_k = A px + B py + C, SoftRas's face_inv),
    altitude h (w_k h is the signed distance to the edge line), edge length |e|, mu (the edge parameter of
    the foot moves by mu per unit of w_k) and 1/z. Differentiable; pairs then gather one column each."""
    x, y, z = fv[..., 0], fv[..., 1], fv[..., 2]                       # (G,3)
    x1, y1, x2, y2 = x.roll(-1, 1), y.roll(-1, 1), x.roll(-2, 1), y.roll(-2, 1)
    area = _cross2(x[:, 1] - x[:, 0], y[:, 1] - y[:, 0], x[:, 2] - x[:, 0], y[:, 2] - y[:, 0])
    area = torch.where(area >= 0, area.clamp_min(1e-10), area.clamp_max(-1e-10))[:, None]  # SoftRas's clamp
    ex, ey = x2 - x1, y2 - y1
    e2 = (ex * ex + ey * ey).clamp_min(1e-20)
    elen = torch.sqrt(e2)
    table = [-ey / area, ex / area, (ey * x1 - ex * y1) / area, area.abs() / elen, elen,
             ((x - x1) * ex + (y - y1) * ey) / e2, 1.0 / z]
    return torch.stack(table, 0).transpose(1, 2).contiguous()


def _take(table, idx):
    """table (..., G)[..., idx] as one index_select (its backward is an index_add, unlike advanced indexing)."""
    return torch.index_select(table.reshape(-1, table.shape[-1]), 1, idx).view(*table.shape[:-1], idx.numel())


def _pair_terms(tab, px, py, settings):
    """Per (face, pixel) pair, from the gathered face table tab (7,3,P) and the pixel centres px, py (P,):
    barycentrics w (3,P), clipped w_clip (3,P), depth zp (P,), s (P,) with D = sigmoid(s) (None in hard
    mode), strict inside (P,) and inclusive inside (P,)."""
    A, Bc, C, h, elen, mu, invz = tab.unbind(0)
    w = A * px + Bc * py + C
    inside = ((w > 0) & (w < 1)).all(0)
    inside_incl = ((w >= 0) & (w <= 1)).all(0)
    s = None
    if not settings.hard:
        # Squared distance to the nearest edge segment = perpendicular part (w_k h_k)² + the part beyond the
        # segment's ends along it; t_k = w_{k+2} + mu_k w_k is the foot's parameter from vertex k+1 to k+2.
        # For a point inside, the nearest boundary point is a perpendicular foot: one formula for both sides.
        t = w.roll(-2, 0) + mu * w
        beyond = (t - t.clamp(0.0, 1.0)) * elen
        perp = w * h
        d2 = (perp * perp + beyond * beyond).amin(0)
        s = torch.where(inside, d2, -d2) / settings.sigma
    w_clip = w.clamp(0.0, 1.0)
    w_clip = w_clip / w_clip.sum(0, keepdim=True).clamp_min(1e-5)
    zp = 1.0 / (w_clip * invz).sum(0)
    return w, w_clip, zp, s, inside, inside_incl


def _keep(s, inside_incl, zp, settings):
    """Pairs that contribute: inside, or outside but closer than the support radius; depth not beyond far."""
    ok = inside_incl if settings.hard else (s > -settings.threshold / settings.sigma)
    return ok & (zp <= settings.far)


def _soft_keep(table, g, px, py, below_far, r, settings):
    """`_keep` of the candidate pairs (face g, pixel centre px, py) in soft mode -> (K,) indices of the kept
    ones, the same set as evaluating `_pair_terms` on every pair, but cheaper: the barycentrics alone (A, B,
    C, h: 12 of the table's 21 rows) settle most pairs. Strictly inside (the very test of `_pair_terms`)
    means s = d²/σ >= 0, kept when the face lies safely before far; farther than 1.01 r outside one edge
    line means d > r, dropped. Only the rest (the band around the edges) gets the full distance."""
    A, Bc, C, h = (_take(table[k], g) for k in range(4))
    w = A * px + Bc * py + C                                           # (3,P), as in _pair_terms
    inside = ((w > 0) & (w < 1)).all(0)
    sure = inside & below_far[g]
    far_out = ((w * h) < -1.01 * r).any(0)
    rest = torch.nonzero(~sure & ~far_out).squeeze(1)
    _, _, zp, s, _, incl = _pair_terms(_take(table, g[rest]), px[rest], py[rest], settings)
    ok = torch.zeros_like(sure)
    ok[rest] = _keep(s, incl, zp, settings)
    return torch.nonzero(sure | ok).squeeze(1)


@torch.no_grad()
def _candidate_pairs(fv, S, settings):
    """Culling pass. fv (G,3,3) NDC faces (G = B*F). Returns kept pairs: face index (P,) into G and pixel
    index (P,) into an S*S image (row-major), without autograd."""
    dev = fv.device
    table = _face_table(fv)
    xy, z = fv[..., :2], fv[..., 2]
    valid = (z >= settings.near).all(1) & torch.isfinite(fv).all(2).all(1)
    r = math.sqrt(settings.threshold) + 1e-6                      # slack: the box only culls, never decides
    lo, hi = xy.amin(1) - r, xy.amax(1) + r                        # (G,2)
    # Pixel centres: x_j = 1 - (2j+1)/S decreasing in j, y_i likewise in i.
    half = S / 2.0
    j0 = torch.ceil((1.0 - hi[:, 0]) * half - 0.5).clamp(min=0)
    j1 = torch.floor((1.0 - lo[:, 0]) * half - 0.5).clamp(max=S - 1)
    i0 = torch.ceil((1.0 - hi[:, 1]) * half - 0.5).clamp(min=0)
    i1 = torch.floor((1.0 - lo[:, 1]) * half - 0.5).clamp(max=S - 1)
    valid &= (j1 >= j0) & (i1 >= i0)
    ids = torch.nonzero(valid).squeeze(1)
    empty = torch.zeros(0, dtype=torch.long, device=dev)
    if ids.numel() == 0:
        return empty, empty
    # Faces whose three depths are safely below far: their strictly inside pairs have zp <= far for sure.
    below_far = (z <= settings.far * (1.0 - 1e-4)).all(1)
    j0, i0 = j0[ids].long(), i0[ids].long()
    bw, bh = j1[ids].long() - j0 + 1, i1[ids].long() - i0 + 1
    counts = bw * bh
    ends = torch.cumsum(counts, 0)
    # Chunks of consecutive faces holding about max_pairs candidates (a huge face gets a chunk of its own).
    chunk_of = torch.div(ends - counts, settings.max_pairs, rounding_mode="floor")
    bounds = torch.searchsorted(chunk_of, torch.unique(chunk_of), right=False).tolist() + [ids.numel()]
    faces_out, pix_out = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        cnt = counts[a:b]
        total = int(cnt.sum())
        pos = torch.repeat_interleave(torch.arange(b - a, device=dev), cnt, output_size=total)
        starts = ends[a:b] - cnt
        local = torch.arange(total, device=dev) - (starts - starts[0])[pos]
        bwp = bw[a:b][pos]
        jj = j0[a:b][pos] + local % bwp
        ii = i0[a:b][pos] + torch.div(local, bwp, rounding_mode="floor")
        g = ids[a:b][pos]
        px = 1.0 - (2 * jj + 1).to(fv.dtype) / S
        py = 1.0 - (2 * ii + 1).to(fv.dtype) / S
        if settings.hard:
            _, _, zp, s, _, inside_incl = _pair_terms(_take(table, g), px, py, settings)
            keep = torch.nonzero(_keep(s, inside_incl, zp, settings)).squeeze(1)
        else:
            keep = _soft_keep(table, g, px, py, below_far, r, settings)
        faces_out.append(g[keep])
        pix_out.append(ii[keep] * S + jj[keep])
    return torch.cat(faces_out), torch.cat(pix_out)


def rasterize_soft(face_verts, settings=None, face_colors=None, return_face_index=False):
    """Soft-rasterize NDC triangles at the raster size (image_size * anti_aliasing), without pooling.

    face_verts: (B,F,3,3) per face its three [x_ndc, y_ndc, z_view] (see `project_vertices`).
    face_colors: (B,F,3,C) per face its three vertex colours, or None for alpha only.
    Returns images (B,C+1,S,S) (colour channels then alpha; (B,1,S,S) without colours) and, with
    return_face_index (hard mode only), (B,S,S) long face index in [0,F) of the coloured face, -1 if none.
    Differentiable w.r.t. face_verts and face_colors.
    """
    settings = settings or SoftRasterizationSettings()
    if face_verts.ndim != 4 or face_verts.shape[2:] != (3, 3):
        raise ShapeLabError(f"rasterize_soft: face_verts must have shape (B,F,3,3), got {tuple(face_verts.shape)}")
    if return_face_index and not settings.hard:
        raise ShapeLabError("rasterize_soft: return_face_index needs settings.hard=True")
    B, Fn = face_verts.shape[:2]
    S = settings.raster_size
    dev, dt = face_verts.device, face_verts.dtype
    fv = face_verts.reshape(B * Fn, 3, 3)
    g, pix_local = _candidate_pairs(fv, S, settings)
    pix = torch.div(g, Fn, rounding_mode="floor") * (S * S) + pix_local        # global pixel index
    npix = B * S * S
    jj, ii = pix_local % S, torch.div(pix_local, S, rounding_mode="floor")
    px = 1.0 - (2 * jj + 1).to(dt) / S
    py = 1.0 - (2 * ii + 1).to(dt) / S
    # Pass 2: only the kept pairs, with autograd (one gather of the per-face table, then (3,P) arithmetic).
    w, w_clip, zp, s, inside, _ = _pair_terms(_take(_face_table(fv), g), px, py, settings)

    if settings.hard:
        alpha = torch.zeros(npix, dtype=dt, device=dev).index_fill(0, pix, 1.0)
    else:
        # log Π(1 - D) = Σ log sigmoid(-s): exact, and finite where D rounds to 1.
        log_t = torch.zeros(npix, dtype=dt, device=dev).index_add(0, pix, F.logsigmoid(-s))
        alpha = 1.0 - torch.exp(log_t)
    alpha = alpha.view(B, 1, S, S)
    if face_colors is None:
        return alpha

    C = face_colors.shape[-1]
    if face_colors.shape != (B, Fn, 3, C):
        raise ShapeLabError(f"rasterize_soft: face_colors must have shape ({B},{Fn},3,C), got "
                            f"{tuple(face_colors.shape)}")
    bg = torch.as_tensor(settings.background, dtype=dt, device=dev).reshape(-1)
    if bg.numel() == 1:
        bg = bg.expand(C)
    if bg.numel() != C:
        raise ShapeLabError(f"SoftRasterizationSettings.background: expected {C} values (one per colour "
                            f"channel), got {bg.numel()}")
    if not settings.fill_back:
        # Front = counter-clockwise as the viewer sees it = clockwise in NDC, whose x points left.
        e = fv.detach()
        front = _cross2(e[:, 1, 0] - e[:, 0, 0], e[:, 1, 1] - e[:, 0, 1],
                        e[:, 2, 0] - e[:, 0, 0], e[:, 2, 1] - e[:, 0, 1]) < 0
        sel = torch.nonzero(front[g]).squeeze(1)
        g, pix, w_clip, zp = g[sel], pix[sel], w_clip[:, sel], zp[sel]
        s = None if s is None else s[sel]
    bary = w_clip
    if settings.perspective_correct:
        bary = w_clip * _take(1.0 / fv[:, :, 2].transpose(0, 1), g) * zp
    ctab = face_colors.reshape(B * Fn, 3, C).permute(1, 2, 0)                  # (3,C,G)
    col = (bary[:, None, :] * _take(ctab, g)).sum(0)                           # (C,P)

    if settings.hard:
        zbuf = torch.full((npix,), float("inf"), dtype=dt, device=dev).scatter_reduce(
            0, pix, zp.detach(), "amin")
        win = zp.detach() == zbuf[pix]
        big = torch.iinfo(torch.long).max
        best = torch.full((npix,), big, dtype=torch.long, device=dev).scatter_reduce(0, pix[win], g[win], "amin")
        hit = torch.nonzero(best != big).squeeze(1)
        sel = torch.nonzero(win & (g == best[pix])).squeeze(1)                 # one winning pair per pixel
        rgb = bg[:, None].expand(C, npix).index_copy(1, pix[sel], col[:, sel])
        images = torch.cat([rgb.view(C, B, S, S).transpose(0, 1), alpha], 1)
        if return_face_index:
            face_index = torch.full((npix,), -1, dtype=torch.long, device=dev)
            face_index[hit] = best[hit] % Fn
            return images, face_index.view(B, S, S)
        return images

    zt = (settings.far - zp) / (settings.far - settings.near)
    # The softmax is invariant to the shift z̃max, which only keeps exp() in range: no gradient through it.
    zmax = torch.full((npix,), settings.eps, dtype=dt, device=dev).scatter_reduce(0, pix, zt.detach(), "amax")
    wgt = torch.exp(F.logsigmoid(s) + (zt - zmax[pix]) / settings.gamma)
    num = torch.zeros((C, npix), dtype=dt, device=dev).index_add(1, pix, wgt * col)
    den = torch.zeros(npix, dtype=dt, device=dev).index_add(0, pix, wgt)
    bgw = torch.exp((settings.eps - zmax) / settings.gamma)
    rgb = (num + bgw * bg[:, None]) / (den + bgw)
    return torch.cat([rgb.view(C, B, S, S).transpose(0, 1), alpha], 1)


def _check_inputs(verts, faces, R, T):
    if not isinstance(verts, torch.Tensor) or verts.ndim != 3 or verts.shape[2] != 3:
        raise ShapeLabError(f"soft_render: verts must be a (B,V,3) tensor, got "
                            f"{tuple(verts.shape) if isinstance(verts, torch.Tensor) else type(verts).__name__}")
    B, V = verts.shape[:2]
    f = torch.as_tensor(faces, device=verts.device).long()
    if f.ndim == 2:
        f = f[None].expand(B, -1, -1)
    if f.ndim != 3 or f.shape[0] != B or f.shape[2] != 3:
        raise ShapeLabError(f"soft_render: faces must have shape (F,3) or ({B},F,3), got {tuple(f.shape)}")
    if f.numel() and (int(f.min()) < 0 or int(f.max()) >= V):
        raise ShapeLabError(f"soft_render: face indices must lie in [0, {V - 1}], got [{int(f.min())}, "
                            f"{int(f.max())}]")
    R = R.to(verts.device)
    T = T.to(verts.device)
    if R.ndim != 3 or R.shape[1:] != (3, 3) or T.ndim != 2 or T.shape[1] != 3 or R.shape[0] != T.shape[0] \
            or R.shape[0] not in (1, B):
        raise ShapeLabError(f"soft_render: R must be (B,3,3) or (1,3,3) and T (B,3) or (1,3) with B={B}, got "
                            f"{tuple(R.shape)} and {tuple(T.shape)}")
    return f, R.expand(B, 3, 3), T.expand(B, 3)


def _gather_faces(x, f):
    """x (B,V,D), f (B,F,3) -> (B,F,3,D)."""
    B, Fn = f.shape[:2]
    return torch.gather(x, 1, f.reshape(B, Fn * 3, 1).expand(-1, -1, x.shape[-1])).view(B, Fn, 3, x.shape[-1])


def sample_vertex_colors(texture, verts_uvs, align_corners=False):
    """genren's texturing: per-vertex colours (B,V,C) = grid_sample of the UV image texture (B,C,Ht,Wt) at
    verts_uvs (B,V,2) or (V,2) in grid_sample's [-1,1] coordinates (u horizontal, v vertical; genren's spherical
    U = atan2(x,z)/π, V = -2 asin(y)/π), bilinear with border padding."""
    if texture.ndim != 4:
        raise ShapeLabError(f"soft_render: texture must have shape (B,C,Ht,Wt), got {tuple(texture.shape)}")
    uv = verts_uvs.to(texture.device, texture.dtype)
    if uv.ndim == 2:
        uv = uv[None].expand(texture.shape[0], -1, -1)
    if uv.ndim != 3 or uv.shape[0] != texture.shape[0] or uv.shape[2] != 2:
        raise ShapeLabError(f"soft_render: verts_uvs must have shape (V,2) or ({texture.shape[0]},V,2), got "
                            f"{tuple(verts_uvs.shape)}")
    out = F.grid_sample(texture, uv[:, None], mode="bilinear", padding_mode="border", align_corners=align_corners)
    return out[:, :, 0].transpose(1, 2)                                         # (B,V,C)


def soft_render(verts, faces, R, T, colors=None, texture=None, verts_uvs=None, settings=None,
                return_face_index=False):
    """Render a batch of meshes with vertex colours or a UV texture: (B,C+1,H,W) images, colour then alpha.

    verts (B,V,3) world coordinates; faces (F,3) shared or (B,F,3) long; R (B|1,3,3), T (B|1,3) from
    `look_at_view_transform` (X_view = X @ R + T); colors (B,V,C) per-vertex colours, or texture (B,C,Ht,Wt)
    with verts_uvs (B|-,V,2) (see `sample_vertex_colors`). H = W = settings.image_size; with anti_aliasing k
    the mesh is rasterized at k·H and average-pooled. return_face_index (hard mode): also the (B,kH,kW) face
    index at the raster resolution. Differentiable w.r.t. verts, colors, texture (and R, T).
    """
    settings = settings or SoftRasterizationSettings()
    f, R, T = _check_inputs(verts, faces, R, T)
    if (colors is None) == (texture is None):
        raise ShapeLabError("soft_render: give exactly one of colors (B,V,C) or texture (B,C,Ht,Wt) + verts_uvs "
                            "(use soft_silhouette for alpha only)")
    if texture is not None:
        if verts_uvs is None:
            raise ShapeLabError("soft_render: texture needs verts_uvs (B,V,2) or (V,2)")
        colors = sample_vertex_colors(texture, verts_uvs)
    if colors.ndim != 3 or colors.shape[:2] != verts.shape[:2]:
        raise ShapeLabError(f"soft_render: colors must have shape {tuple(verts.shape[:2])} + (C,), got "
                            f"{tuple(colors.shape)}")
    colors = colors.to(verts.device, verts.dtype)
    ndc = project_vertices(verts, R, T, settings.viewing_angle)
    out = rasterize_soft(_gather_faces(ndc, f), settings, _gather_faces(colors, f), return_face_index)
    images, face_index = (out if return_face_index else (out, None))
    k = int(settings.anti_aliasing)
    if k > 1:
        images = F.avg_pool2d(images, kernel_size=k, stride=k)
    return (images, face_index) if return_face_index else images


def soft_silhouette(verts, faces, R, T, settings=None):
    """(B,1,H,W) soft silhouette alpha = 1 - Π(1 - D) (hard mode: coverage), pooled like `soft_render`."""
    settings = settings or SoftRasterizationSettings()
    f, R, T = _check_inputs(verts, faces, R, T)
    ndc = project_vertices(verts, R, T, settings.viewing_angle)
    alpha = rasterize_soft(_gather_faces(ndc, f), settings)
    k = int(settings.anti_aliasing)
    return F.avg_pool2d(alpha, kernel_size=k, stride=k) if k > 1 else alpha


class SoftRenderer(torch.nn.Module):
    """nn.Module around `soft_render` with a fixed default camera: SoftRas's look_at camera at distance
    `dist` (genren: eye (0, 0, 1.2) looking at the origin, y up). forward(verts, faces, colors=None,
    texture=None, verts_uvs=None, R=None, T=None) -> (B,C+1,H,W); silhouette(verts, faces) -> (B,1,H,W)."""

    def __init__(self, settings=None, dist=1.2, elev=0.0, azim=0.0):
        super().__init__()
        self.settings = settings or SoftRasterizationSettings()
        R, T = look_at_view_transform(dist, elev, azim)
        self.register_buffer("R", R, persistent=False)
        self.register_buffer("T", T, persistent=False)

    def forward(self, verts, faces, colors=None, texture=None, verts_uvs=None, R=None, T=None):
        return soft_render(verts, faces, self.R if R is None else R, self.T if T is None else T, colors, texture,
                           verts_uvs, self.settings)

    def silhouette(self, verts, faces, R=None, T=None):
        return soft_silhouette(verts, faces, self.R if R is None else R, self.T if T is None else T,
                               self.settings)
