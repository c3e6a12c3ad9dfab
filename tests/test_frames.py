"""Coordinate frames: closed-form rotations, the embedded data written in the real datasets' frames and read
back in the canonical one (y up, front +z), cameras and voxels turned with the points, axis options."""
import itertools
import os
import sys

import numpy as np
import pytest
import torch

from modules.data import categories, ifnet, onet, r2n2, shapenet_part
from modules.data.fields import FieldsDataset, ImagesField, MeshField, VoxelsField
from modules.data.mesh_dataset import MeshConfig, path_frame, preprocess_meshes
from modules.data.pointcloud_datasets import ShapeNetPartDataset
from modules.data.synth import SynthConfig, build_shape, generate
from modules.geometry.binvox import binvox_voxel_centers, place_binvox, read_binvox
from modules.geometry.cameras import Camera, look_at_camera, r2n2_camera
from modules.geometry.frames import (AXES, DATASET_FRAMES, check_axis_options, frame_rotation, rotate_binvox,
                                     rotate_camera, rotate_grid, rotate_world_mat, rotation_about_axis,
                                     rotation_between, to_canonical_rotation)
from modules.geometry.io import load_mesh, save_mesh
from modules.geometry.knn import knn_search_numpy
from modules.utils import ROOT, ShapeLabError

V1_TO_CANONICAL = np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]])     # x = -z1, z = x1: front +x -> +z
RES = 64        # marching-cubes resolution of the test data (vertices 0.016 apart)
NEAR = 0.02     # surface samples lie this close to a mesh vertex


# ------------------------------------------------------------------ rotations

def test_closed_forms():
    np.testing.assert_array_equal(rotation_between("shapenet_v1", "shapenet_v2"), [[0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    np.testing.assert_array_equal(frame_rotation("y", "x"), V1_TO_CANONICAL)
    np.testing.assert_array_equal(to_canonical_rotation("shapenet_v2"), np.diag([-1, 1, -1]))
    np.testing.assert_array_equal(frame_rotation("z", "-y"), [[1, 0, 0], [0, 0, 1], [0, -1, 0]])   # ModelNet
    np.testing.assert_array_equal(to_canonical_rotation("dfaust"), np.eye(3))
    np.testing.assert_array_equal(to_canonical_rotation("canonical"), np.eye(3))


def test_every_frame_is_a_rotation_taking_up_and_front_home():
    count = 0
    for up, front in itertools.product(AXES, AXES):
        if up.strip("-") == front.strip("-"):
            with pytest.raises(ShapeLabError, match="perpendicular"):
                frame_rotation(up, front)
            continue
        R = frame_rotation(up, front)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        u = np.zeros(3); u["xyz".index(up[-1])] = -1 if up[0] == "-" else 1
        f = np.zeros(3); f["xyz".index(front[-1])] = -1 if front[0] == "-" else 1
        np.testing.assert_array_equal(R @ u, [0, 1, 0])
        np.testing.assert_array_equal(R @ f, [0, 0, 1])
        # to any other frame and back is the identity; composition through a third frame agrees
        for other in DATASET_FRAMES:
            there = rotation_between((up, front), other)
            np.testing.assert_allclose(rotation_between(other, (up, front)) @ there, np.eye(3), atol=1e-12)
            np.testing.assert_allclose(rotation_between(other, None) @ there, R, atol=1e-12)
        count += 1
    assert count == 24


def test_bad_axes_are_one_line_errors():
    for bad, match in (("w", r"--up 'w': expected one of x, y, z, -x, -y, -z"), ("xy", "--up 'xy'"), ("--z", "--up '--z'")):
        with pytest.raises(ShapeLabError, match=match) as err:
            check_axis_options(bad, None)
        assert "\n" not in str(err.value)
    with pytest.raises(ShapeLabError, match=r"--front 'q'"):
        check_axis_options(None, "q")
    with pytest.raises(ShapeLabError, match="perpendicular"):
        check_axis_options("z", "-z")
    with pytest.raises(ShapeLabError, match="expected one of canonical, shapenet_v1"):
        to_canonical_rotation("shapenet_v3")
    check_axis_options("+z", "-y")          # '+z' is accepted


def test_grid_rotation_moves_voxels_with_their_centres():
    rng = np.random.default_rng(0)
    grid = rng.random((5, 6, 7)) < 0.3
    lo, side = np.array([0.2, -0.4, 0.1]), 1.3
    for up, front in (("y", "x"), ("z", "-y"), ("-x", "z"), ("y", "-z")):
        R = frame_rotation(up, front)
        g2, lo2, s2 = rotate_binvox(grid, lo, side, R)
        assert g2.sum() == grid.sum() and s2 == side
        a = np.round(binvox_voxel_centers(grid, lo, side) @ R.T, 9)
        b = np.round(binvox_voxel_centers(g2, lo2, s2), 9)
        assert sorted(map(tuple, a)) == sorted(map(tuple, b))
        np.testing.assert_array_equal(rotate_grid(g2, R.T), grid)       # and back
    with pytest.raises(ShapeLabError, match="axis permutation"):
        rotate_grid(grid, rotation_about_axis(0.3))


def test_cameras_turn_with_the_points():
    cam = look_at_camera((1.0, 0.8, 2.0), dtype=torch.float64)
    pts = np.random.default_rng(1).uniform(-0.5, 0.5, (50, 3))
    R = frame_rotation("z", "-y")
    moved = rotate_camera(cam, R)
    np.testing.assert_allclose(moved.project(torch.tensor(pts @ R.T)).numpy(), cam.project(torch.tensor(pts)).numpy(),
                               atol=1e-9)
    w = np.concatenate([cam.R.numpy(), cam.t.numpy()[:, None]], 1)
    np.testing.assert_allclose(rotate_world_mat(w, R)[:, :3], moved.R.numpy(), atol=1e-12)


def test_augmentation_rotates_about_up():
    R = rotation_about_axis(1.1, "y")
    np.testing.assert_allclose(R @ [0, 1, 0], [0, 1, 0])
    p = np.random.default_rng(2).normal(size=(20, 3))
    q = p @ R.T
    np.testing.assert_allclose(q[:, 1], p[:, 1])
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), np.linalg.norm(p, axis=1))
    assert not np.allclose(q, p)


# ------------------------------------------------------------------ the embedded data in the real frames

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("frames")
    cfg = SynthConfig(out=str(out), views=2, n_surface=3000, n_uniform=3000, n_ifnet_surface=1000, n_part_points=2000,
                      formats=("onet", "ifnet", "r2n2", "shapenet_part"), resolution=RES)
    summary = generate(cfg, ["airplane", "chair", "table"], 1, jobs=1, progress=False)
    assert summary["written"] == 3
    return str(out)


def _ids(root, synset):
    return sorted(d for d in os.listdir(os.path.join(root, "onet", synset)) if d.startswith("synth_"))


def _on_object(uv, mask):
    """Fraction of projected points on object pixels (mask dilated by one pixel: edges of thin parts)."""
    m = torch.nn.functional.max_pool2d(torch.as_tensor(mask)[None, None].float(), 3, 1, 1)[0, 0] > 0
    ij = torch.as_tensor(uv).floor().long()
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < m.shape[1]) & (ij[:, 1] >= 0) & (ij[:, 1] < m.shape[0])
    return float(m[ij[inside, 1], ij[inside, 0]].float().sum()) / len(inside)


def _far(points, vertices):
    """Largest distance from points to the nearest mesh vertex."""
    return float(knn_search_numpy(np.asarray(points, np.float64), np.asarray(vertices, np.float64))[0].max())


def _part(name, part):
    return {n: i for i, n in categories.part_table(name).items()}[part]


def test_files_are_in_shapenet_v1_axes(data):
    """ONet-layout airplanes' fuselages run along x (nose +x), chairs face +x, tables are long along z."""
    sp = os.path.join(data, "shapenet_part")
    for sid in _ids(data, categories.SYNSETS["airplane"]):
        raw = shapenet_part.read_shape(sp, categories.SYNSETS["airplane"], sid, frame="canonical")
        body = raw["points"][raw["labels"] == _part("airplane", "body")]
        ext = body.max(0) - body.min(0)
        assert ext[0] > 2 * max(ext[1], ext[2])                                   # fuselage along x
        tail = raw["points"][raw["labels"] == _part("airplane", "tail")]
        assert tail[:, 0].mean() < body[:, 0].mean() - 0.1                       # tail aft: nose at +x
        pc, _ = onet.read_pointcloud_npz(os.path.join(data, "onet", categories.SYNSETS["airplane"], sid,
                                                      "pointcloud.npz"), frame="canonical")
        assert np.ptp(pc[:, 0]) > 0.8 * np.ptp(pc, axis=0).max()
    for sid in _ids(data, categories.SYNSETS["chair"]):
        raw = shapenet_part.read_shape(sp, categories.SYNSETS["chair"], sid, frame="canonical")
        back = raw["points"][raw["labels"] == _part("chair", "back")]
        seat = raw["points"][raw["labels"] == _part("chair", "seat")]
        assert back[:, 0].mean() < seat[:, 0].mean() - 0.1                        # back at -x: faces +x
        assert abs(back[:, 2].mean() - seat[:, 2].mean()) < 0.05
    for i, sid in enumerate(_ids(data, categories.SYNSETS["table"])):
        shape = build_shape("table", i, 0, RES)
        ext_c = np.ptp(shape.vertices, axis=0)
        pc, _ = onet.read_pointcloud_npz(os.path.join(data, "onet", categories.SYNSETS["table"], sid, "pointcloud.npz"),
                                         frame="canonical")
        ext = np.ptp(pc, axis=0)
        np.testing.assert_allclose(ext, ext_c[[2, 1, 0]], atol=0.01)              # canonical x (long) -> v1 z


def test_read_back_is_the_generators_shape(data):
    """Every layout read with its defaults gives the generator's canonical shape; raw = v1 axes of it."""
    Rc = to_canonical_rotation("shapenet_v1")
    for name in ("airplane", "chair"):
        synset = categories.SYNSETS[name]
        sid = _ids(data, synset)[0]
        shape = build_shape(name, 0, 0, RES)
        d = os.path.join(data, "onet", synset, sid)
        pc, nrm = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"))
        raw_pc, raw_nrm = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"), frame="canonical")
        np.testing.assert_array_equal(pc, raw_pc @ Rc.T)
        np.testing.assert_array_equal(nrm, raw_nrm @ Rc.T)
        assert _far(pc, shape.vertices) < NEAR                                 # on the generator's surface
        assert _far(raw_pc, shape.vertices) > 0.1                               # the raw file is turned
        m = load_mesh(os.path.join(d, "model.off"))
        np.testing.assert_allclose(np.asarray(m.vertices) @ Rc.T, shape.vertices, atol=1e-5)
        np.testing.assert_allclose(onet.read_mesh(os.path.join(d, "model.off")).vertices, shape.vertices, atol=1e-5)
        iso = ifnet.read_mesh(os.path.join(data, "ifnet", synset, sid, "isosurf_scaled.off"))
        np.testing.assert_allclose(iso.vertices, shape.vertices, atol=1e-5)
        pts, occ = onet.read_points_npz(os.path.join(d, "points.npz"))
        from modules.data.synth import occupancy
        assert np.mean(occupancy(shape.prims, pts) == occ) > 0.995           # labels of the canonical shape
        surf = ifnet.read_surface_samples(os.path.join(data, "ifnet", synset, sid, "surface_30000_samples.npy"))
        assert _far(surf, shape.vertices) < NEAR
        bp, bocc = ifnet.read_boundary_samples(os.path.join(data, "ifnet", synset, sid, "boundary_0.01_samples.npz"))
        assert np.mean(occupancy(shape.prims, bp) == bocc) > 0.999
        sp = shapenet_part.read_shape(os.path.join(data, "shapenet_part"), synset, sid)
        assert _far(sp["points"], shape.vertices) < NEAR


def test_cameras_and_voxels_follow_the_frame(data):
    """Raw v1 coordinates with the files' own cameras land on the object; so do canonical points with the
    readers' cameras; the binvox grid is in v1 axes (raw mesh vertices fall in its full voxels)."""
    synset = categories.SYNSETS["chair"]
    sid = _ids(data, synset)[0]
    d = os.path.join(data, "onet", synset, sid)
    raw_pc, _ = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"), frame="canonical")
    raw_loc, scale = onet.read_loc_scale(os.path.join(d, "pointcloud.npz"), frame="canonical")
    raw_cams = onet.read_cameras(os.path.join(d, "img_choy2016", "cameras.npz"), loc=raw_loc, scale=scale,
                                 frame="canonical")
    pc, _ = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"))
    loc, _ = onet.read_loc_scale(os.path.join(d, "pointcloud.npz"))
    cams = onet.read_cameras(os.path.join(d, "img_choy2016", "cameras.npz"), loc=loc, scale=scale)
    for i in range(2):
        img = r2n2.read_image(os.path.join(d, "img_choy2016", f"{i:03d}.jpg"), "RGB").astype(np.float64) / 255
        fg = np.abs(1 - img).max(-1) > 0.1
        assert _on_object(raw_cams[i].project(torch.tensor(raw_pc[::4])), fg) > 0.99
        assert _on_object(cams[i].project(torch.tensor(pc[::4])), fg) > 0.99
        # a reader that forgot to turn the camera would miss
        assert _on_object(raw_cams[i].project(torch.tensor(pc[::4])), fg) < 0.9
    # R2N2: metadata measured in v1 (PyTorch3D's camera on the raw v1 mesh) and canonical mesh + reader camera
    root = os.path.join(data, "r2n2")
    v_raw = np.asarray(load_mesh(r2n2.mesh_path(root, synset, sid)).vertices, np.float64)
    meta = r2n2.read_rendering_metadata(os.path.join(r2n2.rendering_dir(root, synset, sid), "rendering_metadata.txt"))
    for i, row in enumerate(meta):
        alpha = r2n2.read_image(r2n2.image_path(root, synset, sid, i))[..., 3] > 0
        raw_cam = r2n2_camera(float(row[0]), float(row[1]), float(row[3]), dtype=torch.float64)
        assert _on_object(raw_cam.project(torch.tensor(v_raw[::5])), alpha) > 0.99
        cam = r2n2.view_camera(row)
        assert _on_object(cam.project(torch.tensor((v_raw @ to_canonical_rotation("shapenet_v1").T)[::5]).float()),
                          alpha) > 0.99
    grid, translate, s = read_binvox(r2n2.binvox_path(root, synset, sid))
    lo = v_raw.min(0)
    np.testing.assert_allclose(translate, lo, atol=1e-3)                       # binvox tool: bbox min corner
    placed = place_binvox(grid, translate, s, 32, (translate, translate + s))
    idx = np.clip(((v_raw - translate) / s * 32).astype(int), 0, 31)
    assert placed[idx[:, 0], idx[:, 1], idx[:, 2]].mean() > 0.99
    # fields: voxels, mesh and camera in the canonical frame together
    ds = FieldsDataset(root, "r2n2", "train" if r2n2.read_split(os.path.join(root, "split.json"), "train") else "test",
                       [ImagesField("RGBA"), VoxelsField(), MeshField()], train=False)
    s0 = ds[0]
    v = s0["mesh.vertices"].numpy()
    cam = Camera(K=s0["image.K"], R=s0["image.R"], t=s0["image.t"], width=137, height=137)
    assert _on_object(cam.project(torch.tensor(v[::5])), s0["image"][3] > 0) > 0.99
    c = np.clip(((v + 0.5) * 32).astype(int), 0, 31)                           # voxels over [-0.5, 0.5]^3
    assert s0["voxels"].numpy()[c[:, 0], c[:, 1], c[:, 2]].mean() > 0.99


def test_r2n2_metadata_azimuth_is_measured_in_v1():
    rows = np.array([[90.0, 27, 0, 0.8, 25], [0.0, 26, 0, 0.9, 25], [180.0, 25, 0, 0.7, 25]])
    v1 = r2n2.metadata_rows_in_frame(rows)
    np.testing.assert_allclose(v1[:, 0], [0.0, 270.0, 90.0], atol=1e-9)      # canonical front (+z) = v1 azimuth 0
    np.testing.assert_array_equal(v1[:, 1:], rows[:, 1:])
    for row, row_v1 in zip(rows, v1):
        a = r2n2_camera(*row[[0, 1, 3]], dtype=torch.float64)
        b = r2n2.view_camera(row_v1)
        np.testing.assert_allclose(b.center.double().numpy(), a.center.numpy(), atol=1e-5)


def test_pointnet_reads_shapenet_part_frame_and_rotates_about_up(data):
    root = os.path.join(data, "shapenet_part")
    plain = ShapeNetPartDataset(root, "test" if shapenet_part.read_split(root, "test") else "train", "cls",
                                num_points=2000, augment=True, rotate=False)
    turned = ShapeNetPartDataset(root, plain.split, "cls", num_points=2000, augment=True, rotate=True)
    a, b = plain[0]["points"].numpy(), turned[0]["points"].numpy()                  # (3, N), all points permuted
    np.testing.assert_allclose(np.sort(a[1]), np.sort(b[1]), atol=1e-5)            # the up coordinate is kept
    np.testing.assert_allclose(np.sort(np.linalg.norm(a, axis=0)), np.sort(np.linalg.norm(b, axis=0)), atol=1e-5)
    np.testing.assert_allclose(np.sort(a[0] ** 2 + a[2] ** 2), np.sort(b[0] ** 2 + b[2] ** 2), atol=1e-5)
    assert not (np.allclose(np.sort(a[0]), np.sort(b[0]), atol=1e-3)
                and np.allclose(np.sort(a[2]), np.sort(b[2]), atol=1e-3))
    # samples are canonical: the file read in its own frame equals the raw file turned
    pts, _ = plain.items[0][:2]
    synset, sid = categories.SYNSETS[plain.items[0][2]], plain.items[0][3]
    raw = shapenet_part.read_shape(root, synset, sid, frame="canonical")["points"]
    np.testing.assert_allclose(pts, raw @ V1_TO_CANONICAL.T, atol=1e-6)


# ------------------------------------------------------------------ real-mesh sources

def test_modelnet_style_z_up_mesh_is_turned(tmp_path):
    shape = build_shape("chair", 0, 0, RES)
    R_mn = to_canonical_rotation("modelnet").T                               # canonical -> z up, front -y
    src = tmp_path / "ModelNet40" / "chair" / "train" / "chair_0001.off"
    src.parent.mkdir(parents=True)
    save_mesh(str(src), shape.vertices @ R_mn.T * 30.0, shape.faces)         # z-up, arbitrary units
    assert path_frame(str(src)) == "modelnet"
    plain = tmp_path / "other" / "chair.off"
    plain.parent.mkdir()
    save_mesh(str(plain), shape.vertices @ R_mn.T * 30.0, shape.faces)
    small = dict(views=0, n_surface=2000, n_uniform=2000, formats=("onet",), watertight_resolution=5000)
    for path, opts in ((src, {}), (plain, dict(up="z", front="-y"))):
        out = tmp_path / f"out_{path.stem}_{len(opts)}"
        summary = preprocess_meshes(MeshConfig(out=str(out), **small, **opts), [str(path)], progress=False)
        assert summary["written"] == 1, summary["rows"]
        assert summary["rows"][0]["frame"].startswith("modelnet")
        d = os.path.join(out, "onet", "mesh", path.stem)
        pc, _ = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"))
        assert _far(pc, shape.vertices) < NEAR                                     # canonical again
        raw, _ = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"), frame="canonical")
        np.testing.assert_allclose(np.ptp(raw, axis=0), np.ptp(shape.vertices, axis=0)[[2, 1, 0]], atol=0.01)


def test_cli_axis_options_are_checked(tmp_path, capsys):
    sys.path.insert(0, ROOT)
    try:
        import preprocess
    finally:
        sys.path.remove(ROOT)
    out = str(tmp_path / "out")
    for args, want in ((["mesh", "--in", "nowhere.off", "--out", out, "--up", "w"], "--up 'w'"),
                       (["mesh", "--in", "x.off", "--out", out, "--up", "z", "--front", "z"], "perpendicular"),
                       (["xyz", "--in", "x.off", "--front", "up"], "--front 'up'")):
        with pytest.raises(SystemExit) as ex:
            preprocess.main(args)
        assert ex.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and want in lines[0], lines
    assert not os.path.exists(out)
