"""modules.geometry.rasterizer / cameras: projection by hand, camera round trips (dict, ONet),
coverage and depth against closed forms and a naive ray-casting reference, shading, gradients."""
import json
import math

import numpy as np
import pytest
import torch

from modules.geometry.cameras import Camera, look_at_camera, ndc_matrix, orbit_cameras
from modules.geometry.rasterizer import (RasterSettings, rasterize, render_mesh, render_silhouette,
                                         to_uint8_image)
from modules.utils import ShapeLabError


def icosphere(level):
    """Unit icosphere by midpoint subdivision (outward, counter-clockwise faces)."""
    t = (1 + 5 ** 0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
         (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
         (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    v = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(level):
        cache, nf = {}, []

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = nf
    return torch.tensor(np.array(v), dtype=torch.float32), torch.tensor(f, dtype=torch.long)


def unit_cube():
    v = torch.tensor([[x, y, z] for x in (-.5, .5) for y in (-.5, .5) for z in (-.5, .5)], dtype=torch.float32)
    f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v, f


# ---------------------------------------------------------------- cameras

def test_projection_matches_hand_computation():
    cam = look_at_camera(eye=(0, 0, 5), target=(0, 0, 0), fov_deg=90, width=100, height=80)
    # f = (H/2)/tan(45deg) = 40; camera axes: right=+x, down=-y, forward=-z.
    uv, z = cam.project(torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, -3.0]]), return_depth=True)
    np.testing.assert_allclose(uv.numpy(), [[50 + 40 * 1 / 5, 40 - 40 * 2 / 5], [50, 40]], atol=1e-4)
    np.testing.assert_allclose(z.numpy(), [5, 8], atol=1e-5)
    np.testing.assert_allclose(cam.center.numpy(), [0, 0, 5], atol=1e-6)
    big = cam.resized(200, 160)                                # twice the pixels, same view
    np.testing.assert_allclose(big.project(torch.tensor([[1.0, 2.0, 0.0]])).numpy(), 2 * uv[:1].numpy(), atol=1e-4)
    back = cam.unproject(uv, z)
    np.testing.assert_allclose(back.numpy(), [[1, 2, 0], [0, 0, -3]], atol=1e-4)


def test_look_at_is_a_rotation_and_centres_the_target():
    for cam in orbit_cameras(5, distance=2.0, elevation_deg=30, target=(0.1, 0.5, -0.2), width=64, height=48):
        R = cam.R.double()
        np.testing.assert_allclose((R @ R.T).numpy(), np.eye(3), atol=1e-6)
        assert torch.det(R) > 0
        np.testing.assert_allclose(cam.project(torch.tensor([0.1, 0.5, -0.2])).numpy(), [32, 24], atol=1e-4)
        # world up projects upwards (smaller v) in the picture
        assert cam.project(torch.tensor([0.1, 0.6, -0.2]))[1] < 24
    with pytest.raises(ShapeLabError):
        look_at_camera(eye=(0, 2, 0), target=(0, 0, 0), up=(0, 1, 0))


def test_camera_dict_round_trip(tmp_path):
    cam = look_at_camera(eye=(1, 1.5, 3), target=(0, 0.5, 0), fov_deg=40, width=137, height=120, near=0.05, far=9)
    d = cam.to_dict()
    np.savez(tmp_path / "cam.npz", **d)
    with np.load(tmp_path / "cam.npz") as z:
        back = Camera.from_dict(dict(z))
    via_json = Camera.from_dict(json.loads(json.dumps({k: (v.tolist() if hasattr(v, "tolist") else v)
                                                       for k, v in d.items()})))
    for c in (back, via_json):
        for k in ("K", "R", "t"):
            np.testing.assert_allclose(getattr(c, k).numpy(), getattr(cam, k).numpy(), atol=1e-6)
        assert (c.width, c.height, c.near, c.far) == (137, 120, 0.05, 9.0)
    with pytest.raises(ShapeLabError, match="'R'|R"):
        Camera.from_dict({k: v for k, v in d.items() if k != "R"})
    with pytest.raises(ShapeLabError, match="K"):
        Camera(K=np.eye(4), R=np.eye(3), t=np.zeros(3), width=4, height=4)


def test_onet_conversion_round_trip_and_projection():
    cam = look_at_camera(eye=(0.4, 0.6, -1.2), target=(0, 0, 0), fov_deg=50, width=137, height=137)
    world_mat, camera_mat = cam.to_onet()
    assert world_mat.shape == (3, 4) and camera_mat.shape == (3, 3)
    back = Camera.from_onet(world_mat, camera_mat, 137, 137)
    for k in ("K", "R", "t"):
        np.testing.assert_allclose(getattr(back, k).numpy(), getattr(cam, k).numpy(), atol=1e-4)
    # Real ONet cameras.npz: camera_mat is in pixels; ONet's fix_K_camera(K, 137) = ndc_matrix @ K maps to
    # [-1,1] image coords, and project_to_camera with it gives p[:2]/p[2] in [-1,1].
    pts = np.random.default_rng(0).uniform(-0.5, 0.5, (20, 3))
    fixed_K = ndc_matrix(137, 137).numpy() @ camera_mat
    p = (fixed_K @ (world_mat[:, :3] @ pts.T + world_mat[:, 3:])).T
    ndc = p[:, :2] / p[:, 2:]
    uv = cam.project(torch.tensor(pts, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(ndc, 2 * uv / 137 - 1, atol=1e-4)
    # hand value: f = 68.5/tan(25deg) pixels -> 1/tan(25deg) in ONet [-1,1] units, principal point 0
    np.testing.assert_allclose(fixed_K, [[1 / math.tan(math.radians(25)), 0, 0],
                                         [0, 1 / math.tan(math.radians(25)), 0], [0, 0, 1]], atol=1e-5)
    np.testing.assert_allclose(camera_mat, [[68.5 / math.tan(math.radians(25)), 0, 68.5],
                                            [0, 68.5 / math.tan(math.radians(25)), 68.5], [0, 0, 1]], atol=1e-3)
    # DVR-style files store the [-1,1] version: units="ndc" reads them back to the same camera
    ndc_cam = Camera.from_onet(world_mat, fixed_K, 137, 137, units="ndc")
    np.testing.assert_allclose(ndc_cam.K.numpy(), cam.K.numpy(), atol=1e-3)


# ---------------------------------------------------------------- coverage and depth

def test_sphere_silhouette_area_matches_closed_form():
    v, f = icosphere(4)                                   # 5120 faces
    d, r = 3.0, 0.8
    cam = look_at_camera(eye=(0, 0, d), fov_deg=40, width=160, height=160)
    mask = render_silhouette(v * r, f, cam)
    fpx = 80 / math.tan(math.radians(20))
    rho = fpx * r / math.sqrt(d * d - r * r)              # image radius of the silhouette cone
    expected = math.pi * rho ** 2
    assert abs(mask.sum().item() - expected) / expected < 0.01
    # the disc is centred
    ys, xs = torch.nonzero(mask > 0, as_tuple=True)
    assert abs(xs.float().mean().item() + 0.5 - 80) < 0.5 and abs(ys.float().mean().item() + 0.5 - 80) < 0.5


def test_cube_face_on_covers_exact_square_at_plane_depth():
    v, f = unit_cube()
    d = 3.3
    cam = look_at_camera(eye=(0, 0, d), fov_deg=35, width=96, height=96)
    out = render_mesh(v, f, cam)
    side = cam.K[0, 0].item() * 1.0 / (d - 0.5)           # front face, 1 unit wide, at depth d-0.5
    centres = torch.arange(96) + 0.5
    inside = (centres - 48).abs() <= side / 2
    expected = inside[:, None] & inside[None, :]
    assert torch.equal(out["mask"], expected)
    np.testing.assert_allclose(out["depth"][expected].numpy(), d - 0.5, rtol=1e-5)
    assert torch.isinf(out["depth"][~expected]).all()
    assert set(out["face_index"][expected].tolist()) == {10, 11}        # the +z face (vertices 1,3,5,7)
    assert (out["face_index"][~expected] == -1).all()


def test_tilted_plane_depth_is_perspective_correct():
    a = math.radians(50)
    quad = torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=torch.float64)
    rot = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64)
    verts = quad @ rot.T
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    cam = look_at_camera(eye=(0, 0, 2.5), fov_deg=60, width=64, height=64, dtype=torch.float64)
    fr = rasterize(verts, faces, cam)
    assert fr.mask.sum() > 500
    # analytic: ray through the pixel centre meets the plane n.x = 0
    ii, jj = torch.nonzero(fr.mask, as_tuple=True)
    uv = torch.stack([jj + 0.5, ii + 0.5], 1).double()
    ray = torch.cat([uv, torch.ones(len(uv), 1, dtype=torch.float64)], 1) @ torch.linalg.inv(cam.K.double()).T
    n_cam = cam.R.double() @ rot[:, 2]                     # plane normal, camera space
    c_cam = cam.t.double()                                  # world origin in camera space lies on the plane
    z = (n_cam @ c_cam) / (ray @ n_cam)                     # depth along z (ray has z = 1)
    np.testing.assert_allclose(fr.depth[ii, jj].numpy(), z.numpy(), rtol=1e-9)
    # barycentrics are perspective-correct: the interpolated 3-D point projects to the pixel centre
    p3 = (fr.bary[ii, jj][:, :, None] * verts[faces[fr.face_index[ii, jj]]]).sum(1)
    np.testing.assert_allclose(cam.project(p3).numpy(), uv.numpy(), atol=1e-6)


def _naive_raycast(verts, faces, cam):
    """Reference: for every pixel centre, Moller-Trumbore against every face; nearest hit wins."""
    H, W = cam.height, cam.width
    Kinv = np.linalg.inv(cam.K.double().numpy())
    R, t = cam.R.double().numpy(), cam.t.double().numpy()
    origin = -R.T @ t
    V = verts.double().numpy()
    face_img = -np.ones((H, W), int)
    depth_img = np.full((H, W), np.inf)
    for i in range(H):
        for j in range(W):
            d_cam = Kinv @ np.array([j + 0.5, i + 0.5, 1.0])
            direction = R.T @ d_cam                        # camera z = 1 along this ray: t_hit = depth
            for k, (a, b, c) in enumerate(faces.numpy()):
                e1, e2 = V[b] - V[a], V[c] - V[a]
                p = np.cross(direction, e2)
                det = e1 @ p
                if abs(det) < 1e-14:
                    continue
                s = origin - V[a]
                u = (s @ p) / det
                q = np.cross(s, e1)
                w = (direction @ q) / det
                if u < 0 or w < 0 or u + w > 1:
                    continue
                th = (e2 @ q) / det
                if cam.near < th < depth_img[i, j]:
                    depth_img[i, j], face_img[i, j] = th, k
    return face_img, depth_img


def test_matches_naive_raycaster_on_random_triangles():
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(25, 1, 3, generator=g) * 2 - 1
    verts = (centres + 1.2 * (torch.rand(25, 3, 3, generator=g) - 0.5)).reshape(-1, 3).double()
    faces = torch.arange(75).reshape(25, 3)
    cam = look_at_camera(eye=(0.3, 0.4, 3.0), fov_deg=50, width=40, height=30, dtype=torch.float64)
    fr = rasterize(verts, faces, cam)
    ref_face, ref_depth = _naive_raycast(verts, faces, cam)
    assert torch.equal(fr.mask, torch.from_numpy(ref_face >= 0))
    m = ref_face >= 0
    np.testing.assert_allclose(fr.depth.numpy()[m], ref_depth[m], rtol=1e-9)
    agree = fr.face_index.numpy() == ref_face
    # a different face may only win where two faces are at the same depth (intersections)
    assert agree[m].mean() > 0.99
    # chunking does not change anything: a tiny candidate budget gives the same picture
    small = rasterize(verts, faces, cam, RasterSettings(max_candidates=16))
    assert torch.equal(small.face_index, fr.face_index)


def _raycast_vectorised(verts, faces, cam):
    """Moller-Trumbore per pixel centre against all faces at once (numpy, double); nearest hit, ties to the
    lower face index. Also returns a mask of pixels whose centre lies within 1e-5 px of the boundary of some
    face (there either answer is right)."""
    H, W = cam.height, cam.width
    K, R, t = (x.double().numpy() for x in (cam.K, cam.R, cam.t))
    V = verts.double().numpy()
    tri = V[faces.numpy()]                                            # (F,3,3)
    origin = -R.T @ t
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    s = origin - tri[:, 0]
    q = np.cross(s, e1)
    uv = (tri.reshape(-1, 3) @ R.T + t) @ K.T
    uv = (uv[:, :2] / uv[:, 2:]).reshape(-1, 3, 2)                    # projected corners, pixels
    face_img, depth_img = -np.ones((H, W), int), np.full((H, W), np.inf)
    edge_img = np.zeros((H, W), bool)
    for i in range(H):
        for j in range(W):
            d = R.T @ (np.linalg.inv(K) @ np.array([j + 0.5, i + 0.5, 1.0]))
            p = np.cross(d, e2)
            det = (e1 * p).sum(1)
            ok = np.abs(det) > 1e-14
            det = np.where(ok, det, 1.0)
            u, w = (s * p).sum(1) / det, (q @ d) / det
            th = (e2 * q).sum(1) / det
            hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (th > cam.near)
            if hit.any():
                k = np.flatnonzero(hit)[np.argmin(th[hit])]
                face_img[i, j], depth_img[i, j] = k, th[k]
            # signed distances (pixels) from the centre to the three edge lines of every face
            a, b = uv, np.roll(uv, -1, axis=1)
            ex, ey = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
            cross = ex * (i + 0.5 - a[..., 1]) - ey * (j + 0.5 - a[..., 0])
            dist = cross / np.maximum(np.hypot(ex, ey), 1e-300)
            dist *= np.sign(dist.sum(1, keepdims=True) + 1e-300)   # orient so inside is mostly >= 0
            near_edge = (np.abs(dist) < 1e-5).any(1) & (dist > -1e-5).all(1)
            edge_img[i, j] = near_edge.any()
    return face_img, depth_img, edge_img


def sliver_soup(n=40, seed=3):
    """n long thin triangles (length 1.5-3, width 1e-3..3e-2 world units: 0.01-0.4 px at the test camera)
    in random directions, each also stored reversed (double-sided, as ShapeNet soups) -> (verts, faces)."""
    g = np.random.default_rng(seed)
    d = g.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    side = np.cross(d, g.normal(size=(n, 3)))
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    length = g.uniform(1.5, 3.0, (n, 1))
    width = 10 ** g.uniform(-3, np.log10(3e-2), (n, 1))
    c = g.uniform(-0.5, 0.5, (n, 3))
    tri = np.stack([c - 0.5 * length * d, c + 0.5 * length * d, c + g.uniform(-0.4, 0.4, (n, 1)) * length * d
                    + width * side], 1)
    tri = np.concatenate([tri, tri[:, ::-1]])
    return torch.tensor(tri.reshape(-1, 3)), torch.arange(6 * n).reshape(-1, 3)


def test_sliver_soup_matches_naive_raycaster():
    verts, faces = sliver_soup()
    cam = look_at_camera(eye=(0.4, 0.3, 3.0), fov_deg=45, width=40, height=32, dtype=torch.float64)
    fr = rasterize(verts, faces, cam)
    ref_face, ref_depth, on_edge = _raycast_vectorised(verts, faces, cam)
    mask = fr.mask.numpy()
    assert mask.sum() > 30                                   # the slivers cover pixels: the test is not vacuous
    assert on_edge.mean() < 0.02
    assert np.array_equal(mask[~on_edge], (ref_face >= 0)[~on_edge])
    both = mask & (ref_face >= 0)
    np.testing.assert_allclose(fr.depth.numpy()[both], ref_depth[both], rtol=1e-9)
    n = faces.shape[0] // 2                                  # a face and its reversed twin tie in depth
    same = (fr.face_index.numpy() % n) == (ref_face % n)
    assert same[both].mean() > 0.98
    # scanline chunks of any size give the same picture
    small = rasterize(verts, faces, cam, RasterSettings(max_candidates=16))
    assert torch.equal(small.face_index, fr.face_index)


def test_thin_cylinder_matches_naive_raycaster():
    """A closed cylinder of 300 sections along a diagonal: its sides and caps are long slivers."""
    k, r, h = 300, 0.3, 2.0
    ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    ring = torch.stack([r * torch.cos(ang), r * torch.sin(ang)], 1)
    verts = torch.cat([torch.cat([ring, torch.full((k, 1), -h / 2, dtype=torch.float64)], 1),
                       torch.cat([ring, torch.full((k, 1), h / 2, dtype=torch.float64)], 1),
                       torch.tensor([[0, 0, -h / 2], [0, 0, h / 2]], dtype=torch.float64)])
    i = torch.arange(k)
    j = (i + 1) % k
    faces = torch.cat([torch.stack([i, j, j + k], 1), torch.stack([i, j + k, i + k], 1),
                       torch.stack([j, i, torch.full_like(i, 2 * k)], 1),
                       torch.stack([i + k, j + k, torch.full_like(i, 2 * k + 1)], 1)])
    rot = torch.tensor(trimesh_rotation(), dtype=torch.float64)
    verts = verts @ rot.T
    cam = look_at_camera(eye=(0.2, 0.1, 3.5), fov_deg=50, width=36, height=30, dtype=torch.float64)
    fr = rasterize(verts, faces, cam)
    ref_face, ref_depth, on_edge = _raycast_vectorised(verts, faces, cam)
    mask = fr.mask.numpy()
    assert mask.sum() > 80 and on_edge.mean() < 0.05
    assert np.array_equal(mask[~on_edge], (ref_face >= 0)[~on_edge])
    both = mask & (ref_face >= 0)
    np.testing.assert_allclose(fr.depth.numpy()[both], ref_depth[both], rtol=1e-9)
    assert (fr.face_index.numpy() == ref_face)[both & ~on_edge].mean() > 0.99


def trimesh_rotation():
    """A fixed rotation putting the z axis on a screen diagonal (40 deg about x, then 35 deg about y)."""
    a, b = math.radians(40), math.radians(35)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    return ry @ rx


def test_near_plane_and_backface_culling():
    v, f = icosphere(2)
    behind = look_at_camera(eye=(0, 0, 3), target=(0, 0, 6), width=32, height=32)
    assert not render_silhouette(v, f, behind).any()
    inside = look_at_camera(eye=(0, 0, 0), target=(0, 0, -1), width=32, height=32)
    assert rasterize(v, f, inside).mask.all()                      # inside the sphere: all back faces
    assert not rasterize(v, f, inside, RasterSettings(cull_backfaces=True)).mask.any()
    outside = look_at_camera(eye=(0, 0, 3), width=32, height=32)
    a = rasterize(v, f, outside)
    b = rasterize(v, f, outside, RasterSettings(cull_backfaces=True))
    assert torch.equal(a.face_index, b.face_index)                 # closed convex mesh: same picture


# ---------------------------------------------------------------- shading and gradients

def test_lambert_shading_and_colours():
    quad = torch.tensor([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=torch.float32)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    cam = look_at_camera(eye=(0, 0, 3), fov_deg=40, width=32, height=32)
    m = render_mesh(quad, faces, cam, face_colors=torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]]),
                    background=(0, 0, 0))
    rgb, mask = m["rgba"][..., :3], m["mask"]
    # headlight straight on: full Lambert term, colour = base colour
    assert torch.allclose(rgb[mask][(m["face_index"][mask] == 0)], torch.tensor([1.0, 0.5, 0.0]), atol=1e-5)
    assert torch.equal(m["rgba"][..., 3] > 0, mask) and (rgb[~mask] == 0).all()
    grazing = render_mesh(quad, faces, cam, light_dir=(1, 0, 0), ambient=0.25)   # light in the plane
    assert torch.allclose(grazing["rgba"][..., :3][mask], torch.tensor(0.25 * 0.7), atol=1e-5)
    tilted = render_mesh(quad, faces, cam, light_dir=(0, 1, 1), ambient=0.0)
    assert torch.allclose(tilted["rgba"][..., :3][mask], torch.tensor(0.7 / math.sqrt(2)), atol=1e-5)
    vc = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0]])
    r = render_mesh(quad, faces, cam, vertex_colors=vc)
    expect = (r["bary"][mask][:, :, None] * vc[faces[r["face_index"][mask]]]).sum(1)
    assert torch.allclose(r["rgba"][..., :3][mask], expect, atol=1e-5)
    img = to_uint8_image(r["rgba"])
    assert img.shape == (32, 32, 4) and img.dtype == np.uint8


def test_gradients_flow_to_vertices_colours_and_camera():
    verts = torch.tensor([[-0.8, -0.7, 0.1], [0.9, -0.6, -0.2], [0.1, 0.9, 0.3]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    cols = torch.tensor([[1.0, 0.2, 0.1], [0.1, 0.9, 0.3], [0.3, 0.2, 0.8]], dtype=torch.float64)
    cam = look_at_camera(eye=(0.2, 0.1, 3), fov_deg=40, width=12, height=12, dtype=torch.float64)
    mask = rasterize(verts, faces, cam).mask

    def f(v, c):
        out = render_mesh(v, faces, cam, vertex_colors=c, light_dir=(0.3, 0.2, 1.0))
        return out["rgba"][..., :3][mask], out["depth"][mask]
    assert torch.autograd.gradcheck(f, (verts.clone().requires_grad_(), cols.clone().requires_grad_()),
                                    eps=1e-6, atol=1e-5)
    t = cam.t.clone().requires_grad_()
    cam.t = t
    rasterize(verts, faces, cam).depth[mask].sum().backward()
    assert t.grad is not None and t.grad[2] > 0                    # moving the scene away increases depth


def test_bad_input_is_a_clear_error():
    cam = look_at_camera(eye=(0, 0, 3), width=8, height=8)
    v, f = unit_cube()
    with pytest.raises(ShapeLabError, match="faces"):
        render_mesh(v, f + 10, cam)
    with pytest.raises(ShapeLabError, match="vertices"):
        render_mesh(v[:, :2], f, cam)
    with pytest.raises(ShapeLabError, match="vertex_colors"):
        render_mesh(v, f, cam, vertex_colors=torch.ones(3, 3))
    with pytest.raises(ShapeLabError, match="camera"):
        rasterize(v, f, "not a camera")
