"""Z-buffer triangle rasterizer in plain torch (CPU-first, vectorised over faces), with Lambert shading.

    from modules.geometry.rasterizer import look_at_camera, render_mesh
    cam = look_at_camera(eye=(1, 1.5, 3), target=(0, 0.5, 0), fov_deg=45, width=224, height=224)
    out = render_mesh(vertices, faces, cam)       # out["rgba"] (H,W,4), out["depth"], out["face_index"], out["mask"]

How it works (hard rasterization, one face per pixel, like PyTorch3D's `MeshRasterizer` with
`RasterizationSettings(blur_radius=0, faces_per_pixel=1)`):

1. `visible_faces` (no autograd): vertices go to camera space and pixels; faces with a vertex in front
   of `near` or behind `far` are dropped (no clipping), as are degenerate and off-screen ones. Each face's
   screen box (clipped to the image) is cut into scanlines along its longer side, and each scanline into
   the span of pixel centres the three edge functions can accept (solved per line, widened by a bound on
   rounding). All faces' lines, then all spans' pixels, are flattened with repeat_interleave and tested
   at once in chunks (no Python loop over faces); the centres inside all three edge functions get a
   perspective-correct depth (1/z interpolated linearly in screen space). A scatter-min over pixels is
   the z-buffer; ties go to the lower face index. Work per face is its scanlines plus the pixels it
   covers, not its box area: a long thin triangle (a cylinder's side, a fan's spoke) costs one span per
   line instead of a mostly empty box. The spans are supersets of the accepted pixels, so the picture is
   exactly that of testing every pixel of every box.
2. `rasterize` then recomputes, for the winning (pixel, face) pairs only and with autograd,
   perspective-correct barycentric coordinates and depth. So depth, interpolated colours and shading
   are differentiable w.r.t. vertex positions, colours and camera (K, R, t) wherever a face is
   visible; coverage (which face a pixel sees, and the silhouette edge) is not.
3. `shade_lambert` / `render_mesh`: face normals, two-sided Lambert `ambient + (1-ambient)|n.l|`
   times the (vertex-interpolated or per-face) colour, composited over the background.

Extending to a soft / differentiable rasterizer (SoftRas; PyTorch3D's `RasterizationSettings(blur_radius,
faces_per_pixel)` + `SoftSilhouetteShader` / `SoftPhongShader`) replaces step 1's hard selection:
  * bounding boxes grow by `blur_radius` (in pixels or NDC) so faces near a pixel become candidates too;
  * the inside test becomes a signed squared distance d from the pixel centre to the triangle
    (negative inside), giving a coverage probability D = sigmoid(-d / sigma);
  * instead of one winner, keep the K nearest faces per pixel (`faces_per_pixel`), i.e. a top-K
    over candidates instead of the scatter-min, with their barycentrics and depths;
  * aggregation: silhouette alpha = 1 - prod(1 - D_k); colour = softmax over depth with temperature
    gamma (weights D_k * exp((zfar_norm_k - max) / gamma), plus a background weight).
The candidate generation (chunked scanline spans) and the differentiable barycentric/depth
recomputation in `_barycentrics` are meant to be reused as they are; `Fragments` would gain a K axis.
"""
import math
from dataclasses import dataclass

import torch

from modules.geometry.cameras import (Camera, look_at_camera, look_at_rotation, orbit_cameras,  # noqa: F401
                                      spherical_camera)
from modules.utils import ShapeLabError

DEFAULT_COLOR = (0.7, 0.7, 0.7)


@dataclass
class RasterSettings:
    """cull_backfaces: drop faces whose front (counter-clockwise winding) points away from the camera.
    max_candidates: how many (face, pixel) candidates one chunk tests at once (and a quarter as many
    scanlines); bounds memory (about 100 bytes each) and trades it for fewer Python iterations."""
    cull_backfaces: bool = False
    max_candidates: int = 1 << 21


@dataclass
class Fragments:
    """Per-pixel rasterization result for one mesh and one camera (names as in PyTorch3D, K=1 squeezed).

    face_index (H,W) long, -1 where no face; depth (H,W) camera-space z, +inf background;
    bary (H,W,3) perspective-correct barycentric coordinates of the visible face, 0 background;
    mask (H,W) bool coverage.
    """
    face_index: torch.Tensor
    depth: torch.Tensor
    bary: torch.Tensor
    mask: torch.Tensor


def _check_mesh(vertices, faces):
    v = vertices if isinstance(vertices, torch.Tensor) else torch.as_tensor(vertices, dtype=torch.float32)
    if not v.is_floating_point():
        v = v.float()
    f = torch.as_tensor(faces, dtype=torch.long, device=v.device)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ShapeLabError(f"vertices: expected shape (V,3), got {tuple(v.shape)}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ShapeLabError(f"faces: expected shape (F,3) of vertex indices, got {tuple(f.shape)}")
    if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
        raise ShapeLabError(f"faces: indices must lie in [0, {v.shape[0] - 1}], got [{int(f.min())}, {int(f.max())}]")
    return v, f


def _to_screen(vertices, camera):
    """Vertices -> (uv (V,2) pixels, z (V,) camera depth, p_cam (V,3)), in the vertices' dtype."""
    dt, dev = vertices.dtype, vertices.device
    p_cam = vertices @ camera.R.to(dev, dt).transpose(0, 1) + camera.t.to(dev, dt)
    uvw = p_cam @ camera.K.to(dev, dt).transpose(0, 1)
    # Points at or behind the camera get a safe divisor; their faces are discarded by the near test.
    w = torch.where(uvw[:, 2:3] > 1e-12, uvw[:, 2:3], torch.ones_like(uvw[:, 2:3]))
    return uvw[:, :2] / w, p_cam[:, 2], p_cam


def _edge(ax, ay, bx, by, px, py):
    """Twice the signed area of (a, b, p): (a-p) x (b-p). Swapping a and b negates it exactly."""
    return (ax - px) * (by - py) - (ay - py) * (bx - px)


def _groups(counts, budget):
    """Bounds [a, b) splitting consecutive items with these (L,) counts into groups of about `budget` in all
    (an item over the budget gets a group of its own) -> list of group starts, then L."""
    if counts.numel() == 0:
        return [0]
    starts = torch.cumsum(counts, 0) - counts
    group = torch.div(starts, max(1, int(budget)), rounding_mode="floor")
    return torch.searchsorted(group, torch.unique_consecutive(group)).tolist() + [counts.numel()]


def _expand(counts):
    """(L,) counts -> (item (N,), offset (N,)), N = counts.sum(): item i repeated counts[i] times with
    offsets 0..counts[i]-1 (a ragged arange without a Python loop)."""
    total = int(counts.sum())
    item = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    starts = torch.cumsum(counts, 0) - counts
    return item, torch.arange(total, device=counts.device) - starts[item]


@torch.no_grad()
def visible_faces(uv, z, faces, width, height, near, far, p_cam=None, settings=None):
    """Hard visibility: (H*W,) long index of the nearest face covering each pixel centre, -1 if none."""
    settings = settings or RasterSettings()
    n_pix = width * height
    dev = uv.device
    out = torch.full((n_pix,), -1, dtype=torch.long, device=dev)
    if faces.shape[0] == 0:
        return out
    uv, z = uv.detach().double(), z.detach().double()
    tri_uv, tri_z = uv[faces], z[faces]                                  # (F,3,2), (F,3)
    valid = (tri_z > near).all(1) & (tri_z < far).all(1)
    area2 = _edge(tri_uv[:, 1, 0], tri_uv[:, 1, 1], tri_uv[:, 2, 0], tri_uv[:, 2, 1],
                  tri_uv[:, 0, 0], tri_uv[:, 0, 1])
    valid &= area2.abs() > 1e-12
    if settings.cull_backfaces and p_cam is not None:
        pc = p_cam.detach().double()[faces]
        normal = torch.linalg.cross(pc[:, 1] - pc[:, 0], pc[:, 2] - pc[:, 0])
        valid &= (normal * pc[:, 0]).sum(1) < 0                           # normal faces the camera
    # Pixel columns j whose centre j+0.5 lies in [umin, umax], clipped to the image.
    x0 = torch.ceil(tri_uv[..., 0].amin(1) - 0.5).clamp(min=0)
    x1 = torch.floor(tri_uv[..., 0].amax(1) - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(tri_uv[..., 1].amin(1) - 0.5).clamp(min=0)
    y1 = torch.floor(tri_uv[..., 1].amax(1) - 0.5).clamp(max=height - 1)
    valid &= (x1 >= x0) & (y1 >= y0)
    ids = torch.nonzero(valid).squeeze(1)
    if ids.numel() == 0:
        return out
    x0, x1, y0, y1 = (a[ids] for a in (x0, x1, y0, y1))                 # double, integral values
    # Edge functions as affine maps of the pixel centre, w_k(p) = a_k*px + b_k*py + c_k, for the edges
    # opposite vertex k, multiplied by sign(area) so "inside" is w >= 0 for either winding. Coefficients
    # of a shared edge are exact negatives in the two faces, so no pixel centre falls through a crack.
    tri = tri_uv[ids]
    sign = torch.sign(area2[ids])
    coef = []
    for k in range(3):
        B, C = tri[:, (k + 1) % 3], tri[:, (k + 2) % 3]
        coef.append(torch.stack([B[:, 1] - C[:, 1], C[:, 0] - B[:, 0], B[:, 0] * C[:, 1] - B[:, 1] * C[:, 0]], 1))
    coef = (torch.stack(coef, 1) * sign[:, None, None]).float()           # (n,3,3): the test's exact values
    inv_z = 1.0 / tri_z[ids]
    abs_area2 = area2[ids].abs()

    # Scanlines instead of whole boxes (a long thin triangle's box is mostly empty): each face is cut into
    # lines along the longer side of its box (rows if the box is wider than tall, else columns) and each
    # line into the span of pixel centres that can pass the three edge tests; only those are tested. The
    # span is solved in double from the float32 coefficients and widened by a bound on float32's rounding
    # of w, so it is a superset of the pixels the exact float32 test accepts: the picture is the same as
    # testing every pixel of the box. Work per face: its lines + the pixels it covers, not its box area.
    cd = coef.double()
    rows = (x1 - x0) >= (y1 - y0)
    r3 = rows[:, None]
    a_t = torch.where(r3, cd[:, :, 0], cd[:, :, 1])                      # along the line
    b_s = torch.where(r3, cd[:, :, 1], cd[:, :, 0])                      # across lines
    side = float(max(width, height) + 1)
    slack = 1e-6 * ((cd[:, :, 0].abs() + cd[:, :, 1].abs()) * side + cd[:, :, 2].abs())   # >> float32 error
    c_s = cd[:, :, 2] + slack
    s0, s1 = torch.where(rows, y0, x0), torch.where(rows, y1, x1)
    t0, t1 = torch.where(rows, x0, y0), torch.where(rows, x1, y1)
    # On line s (centre s + 0.5) edge k passes where a_k t + b_k (s + 0.5) + c_k >= 0: t >= alpha_k s + beta_k
    # for a_k > 0 (a lower end), t <= ... for a_k < 0 (an upper end). The three a_k sum to zero, so a face
    # has at most two ends of each kind: sorted by a_k, edge 0 and 1 may be lower ends, 1 and 2 upper ends
    # (a missing end is alpha = 0, beta = -+inf). Edges with a_k = 0 bound s instead.
    safe = torch.where(a_t == 0, torch.ones_like(a_t), a_t)
    alpha, beta = -b_s / safe, -(0.5 * b_s + c_s) / safe - 0.5         # -0.5: pixel index of the centre
    order = torch.argsort(a_t, dim=1, descending=True)
    a_o, alpha, beta = (torch.gather(x, 1, order) for x in (a_t, alpha, beta))
    inf = torch.full_like(beta, math.inf)
    lo_a, lo_b = torch.where(a_o > 0, alpha, 0.0)[:, :2], torch.where(a_o > 0, beta, -inf)[:, :2]
    hi_a, hi_b = torch.where(a_o < 0, alpha, 0.0)[:, 1:], torch.where(a_o < 0, beta, inf)[:, 1:]
    flat = (a_t == 0) & (b_s != 0)
    s_cut = -c_s / torch.where(flat, b_s, torch.ones_like(b_s)) - 0.5
    s0 = torch.maximum(s0, torch.where(flat & (b_s > 0), torch.ceil(s_cut), -inf).amax(1))
    s1 = torch.minimum(s1, torch.where(flat & (b_s < 0), torch.floor(s_cut), inf).amin(1))
    n_lines = (s1 - s0 + 1).clamp(min=0).long()
    # per-face columns, each gathered per line on its own (1-D index_select is the fast gather)
    table = [c.contiguous() for c in (*lo_a.T, *lo_b.T, *hi_a.T, *hi_b.T, t0, t1, s0)]
    cflat = coef.view(-1, 9)

    pix_all, depth_all, face_all = [], [], []
    budget = max(1, settings.max_candidates)
    bounds = _groups(n_lines, max(1, budget // 4))
    for fa, fb in zip(bounds[:-1], bounds[1:]):
        lf, off = _expand(n_lines[fa:fb])
        lf += fa                                                          # face (into ids) of each line
        tab = [c.index_select(0, lf) for c in table]
        s = tab[10] + off
        lo = torch.maximum(tab[0] * s + tab[2], tab[1] * s + tab[3])
        hi = torch.minimum(tab[4] * s + tab[6], tab[5] * s + tab[7])
        i0 = torch.maximum(torch.ceil(lo), tab[8])
        count = (torch.minimum(torch.floor(hi), tab[9]) - i0 + 1).clamp(min=0).long()
        keep = torch.nonzero(count).squeeze(1)
        lf, s, i0, count = lf[keep], s[keep].long(), i0[keep].long(), count[keep]
        sub = _groups(count, budget)
        for la, lb in zip(sub[:-1], sub[1:]):
            line, t = _expand(count[la:lb])
            line += la
            face, t = lf[line], i0[line] + t
            row = rows[face]
            px = torch.where(row, t, s[line])
            py = torch.where(row, s[line], t)
            cx, cy = px.float() + 0.5, py.float() + 0.5
            cf = cflat[face]
            inside = (cf[:, 0] * cx + cf[:, 1] * cy + cf[:, 2]) >= 0
            inside &= (cf[:, 3] * cx + cf[:, 4] * cy + cf[:, 5]) >= 0
            inside &= (cf[:, 6] * cx + cf[:, 7] * cy + cf[:, 8]) >= 0
            m = torch.nonzero(inside).squeeze(1)
            if m.numel() == 0:
                continue
            face, px, py = face[m], px[m], py[m]
            qx, qy = cx[m].double(), cy[m].double()
            fc = cf[m].double().view(-1, 3, 3)
            w = fc[:, :, 0] * qx[:, None] + fc[:, :, 1] * qy[:, None] + fc[:, :, 2]   # (m,3)
            w = w / abs_area2[face, None]
            zinv = (w * inv_z[face]).sum(1)
            pix_all.append(py * width + px)
            depth_all.append(1.0 / zinv)
            face_all.append(ids[face])
    if not pix_all:
        return out
    pix, depth, face = torch.cat(pix_all), torch.cat(depth_all), torch.cat(face_all)
    zbuf = torch.full((n_pix,), float("inf"), dtype=depth.dtype, device=dev).scatter_reduce(0, pix, depth, "amin")
    win = depth == zbuf[pix]
    big = torch.iinfo(torch.long).max
    best = torch.full((n_pix,), big, dtype=torch.long, device=dev).scatter_reduce(0, pix[win], face[win], "amin")
    return torch.where(best == big, out, best)


def _barycentrics(uv, z, faces, face_of_pixel, pixel_ids, width):
    """Differentiable perspective-correct barycentrics (P,3) and depth (P,) at the given pixel centres."""
    f = faces[face_of_pixel]
    tri_uv, tri_z = uv[f], z[f]                                           # (P,3,2), (P,3)
    cx = (pixel_ids % width).to(uv.dtype) + 0.5
    cy = torch.div(pixel_ids, width, rounding_mode="floor").to(uv.dtype) + 0.5
    A, B, C = tri_uv[:, 0], tri_uv[:, 1], tri_uv[:, 2]
    area2 = _edge(B[:, 0], B[:, 1], C[:, 0], C[:, 1], A[:, 0], A[:, 1])
    w = torch.stack([_edge(B[:, 0], B[:, 1], C[:, 0], C[:, 1], cx, cy),
                     _edge(C[:, 0], C[:, 1], A[:, 0], A[:, 1], cx, cy),
                     _edge(A[:, 0], A[:, 1], B[:, 0], B[:, 1], cx, cy)], dim=1) / area2[:, None]
    b = w / tri_z                                                          # screen weights / z
    zinv = b.sum(1)
    return b / zinv[:, None], 1.0 / zinv


def rasterize(vertices, faces, camera, settings=None):
    """Rasterize one triangle mesh seen by `camera` into `Fragments` (see module docstring)."""
    if not isinstance(camera, Camera):
        raise ShapeLabError(f"rasterize: camera must be a modules.geometry.cameras.Camera, got {type(camera).__name__}")
    v, f = _check_mesh(vertices, faces)
    H, W = camera.height, camera.width
    uv, z, p_cam = _to_screen(v, camera)
    face_of = visible_faces(uv, z, f, W, H, camera.near, camera.far, p_cam, settings)
    pix = torch.nonzero(face_of >= 0).squeeze(1)
    bary_p, depth_p = _barycentrics(uv, z, f, face_of[pix], pix, W)
    depth = torch.full((H * W,), float("inf"), dtype=v.dtype, device=v.device).index_put((pix,), depth_p)
    bary = torch.zeros((H * W, 3), dtype=v.dtype, device=v.device).index_put((pix,), bary_p)
    return Fragments(face_index=face_of.view(H, W), depth=depth.view(H, W), bary=bary.view(H, W, 3),
                     mask=(face_of >= 0).view(H, W))


def face_normals(vertices, faces):
    """(F,3) unit normals, right-hand rule on the face winding."""
    tri = vertices[faces]
    n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _colors(colors, n, name, dtype, device):
    c = colors if isinstance(colors, torch.Tensor) else torch.as_tensor(colors, dtype=dtype)
    c = c.to(device, dtype)
    if c.ndim == 1 and c.shape[0] == 3:
        c = c.expand(n, 3)
    if c.ndim != 2 or c.shape != (n, 3):
        raise ShapeLabError(f"{name}: expected shape (3,) or ({n},3) RGB in [0,1], got {tuple(c.shape)}")
    return c


def shade_lambert(fragments, vertices, faces, vertex_colors=None, face_colors=None, light_dir=None,
                  ambient=0.3, background=(1.0, 1.0, 1.0), camera=None):
    """(H,W,4) RGBA: two-sided Lambert shading of the visible faces over `background`.

    light_dir: world direction towards the (directional) light; default: from the camera (headlight).
    Colours: per-vertex (interpolated with the barycentrics), per-face, or a default grey.
    """
    v, f = _check_mesh(vertices, faces)
    if vertex_colors is not None and face_colors is not None:
        raise ShapeLabError("render_mesh: give vertex_colors or face_colors, not both")
    H, W = fragments.face_index.shape
    pix = torch.nonzero(fragments.mask.reshape(-1)).squeeze(1)
    fid = fragments.face_index.reshape(-1)[pix]
    if vertex_colors is not None:
        vc = _colors(vertex_colors, v.shape[0], "vertex_colors", v.dtype, v.device)
        base = (fragments.bary.reshape(-1, 3)[pix, :, None] * vc[f[fid]]).sum(1)
    elif face_colors is not None:
        base = _colors(face_colors, f.shape[0], "face_colors", v.dtype, v.device)[fid]
    else:
        base = torch.tensor(DEFAULT_COLOR, dtype=v.dtype, device=v.device).expand(pix.numel(), 3)
    if light_dir is None:
        if camera is None:
            raise ShapeLabError("shade_lambert: give light_dir or the camera (for a headlight)")
        light = -camera.forward.to(v.device, v.dtype)
    else:
        light = torch.as_tensor(light_dir, dtype=v.dtype, device=v.device)
        if light.shape != (3,) or light.norm() == 0:
            raise ShapeLabError(f"light_dir: expected a non-zero 3-vector, got {light.tolist()}")
    light = light / light.norm()
    lambert = (face_normals(v, f)[fid] @ light).abs()                     # two-sided
    rgb_p = base * (ambient + (1.0 - ambient) * lambert)[:, None]
    bg = torch.as_tensor(background, dtype=v.dtype, device=v.device)
    rgb = bg.expand(H * W, 3).index_put((pix,), rgb_p)
    alpha = fragments.mask.reshape(-1, 1).to(v.dtype)
    return torch.cat([rgb, alpha], dim=1).view(H, W, 4)


def render_mesh(vertices, faces, camera, vertex_colors=None, face_colors=None, light_dir=None, ambient=0.3,
                background=(1.0, 1.0, 1.0), settings=None):
    """Render one mesh: dict(rgba (H,W,4) float, depth (H,W) +inf background, face_index (H,W) long -1
    background, mask (H,W) bool, bary (H,W,3)). See the module docstring for conventions."""
    frags = rasterize(vertices, faces, camera, settings)
    rgba = shade_lambert(frags, vertices, faces, vertex_colors, face_colors, light_dir, ambient, background,
                         camera)
    return {"rgba": rgba, "depth": frags.depth, "face_index": frags.face_index, "mask": frags.mask,
            "bary": frags.bary}


def render_silhouette(vertices, faces, camera, settings=None):
    """(H,W) float 0/1 coverage mask (hard; a soft version would return 1 - prod(1 - D))."""
    v, _ = _check_mesh(vertices, faces)
    return rasterize(vertices, faces, camera, settings).mask.to(v.dtype)


def to_uint8_image(rgba, background=None):
    """(H,W,4) float RGBA -> (H,W,4) uint8 (for PNG/GIF writers); with `background` (3,) -> (H,W,3) RGB."""
    a = rgba.detach().cpu().clamp(0, 1)
    if background is not None:
        bg = torch.as_tensor(background, dtype=a.dtype)
        a = a[..., :3] * a[..., 3:] + bg * (1 - a[..., 3:])
    return (a * 255 + 0.5).to(torch.uint8).numpy()
