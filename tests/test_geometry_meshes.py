"""Meshes and volumes: file I/O, mesh_contains, voxels, binvox, marching cubes and MISE."""
import math

import numpy as np
import pytest
import torch
import trimesh

from modules.geometry.binvox import binvox_voxel_centers, read_binvox, write_binvox
from modules.geometry.io import (load_mesh, load_point_cloud, load_seg, save_mesh, save_point_cloud, save_seg)
from modules.geometry.mesh_contains import fast_winding_number, is_watertight, mesh_contains, winding_number
from modules.geometry.mise import dense_extract, grid_points, marching_cubes, mise_extract
from modules.geometry.voxels import surface_voxels, voxel_centers, voxelize_mesh, voxelize_points
from modules.utils import ShapeLabError


def _sphere(radius=0.4, level=3):
    m = trimesh.creation.icosphere(level, radius=radius)
    return np.asarray(m.vertices), np.asarray(m.faces)


# ---------------------------------------------------------------- io

@pytest.mark.parametrize("ext", [".obj", ".off", ".ply"])
def test_mesh_round_trip_keeps_order(tmp_path, ext):
    v, f = _sphere(level=2)
    rng = np.random.default_rng(0)
    f = f[rng.permutation(len(f))]
    colors = rng.random((len(v), 3))
    save_mesh(tmp_path / f"m{ext}", v, f, vertex_colors=colors)
    m = load_mesh(tmp_path / f"m{ext}")
    np.testing.assert_allclose(m.vertices, v, atol=1e-6)
    np.testing.assert_array_equal(m.faces, f)
    if ext != ".off":
        np.testing.assert_allclose(m.visual.vertex_colors[:, :3] / 255.0, colors, atol=1 / 255.0)


@pytest.mark.parametrize("ext", [".obj", ".ply"])
def test_mesh_round_trip_keeps_normals(tmp_path, ext):
    v, f = _sphere(level=1)
    normals = np.random.default_rng(1).normal(size=v.shape)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    save_mesh(tmp_path / f"m{ext}", v, f, vertex_normals=normals)
    m = load_mesh(tmp_path / f"m{ext}")
    np.testing.assert_allclose(m.vertex_normals, normals, atol=1e-5)


@pytest.mark.parametrize("ext,fields", [(".xyz", ("normals",)), (".xyzn", ("normals",)), (".pts", ()),
                                        (".ply", ("normals", "colors", "labels")),
                                        (".npz", ("normals", "colors", "labels"))])
def test_point_cloud_round_trip(tmp_path, ext, fields):
    rng = np.random.default_rng(2)
    data = {"points": rng.normal(size=(50, 3)).astype(np.float32),
            "normals": rng.normal(size=(50, 3)).astype(np.float32),
            "colors": rng.random((50, 3)), "labels": rng.integers(0, 5, 50)}
    save_point_cloud(tmp_path / f"c{ext}", data["points"], **{k: data[k] for k in fields})
    back = load_point_cloud(tmp_path / f"c{ext}")
    np.testing.assert_allclose(back["points"], data["points"], atol=1e-6)
    for key in ("normals", "colors", "labels"):
        if key in fields:
            np.testing.assert_allclose(back[key], data[key], atol=1 / 255.0 if key == "colors" else 1e-6)
        else:
            assert back[key] is None


def test_pts_and_seg_files_as_shapenet_part_writes_them(tmp_path):
    (tmp_path / "a.pts").write_text("0.1 0.2 0.3\n-0.5 0.25 1\n")
    (tmp_path / "a.seg").write_text("1\n3\n")
    cloud = load_point_cloud(tmp_path / "a.pts")
    np.testing.assert_allclose(cloud["points"], [[0.1, 0.2, 0.3], [-0.5, 0.25, 1.0]], atol=1e-7)
    labels = load_seg(tmp_path / "a.seg")
    assert labels.dtype == np.int64 and labels.tolist() == [1, 3]
    save_seg(tmp_path / "b.seg", labels)
    assert (tmp_path / "b.seg").read_text().split() == ["1", "3"]


def test_bad_files_raise_naming_the_file(tmp_path):
    (tmp_path / "text.obj").write_text("hello world\n")
    (tmp_path / "past.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 5\n")
    (tmp_path / "past.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n")
    (tmp_path / "empty.xyz").write_text("")
    (tmp_path / "nan.xyz").write_text("0 0 nan\n")
    (tmp_path / "cols.xyz").write_text("0 0 0 1\n")
    for name in ("text.obj", "past.off", "past.obj", "missing.off"):
        with pytest.raises(ShapeLabError, match=name):
            load_mesh(tmp_path / name)
    for name in ("empty.xyz", "nan.xyz", "cols.xyz"):
        with pytest.raises(ShapeLabError, match=name):
            load_point_cloud(tmp_path / name)
    v, f = _sphere(level=0)
    with pytest.raises(ShapeLabError, match="NaN"):
        save_mesh(tmp_path / "x.off", np.where(np.arange(len(v))[:, None] == 0, np.nan, v), f)
    with pytest.raises(ShapeLabError, match="index"):
        save_mesh(tmp_path / "x.off", v, f + len(v))
    assert not (tmp_path / "x.off").exists()


def test_empty_mesh_file_is_allowed_only_when_asked(tmp_path):
    save_mesh(tmp_path / "e.off", np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    assert len(load_mesh(tmp_path / "e.off", allow_empty=True).faces) == 0
    with pytest.raises(ShapeLabError, match="e.off"):
        load_mesh(tmp_path / "e.off")


# ---------------------------------------------------------------- marching cubes

def test_marching_cubes_sphere_world_coordinates_and_orientation():
    g = grid_points(41).reshape(-1, 3).astype(np.float64)
    centre, r = np.array([0.1, -0.05, 0.0]), 0.3
    values = (r - np.linalg.norm(g - centre, axis=1)).reshape(41, 41, 41)
    v, f = marching_cubes(values, 0.0)
    assert v.dtype == np.float32 and f.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(v - centre, axis=1), r, atol=3e-3)
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * r ** 3, rel=0.02)  # positive: faces point out


def test_marching_cubes_closes_a_shape_touching_the_box():
    v, f = marching_cubes(np.ones((5, 5, 5)), 0.5, box_min=-1.0, box_max=1.0)
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.is_watertight
    np.testing.assert_allclose(v.min(0), -1.0, atol=1e-6)
    np.testing.assert_allclose(v.max(0), 1.0, atol=1e-6)


# ---------------------------------------------------------------- mesh_contains

def test_mesh_contains_sphere_and_box_against_analytic():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-0.6, 0.6, (20000, 3))
    v, f = _sphere(0.4, level=4)
    r = np.linalg.norm(pts, axis=1)
    clear = (r < 0.39) | (r > 0.401)  # the icosphere lies between radius ~0.3985 and 0.4
    for method in ("auto", "raycast"):
        inside = mesh_contains(v, f, pts, method=method)
        np.testing.assert_array_equal(inside[clear], r[clear] < 0.395)
    box = trimesh.creation.box((0.5, 0.3, 0.2))
    inside = mesh_contains(box.vertices, box.faces, pts)
    half = np.array([0.25, 0.15, 0.1])
    expected = np.all(np.abs(pts) < half, axis=1)
    clear = np.all(np.abs(np.abs(pts) - half) > 1e-6, axis=1)
    np.testing.assert_array_equal(inside[clear], expected[clear])


def test_mesh_contains_torch_in_torch_out():
    v, f = _sphere(0.4, level=2)
    out = mesh_contains(torch.tensor(v), torch.tensor(f), torch.tensor([[0.0, 0, 0], [0.5, 0, 0]]))
    assert isinstance(out, torch.Tensor) and out.tolist() == [True, False]


def test_winding_number_closed_forms():
    # The triangle (e_x, e_y, e_z) covers one octant of the sphere seen from the origin: w = 1/8.
    v = np.eye(3)
    assert winding_number(v, np.array([[0, 1, 2]]), np.zeros((1, 3)))[0] == pytest.approx(1 / 8, abs=1e-6)
    assert winding_number(v, np.array([[0, 2, 1]]), np.zeros((1, 3)))[0] == pytest.approx(-1 / 8, abs=1e-6)
    # A face of the cube [-1,1]^3 seen from the centre covers 1/6 of the sphere.
    sq = np.array([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], float)
    assert winding_number(sq, np.array([[0, 1, 2], [0, 2, 3]]), np.zeros((1, 3)))[0] == pytest.approx(1 / 6, abs=1e-6)


def test_winding_number_on_an_open_mesh():
    v, f = _sphere(0.4, level=3)
    m = trimesh.Trimesh(v, f, process=False)
    keep = m.triangles_center[:, 2] < 0.35  # cut a small cap off: not watertight any more
    vo, fo = v, f[keep]
    assert not is_watertight(vo, fo)
    pts = np.array([[0, 0, 0], [0.1, 0.1, -0.2], [0, 0, 0.3], [0.6, 0, 0], [0, 0, 0.5], [0, 0, -0.6]])
    expected = [True, True, True, False, False, False]
    assert mesh_contains(vo, fo, pts).tolist() == expected          # auto -> winding number
    assert mesh_contains(vo, fo, pts, method="winding").tolist() == expected
    w = winding_number(v, f, pts)  # closed mesh: 1 inside, 0 outside
    np.testing.assert_allclose(w, np.array(expected, float), atol=1e-5)


def test_mesh_contains_bad_input():
    v, f = _sphere(level=0)
    with pytest.raises(ShapeLabError, match="NaN"):
        mesh_contains(v, f, np.array([[0, np.nan, 0]]))
    with pytest.raises(ShapeLabError, match="faces index"):
        mesh_contains(v, f + 100, np.zeros((1, 3)))
    with pytest.raises(ShapeLabError, match="odd"):
        mesh_contains(v, f, np.zeros((1, 3)), nsamples=2)


# ---------------------------------------------------------------- voxels

def test_voxelize_mesh_of_a_box_is_the_cells_it_overlaps():
    res, lo, hi = 16, -0.23, 0.17
    box = trimesh.creation.box(bounds=[[lo] * 3, [hi] * 3])
    grid = voxelize_mesh(box.vertices, box.faces, res)
    edges = np.linspace(-0.5, 0.5, res + 1)
    overlaps_1d = (edges[1:] > lo) & (edges[:-1] < hi)
    expected = overlaps_1d[:, None, None] & overlaps_1d[None, :, None] & overlaps_1d[None, None, :]
    np.testing.assert_array_equal(grid, expected)
    surface = surface_voxels(box.vertices, box.faces, res)
    inner_1d = (edges[:-1] > lo) & (edges[1:] < hi)
    inner = inner_1d[:, None, None] & inner_1d[None, :, None] & inner_1d[None, None, :]
    np.testing.assert_array_equal(surface, expected & ~inner)


def test_voxelize_points_and_centres():
    centres = voxel_centers(4).reshape(-1, 3)
    assert voxelize_points(centres, 4).all()
    grid = voxelize_points(np.array([[-0.49, -0.49, -0.49], [0.3, 0.0, -0.1], [2.0, 0, 0]]), 4)
    assert grid.sum() == 2 and grid[0, 0, 0] and grid[3, 2, 1]


# ---------------------------------------------------------------- binvox

# dim 2 2 2, translate (0.5 -1 2), scale 1.5; file order x,z,y with y fastest:
# flat = [0,0,0,1, 1,1,1,1] -> runs (0,3), (1,5)
HAND_WRITTEN = (b"#binvox 1\ndim 2 2 2\ntranslate 0.5 -1.0 2.0\nscale 1.5\ndata\n" + bytes([0, 3, 1, 5]))


def test_binvox_hand_written_file(tmp_path):
    (tmp_path / "hand.binvox").write_bytes(HAND_WRITTEN)
    grid, translate, scale = read_binvox(tmp_path / "hand.binvox")
    expected = np.ones((2, 2, 2), bool)
    expected[0] = [[False, False], [False, True]]  # x=0: file index (z, y) = 3 -> z=1, y=1 -> grid[0, 1, 1]
    np.testing.assert_array_equal(grid, expected)
    np.testing.assert_allclose(translate, [0.5, -1.0, 2.0])
    assert scale == 1.5
    write_binvox(tmp_path / "out.binvox", expected, translate, scale)
    assert (tmp_path / "out.binvox").read_bytes() == HAND_WRITTEN
    np.testing.assert_allclose(binvox_voxel_centers(grid, translate, scale)[0], [0.5 + 0.375, -1 + 1.125, 2 + 1.125])


def test_binvox_round_trip_long_runs_and_non_cubic(tmp_path):
    rng = np.random.default_rng(4)
    grid = rng.random((6, 40, 17)) > 0.5
    grid[:3] = True  # runs longer than 255
    write_binvox(tmp_path / "a.binvox", grid, (0.1, 0.2, -0.3), 0.75)
    back, t, s = read_binvox(tmp_path / "a.binvox")
    np.testing.assert_array_equal(back, grid)
    np.testing.assert_allclose(t, [0.1, 0.2, -0.3])
    assert s == 0.75


def test_binvox_bad_files(tmp_path):
    (tmp_path / "short.binvox").write_bytes(HAND_WRITTEN[:-1] + bytes([4]))
    with pytest.raises(ShapeLabError, match="run lengths"):
        read_binvox(tmp_path / "short.binvox")
    (tmp_path / "no.binvox").write_bytes(b"P6\n2 2\n")
    with pytest.raises(ShapeLabError, match="not a binvox"):
        read_binvox(tmp_path / "no.binvox")


# ---------------------------------------------------------------- MISE

def _torus(p):
    p = np.asarray(p, np.float64)
    q = np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2) - 0.25
    return 1.0 - np.sqrt(q ** 2 + p[:, 2] ** 2) / 0.2  # > 0.5 inside a tube of radius 0.1


def _box_fn(p):
    p = np.asarray(p, np.float64)
    return 0.5 + (0.31 - np.abs(p - np.array([0.03, -0.02, 0.05])).max(1))


@pytest.mark.parametrize("fn", [_torus, _box_fn])
def test_mise_matches_dense_extraction_with_fewer_evaluations(fn):
    v, f, n, values = mise_extract(fn, resolution0=16, upsampling_steps=2, threshold=0.5, return_values=True)
    dv, df, dn = dense_extract(fn, 65, threshold=0.5)
    dense_values = fn(grid_points(65).reshape(-1, 3)).reshape(65, 65, 65)
    inside, dense_inside = values > 0.5, dense_values > 0.5
    assert (inside & dense_inside).sum() / (inside | dense_inside).sum() >= 0.995
    assert n < dn / 2
    assert len(f) == len(df)
    np.testing.assert_allclose(np.sort(v, axis=0), np.sort(dv, axis=0), atol=1e-5)


def test_mise_torch_callable_and_bad_values():
    calls = []

    def fn(points):
        assert isinstance(points, torch.Tensor)
        calls.append(len(points))
        return 0.3 - points.norm(dim=1)

    v, f, n = mise_extract(fn, resolution0=8, upsampling_steps=1, threshold=0.0, batch_points=100, device="cpu")
    assert n == sum(calls) and max(calls) <= 100
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 0.3, atol=0.01)
    with pytest.raises(ShapeLabError, match="NaN"):
        mise_extract(lambda p: np.full(len(p), np.nan), resolution0=4, upsampling_steps=1)


def test_off_fast_path_and_fallback_agree_with_trimesh(tmp_path):
    v, f = _sphere(level=2)
    save_mesh(tmp_path / "plain.off", v, f)
    fast = load_mesh(tmp_path / "plain.off")
    slow = trimesh.load(tmp_path / "plain.off", process=False)
    np.testing.assert_allclose(fast.vertices, slow.vertices)
    np.testing.assert_array_equal(fast.faces, slow.faces)
    (tmp_path / "quad.off").write_text("OFF\n4 1 0\n\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")  # blank line, quad
    assert load_mesh(tmp_path / "quad.off").faces.tolist() == [[0, 1, 2], [2, 3, 0]]


def test_is_watertight_merges_duplicates_and_needs_consistent_orientation():
    v, f = _sphere(level=1)
    assert is_watertight(v, f)
    soup_v = v[f].reshape(-1, 3)
    soup_f = np.arange(len(soup_v)).reshape(-1, 3)
    assert is_watertight(soup_v, soup_f)          # same surface, every vertex duplicated
    assert not is_watertight(v, f[1:])            # a hole
    flipped = f.copy()
    flipped[0] = flipped[0, ::-1]
    assert not is_watertight(v, flipped)          # one face oriented the other way


@pytest.mark.parametrize("open_mesh", [False, True])
def test_fast_winding_number_close_to_exact(open_mesh):
    v, f = _sphere(0.4, level=3)
    if open_mesh:
        f = f[trimesh.Trimesh(v, f, process=False).triangles_center[:, 2] < 0.3]
    rng = np.random.default_rng(5)
    surface = trimesh.Trimesh(v, f, process=False).sample(300, seed=6)
    pts = np.concatenate([rng.uniform(-0.6, 0.6, (700, 3)), surface + rng.normal(scale=0.003, size=surface.shape)])
    exact = winding_number(v, f, pts, fast=False)
    for cluster_size in (4, 8, 32):  # 2-level tree with many / few / one group
        approx = fast_winding_number(v, f, pts, cluster_size=cluster_size)
        assert np.abs(approx - exact).max() < 0.02
        np.testing.assert_array_equal(np.abs(approx) > 0.5, np.abs(exact) > 0.5)
