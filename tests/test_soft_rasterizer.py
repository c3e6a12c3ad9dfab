"""Soft rasterizer (modules.geometry.soft_rasterizer) against a dense naive reference, finite differences,
the z-buffer rasterizer and closed-form cases."""
import math

import pytest
import torch
import torch.nn.functional as F

from modules.geometry import ico_sphere
from modules.geometry.cameras import spherical_camera
from modules.geometry.rasterizer import rasterize
from modules.geometry.soft_rasterizer import (SoftRasterizationSettings, SoftRenderer, _candidate_pairs,
                                              _gather_faces, camera_from_view_transform, look_at_view_transform,
                                              project_vertices, sample_vertex_colors, soft_render, soft_silhouette)
from modules.utils import ShapeLabError


# --- dense naive reference: every pixel against every face, in SoftRas's own pixel layout ---------------

def _seg_dist2(px, py, ax, ay, bx, by):
    ex, ey = bx - ax, by - ay
    t = (((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey)).clamp(0, 1)
    return (px - ax - t * ex) ** 2 + (py - ay - t * ey) ** 2


def dense_reference(verts, faces, R, T, colors, st):
    """(B,C+1,H,W): SoftRas's per-pixel loop written as (B, pixels, faces) tensors, no culling at all."""
    S = st.image_size * st.anti_aliasing
    view = verts @ R + T[:, None]
    tan = math.tan(math.radians(st.viewing_angle))
    x, y, z = view[..., 0] / (view[..., 2] * tan), view[..., 1] / (view[..., 2] * tan), view[..., 2]
    X, Y, Z = x[:, faces], y[:, faces], z[:, faces]                       # (B,F,3)
    col = colors[:, faces]                                                # (B,F,3,C)
    # SoftRas: pixel (row r, column c) -> yi = S-1-r, xp = (2c+1-S)/S, yp = (2yi+1-S)/S; it draws x_ndc to the
    # right, we draw it to the left (not mirrored), so its image is flipped left-right at the end.
    rr, cc = torch.meshgrid(torch.arange(S, dtype=verts.dtype), torch.arange(S, dtype=verts.dtype), indexing="ij")
    xp = ((2 * cc + 1 - S) / S).reshape(1, -1, 1)
    yp = ((2 * (S - 1 - rr) + 1 - S) / S).reshape(1, -1, 1)
    x0, x1, x2 = (X[:, None, :, k] for k in range(3))
    y0, y1, y2 = (Y[:, None, :, k] for k in range(3))
    det = x2 * (y0 - y1) + x0 * (y1 - y2) + x1 * (y2 - y0)
    w0 = ((y1 - y2) * xp + (x2 - x1) * yp + x1 * y2 - x2 * y1) / det
    w1 = ((y2 - y0) * xp + (x0 - x2) * yp + x2 * y0 - x0 * y2) / det
    w2 = ((y0 - y1) * xp + (x1 - x0) * yp + x0 * y1 - x1 * y0) / det
    w = torch.stack([w0, w1, w2], -1)                                     # (B,P,F,3)
    d2 = torch.minimum(torch.minimum(_seg_dist2(xp, yp, x0, y0, x1, y1), _seg_dist2(xp, yp, x1, y1, x2, y2)),
                       _seg_dist2(xp, yp, x2, y2, x0, y0))
    inside = ((w > 0) & (w < 1)).all(-1)
    thr = math.log(1 / st.dist_eps - 1) * st.sigma
    if st.hard:
        D = ((w >= 0) & (w <= 1)).all(-1).to(verts.dtype)
        keep = D > 0
    else:
        D = torch.sigmoid(torch.where(inside, d2, -d2) / st.sigma)
        keep = inside | (d2 < thr)
    wc = w.clamp(0, 1)
    wc = wc / wc.sum(-1, keepdim=True).clamp_min(1e-5)
    zf = Z[:, None]                                                       # (B,1,F,3)
    zp = 1 / (wc / zf).sum(-1)
    keep = keep & (zp <= st.far) & (Z >= st.near).all(-1)[:, None]
    alpha = 1 - torch.where(keep, 1 - D, torch.ones_like(D)).prod(-1)
    if st.hard:
        alpha = (keep.any(-1)).to(verts.dtype)
    front = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0) < 0            # CCW for the viewer (x_ndc is left)
    elig = keep & (front | st.fill_back)
    if st.perspective_correct:
        wc = wc / zf * zp[..., None]
    c = (wc[..., None] * col[:, None]).sum(-2)                            # (B,P,F,C)
    bg = torch.as_tensor(st.background, dtype=verts.dtype)
    if st.hard:
        zz = torch.where(elig, zp, torch.full_like(zp, float("inf")))
        best = zz.argmin(-1)
        hit = torch.isfinite(zz.min(-1).values)
        rgb = torch.gather(c, 2, best[..., None, None].expand(-1, -1, 1, c.shape[-1]))[:, :, 0]
        rgb = torch.where(hit[..., None], rgb, bg)
    else:
        zt = (st.far - zp) / (st.far - st.near)
        zmax = torch.where(elig, zt, torch.full_like(zt, -1e9)).amax(-1).clamp_min(st.eps)
        wgt = torch.where(elig, D * torch.exp((zt - zmax[..., None]) / st.gamma), torch.zeros_like(D))
        bgw = torch.exp((st.eps - zmax) / st.gamma)
        rgb = ((wgt[..., None] * c).sum(2) + bgw[..., None] * bg) / (wgt.sum(-1) + bgw)[..., None]
    img = torch.cat([rgb, alpha[..., None]], -1).view(verts.shape[0], S, S, -1).permute(0, 3, 1, 2)
    img = img.flip(-1)
    k = st.anti_aliasing
    return F.avg_pool2d(img, k, k) if k > 1 else img


def random_scene(B=2, n_tri=10, seed=0, dtype=torch.float64):
    """B scenes of n_tri random triangles around the origin, seen from 2.5 units away."""
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(B, n_tri, 1, 3, generator=g, dtype=dtype) - 0.5) * 1.2
    verts = (centres + (torch.rand(B, n_tri, 3, 3, generator=g, dtype=dtype) - 0.5) * 1.2).reshape(B, -1, 3)
    faces = torch.arange(n_tri * 3).view(n_tri, 3)
    colors = torch.rand(B, n_tri * 3, 3, generator=g, dtype=dtype)
    R, T = look_at_view_transform(2.5, torch.tensor([10.0, -20.0])[:B], torch.tensor([30.0, 200.0])[:B],
                                  dtype=dtype)
    return verts, faces, colors, R, T


def test_look_at_view_transform_matches_pytorch3d_and_cameras(single_thread):
    R, T = look_at_view_transform(2.7, 0.0, 0.0)        # PyTorch3D's documented result for this call
    assert torch.allclose(R[0], torch.diag(torch.tensor([-1.0, 1.0, -1.0])), atol=1e-6)
    assert torch.allclose(T[0], torch.tensor([0.0, 0.0, 2.7]), atol=1e-6)
    R, T = look_at_view_transform(torch.tensor([2.0, 3.0]), torch.tensor([25.0, -40.0]), torch.tensor([70.0, 190.0]),
                                  dtype=torch.float64)
    for b, (d, e, a) in enumerate([(2.0, 25.0, 70.0), (3.0, -40.0, 190.0)]):
        ref = spherical_camera(a, e, d, dtype=torch.float64)
        cam = camera_from_view_transform(R, T, 32)[b]
        assert torch.allclose(cam.R, ref.R, atol=1e-9) and torch.allclose(cam.t, ref.t, atol=1e-9)
        assert torch.allclose(-(R[b] @ T[b]), ref.center, atol=1e-9)          # camera centre
    # projection: a point's pixel under cameras.Camera equals our NDC -> pixel mapping
    p = torch.tensor([[[0.3, -0.2, 0.1]]], dtype=torch.float64)
    ndc = project_vertices(p, R[:1], T[:1])[0, 0]
    uv = camera_from_view_transform(R, T, 32)[0].project(p[0, 0])
    assert torch.allclose(uv, 16 * (1 - ndc[:2]), atol=1e-9)


@pytest.mark.parametrize("fill_back,aa,persp", [(True, 1, False), (False, 2, False), (True, 2, True)])
def test_values_match_dense_reference(single_thread, fill_back, aa, persp):
    verts, faces, colors, R, T = random_scene()
    st = SoftRasterizationSettings(image_size=20, sigma=3e-4, gamma=3e-2, fill_back=fill_back, anti_aliasing=aa,
                                   background=(0.2, 0.4, 0.6), perspective_correct=persp, max_pairs=500)
    out = soft_render(verts, faces, R, T, colors=colors, settings=st)
    ref = dense_reference(verts, faces, R, T, colors, st)
    assert out.shape == (2, 4, 20, 20)
    assert (ref[:, 3] > 0.01).float().mean() > 0.1                      # the scene is not empty
    assert ((ref[:, 3] > 0.02) & (ref[:, 3] < 0.98)).any()               # and has soft edges
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-7)
    sil = soft_silhouette(verts, faces, R, T, settings=st)
    torch.testing.assert_close(sil, ref[:, 3:], atol=1e-9, rtol=1e-7)


def test_hard_mode_matches_dense_reference(single_thread):
    verts, faces, colors, R, T = random_scene(seed=3)
    st = SoftRasterizationSettings(image_size=24, hard=True, anti_aliasing=1, fill_back=False)
    torch.testing.assert_close(soft_render(verts, faces, R, T, colors=colors, settings=st),
                               dense_reference(verts, faces, R, T, colors, st))


def test_distance_against_boundary_sampling(single_thread):
    """d² of the culled pairs equals the squared distance to a densely sampled triangle boundary."""
    verts, faces, colors, R, T = random_scene(B=1, n_tri=3, seed=5)
    st = SoftRasterizationSettings(image_size=16, sigma=1e-2, dist_eps=1e-3, anti_aliasing=1)
    from modules.geometry.soft_rasterizer import _face_table, _pair_terms
    fv = _gather_faces(project_vertices(verts, R, T), faces.expand(1, -1, -1)).reshape(-1, 3, 3)
    g, pix = _candidate_pairs(fv, 16, st)
    px = 1 - (2 * (pix % 16) + 1).double() / 16
    py = 1 - (2 * (pix // 16) + 1).double() / 16
    _, _, _, s, inside, _ = _pair_terms(_face_table(fv)[:, :, g], px, py, st)
    t = torch.linspace(0, 1, 4001, dtype=torch.float64)
    tri = fv[g][:, :, :2]
    pts = torch.cat([tri[:, k, None] + t[None, :, None] * (tri[:, (k + 1) % 3, None] - tri[:, k, None])
                     for k in range(3)], 1)                               # (P,3*4001,2)
    d2 = ((pts - torch.stack([px, py], 1)[:, None]) ** 2).sum(-1).amin(1)
    assert inside.any() and (~inside).any()
    torch.testing.assert_close(s.abs() * st.sigma, d2, atol=2e-7, rtol=1e-3)


def test_gradcheck_vertices_colors_texture(single_thread):
    torch.manual_seed(0)
    verts = torch.tensor([[[-0.4, -0.3, 0.1], [0.45, -0.2, 0.0], [0.0, 0.5, -0.1],
                           [-0.1, -0.1, 0.3], [0.5, 0.2, 0.35], [0.1, 0.45, 0.25]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    colors = torch.rand(1, 6, 3, dtype=torch.float64)
    R, T = look_at_view_transform(2.0, 15.0, 20.0, dtype=torch.float64)
    # dist_eps tiny: the cut-off (a jump of dist_eps in D) must not sit inside the finite-difference step.
    st = SoftRasterizationSettings(image_size=6, sigma=2e-2, gamma=5e-2, dist_eps=1e-14, anti_aliasing=1)
    wts = torch.rand(1, 4, 6, 6, dtype=torch.float64)

    def f(v, c):
        return (soft_render(v, faces, R, T, colors=c, settings=st) * wts).sum()
    assert torch.autograd.gradcheck(f, (verts.clone().requires_grad_(), colors.clone().requires_grad_()),
                                    eps=1e-6, atol=1e-5)
    tex = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    uvs = torch.rand(6, 2, dtype=torch.float64) * 1.6 - 0.8

    def g(t):
        return (soft_render(verts, faces, R, T, texture=t, verts_uvs=uvs, settings=st) * wts).sum()
    assert torch.autograd.gradcheck(g, (tex.requires_grad_(),), eps=1e-6, atol=1e-6)


def test_hard_mode_equals_zbuffer_rasterizer(single_thread):
    sphere = ico_sphere(2)
    v = sphere.verts_packed().double() * 0.6
    f = sphere.faces_packed()
    verts, faces, colors, R, T = random_scene(B=2, n_tri=8, seed=1)
    verts = torch.cat([verts, v[None].expand(2, -1, -1) + 0.1], 1)     # random triangles + a closed sphere
    faces = torch.cat([faces, f + 24], 0)
    R, T = look_at_view_transform(2.5, torch.tensor([20.0, -35.0]), torch.tensor([40.0, 250.0]), dtype=torch.float64)
    st = SoftRasterizationSettings(image_size=48, hard=True, anti_aliasing=1)
    colors = torch.rand(2, verts.shape[1], 3, dtype=torch.float64)
    img, fid = soft_render(verts, faces, R, T, colors=colors, settings=st, return_face_index=True)
    for b, cam in enumerate(camera_from_view_transform(R, T, 48, st.viewing_angle, st.near, st.far)):
        frag = rasterize(verts[b], faces, cam)
        assert frag.mask.sum() > 300
        assert torch.equal(fid[b], frag.face_index)
        assert torch.equal(img[b, 3] > 0, frag.mask)


def test_sigma_to_zero_is_hard_coverage(single_thread):
    verts, faces, colors, R, T = random_scene(seed=2)
    hard = soft_render(verts, faces, R, T, colors=colors,
                       settings=SoftRasterizationSettings(image_size=32, hard=True, anti_aliasing=1))
    soft = soft_render(verts, faces, R, T, colors=colors,
                       settings=SoftRasterizationSettings(image_size=32, sigma=1e-12, gamma=1e-7, anti_aliasing=1))
    assert hard[:, 3].sum() > 100
    assert torch.equal(soft[:, 3] > 0.5, hard[:, 3] > 0.5)
    assert ((soft[:, 3] - hard[:, 3]).abs() > 1e-6).sum() == 0               # no pixel in an edge band
    torch.testing.assert_close(soft[:, :3], hard[:, :3], atol=1e-6, rtol=0)   # softmax -> nearest face


def _one_triangle(flip):
    verts = torch.tensor([[[-0.5, -0.4, 0.0], [0.5, -0.4, 0.0], [0.0, 0.5, 0.0]]], dtype=torch.float64)
    faces = torch.tensor([[0, 2, 1]] if flip else [[0, 1, 2]])
    colors = torch.tensor([[[1.0, 0.0, 0.0]] * 3], dtype=torch.float64)
    return verts, faces, colors


def test_fill_back_makes_back_face_visible(single_thread):
    R, T = look_at_view_transform(2.0, 0.0, 0.0, dtype=torch.float64)     # eye on +z: [0,1,2] is CCW = front
    for flip in (False, True):
        verts, faces, colors = _one_triangle(flip)
        for fill_back in (False, True):
            st = SoftRasterizationSettings(image_size=16, fill_back=fill_back, background=(0.0, 0.0, 1.0))
            img = soft_render(verts, faces, R, T, colors=colors, settings=st)
            centre = img[0, :, 8, 8]
            assert centre[3] > 0.99                                        # alpha counts every face
            coloured = fill_back or not flip
            assert torch.allclose(centre[:3], torch.tensor([1.0, 0, 0] if coloured else [0, 0, 1.0],
                                                           dtype=torch.float64), atol=1e-6), (flip, fill_back)


def test_near_far_clipping(single_thread):
    R, T = look_at_view_transform(2.0, 0.0, 0.0, dtype=torch.float64)
    verts, faces, colors = _one_triangle(False)
    st = SoftRasterizationSettings(image_size=16, near=0.5, far=3.0, background=(0.0, 0.0, 1.0))
    assert soft_render(verts, faces, R, T, colors=colors, settings=st)[0, 3, 8, 8] > 0.99
    beyond = soft_render(verts - torch.tensor([0, 0, 1.5], dtype=torch.float64), faces, R, T, colors=colors,
                         settings=st)                                      # at depth 3.5 > far
    assert beyond[0, 3].abs().max() == 0 and torch.allclose(beyond[0, 2], torch.ones(16, 16, dtype=torch.float64))
    crossing = verts.clone()
    crossing[0, 2, 2] = 1.8                                                # one vertex at depth 0.2 < near
    assert soft_render(crossing, faces, R, T, colors=colors, settings=st)[0, 3].abs().max() == 0
    # per pixel: a face leaning through `far` is kept where its depth is below far, cut where above
    lean = torch.tensor([[[-0.5, -0.6, 0.5], [0.5, -0.6, 0.5], [0.0, 0.6, -2.5]]], dtype=torch.float64)
    a = soft_render(lean, faces, R, T, colors=colors, settings=st)[0, 3]
    assert a[12, 8] > 0.99 and a[3, 8] == 0


def test_culling_evaluates_few_pairs(single_thread):
    sphere = ico_sphere(3)
    verts = sphere.verts_padded().double() * 0.5
    R, T = look_at_view_transform(1.2, 0.0, 0.0, dtype=torch.float64)
    st = SoftRasterizationSettings(image_size=64)
    fv = _gather_faces(project_vertices(verts, R, T), sphere.faces_packed()[None]).reshape(-1, 3, 3)
    g, pix = _candidate_pairs(fv, st.raster_size, st)
    covered = (soft_silhouette(verts, sphere.faces_packed(), R, T, settings=st) > 0).sum() * 4
    dense = fv.shape[0] * st.raster_size ** 2
    assert g.numel() < 0.003 * dense                                      # vs pixels x faces
    assert g.numel() < 5 * covered                                        # ~2 faces deep (front + back) + edge bands


def test_texture_equals_sampled_vertex_colors_and_module(single_thread):
    verts, faces, _, R, T = random_scene(B=2, seed=4)
    tex = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    uvs = torch.rand(verts.shape[1], 2, dtype=torch.float64) * 2 - 1
    st = SoftRasterizationSettings(image_size=16)
    a = soft_render(verts, faces, R, T, texture=tex, verts_uvs=uvs, settings=st)
    vc = sample_vertex_colors(tex, uvs)
    assert vc.shape == (2, verts.shape[1], 3)
    assert torch.allclose(vc[1, 5], F.grid_sample(tex[1:], uvs[5].view(1, 1, 1, 2), align_corners=False).view(3))
    torch.testing.assert_close(a, soft_render(verts, faces, R, T, colors=vc, settings=st))
    r = SoftRenderer(st, dist=1.2)
    sphere = ico_sphere(1)
    v = sphere.verts_padded().expand(3, -1, -1) * 0.4
    out = r(v, sphere.faces_packed(), colors=torch.ones(3, v.shape[1], 3))
    assert out.shape == (3, 4, 16, 16) and out[:, 3, 8, 8].min() > 0.99 and out[:, 3, 0, 0].max() == 0
    assert r.silhouette(v, sphere.faces_packed()).shape == (3, 1, 16, 16)


def test_bad_input(single_thread):
    verts, faces, colors, R, T = random_scene()
    with pytest.raises(ShapeLabError, match="verts"):
        soft_render(verts[0], faces, R, T, colors=colors)
    with pytest.raises(ShapeLabError, match="face indices"):
        soft_render(verts, faces + 100, R, T, colors=colors)
    with pytest.raises(ShapeLabError, match="exactly one"):
        soft_render(verts, faces, R, T)
    with pytest.raises(ShapeLabError, match="background"):
        soft_render(verts, faces, R, T, colors=colors, settings=SoftRasterizationSettings(background=(0, 0)))
    with pytest.raises(ShapeLabError, match="dist_eps"):
        SoftRasterizationSettings(dist_eps=0.7)
    with pytest.raises(ShapeLabError, match="parallel"):
        look_at_view_transform(2.0, 90.0, 0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_gpu_matches_cpu():
    verts, faces, colors, R, T = random_scene()
    st = SoftRasterizationSettings(image_size=20, sigma=3e-4, gamma=3e-2)
    cpu = soft_render(verts, faces, R, T, colors=colors, settings=st)
    gpu = soft_render(verts.cuda(), faces.cuda(), R.cuda(), T.cuda(), colors=colors.cuda(), settings=st)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-9, rtol=1e-7)
