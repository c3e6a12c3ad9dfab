"""Image datasets in the real layouts: R2N2 / ONet cameras against their reference formulas, points of the
embedded data landing on their own renders, binvox placement by header, the composable fields in every
layout (round trips against the plain readers), render styles, and bad input."""
import math
import os
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from modules.data import humans, onet, r2n2
from modules.data.fields import (FieldsDataset, ImagesField, MeshField, PartLabelsField, PointCloudField, PointsField,
                                 VoxelsField, collate_fields)
from modules.data.synth import SynthConfig, generate
from modules.data.writers import DFAUST_EYE, DFAUST_FROM_STORED
from modules.geometry.binvox import binvox_voxel_centers, place_binvox, read_binvox, write_binvox
from modules.geometry.cameras import Camera, look_at_camera, r2n2_camera
from modules.geometry.frames import rotate_binvox, rotate_grid, to_canonical_rotation
from modules.geometry.io import load_mesh
from modules.utils import ShapeLabError

# ---------------------------------------------------------------- cameras


def _pytorch3d_r2n2_pixels(points, az, el, ratio, size=137):
    """Naive reference: PyTorch3D's R2N2 camera (datasets/r2n2/utils.py compute_extrinsic_matrix with Blender's
    rotation, BLENDER_INTRINSIC, the diag(-1,1,-1) change to PyTorch3D's camera, NDC +x left / +y up)."""
    a, e = -math.radians(az), -math.radians(el)
    sa, ca, se, ce = math.sin(a), math.cos(a), math.sin(e), math.cos(e)
    r_world2obj = np.array([[ca * ce, sa * ce, -se], [-sa, ca, 0], [ca * se, sa * se, ce]])
    r_obj2cam = np.array([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]])
    rt = np.eye(4)
    rt[:3, :3] = r_obj2cam @ r_world2obj
    rt[:3, 3] = -(r_obj2cam @ np.array([1.75 * ratio, 0, 0]))
    rot = np.array([[1.0, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    x = (rt @ rot @ np.c_[points, np.ones(len(points))].T).T[:, :3]
    p3d = x * np.array([-1.0, 1, -1])                       # PyTorch3D camera: x left, y up, z forward
    ndc = 2.1875 * p3d[:, :2] / p3d[:, 2:3]
    return np.stack([(1 - ndc[:, 0]) * size / 2, (1 - ndc[:, 1]) * size / 2], 1)


@pytest.mark.parametrize("az,el,ratio", [(0.0, 25.0, 0.8), (90.0, 27.5, 0.65), (293.7, 29.9, 0.95), (181.0, 26.0, 0.7)])
def test_r2n2_camera_matches_pytorch3d(az, el, ratio):
    pts = np.random.default_rng(0).uniform(-0.4, 0.4, (50, 3))
    cam = r2n2_camera(az, el, ratio, dtype=torch.float64)
    uv = cam.project(torch.tensor(pts)).numpy()
    np.testing.assert_allclose(uv, _pytorch3d_r2n2_pixels(pts, az, el, ratio), atol=1e-9)
    assert cam.K[0, 0].item() == pytest.approx(149.84375) and cam.K[0, 2].item() == pytest.approx(68.5)
    assert 2 * math.degrees(math.atan(68.5 / 149.84375)) == pytest.approx(49.13, abs=0.01)


def test_r2n2_camera_facts():
    """Measured on real ONet cameras: azimuth 0 -> camera on +x, 90 -> +z, elevation -> +y, y up in the image."""
    np.testing.assert_allclose(r2n2_camera(0, 0, 1.0).center.numpy(), [1.75, 0, 0], atol=1e-6)
    np.testing.assert_allclose(r2n2_camera(90, 0, 1.0).center.numpy(), [0, 0, 1.75], atol=1e-6)
    assert r2n2_camera(45, 30, 0.8).center[1].item() == pytest.approx(1.75 * 0.8 * 0.5, abs=1e-6)
    top, bottom = r2n2_camera(30, 25, 0.8).project(torch.tensor([[0, 0.3, 0], [0, -0.3, 0.0]]))
    assert top[1] < bottom[1]                                                   # +y is up in the picture


def test_from_onet_un_normalises_with_loc_scale():
    cam = look_at_camera((1.1, 0.7, -0.9), (0.05, -0.02, 0.1), fov_deg=49.1, width=137, height=137, dtype=torch.float64)
    world_mat, camera_mat = cam.to_onet()
    assert camera_mat[0, 2] == pytest.approx(68.5)                                  # pixel units
    loc, scale = np.array([0.05, -0.1, 0.02]), 0.73
    p = np.random.default_rng(1).uniform(-0.5, 0.5, (30, 3))
    # ONet's im2mesh/common.py: x_cam = R (scale p + loc) + t, then the pixel K
    x = (world_mat[:, :3].astype(np.float64) @ (scale * p + loc).T + world_mat[:, 3:]).T
    ref = (x @ camera_mat.astype(np.float64).T)
    ref = ref[:, :2] / ref[:, 2:]
    got = Camera.from_onet(world_mat, camera_mat, 137, 137, loc=loc, scale=scale).project(torch.tensor(p)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-3)
    ignoring = Camera.from_onet(world_mat, camera_mat, 137, 137).project(torch.tensor(p)).numpy()
    assert np.abs(ignoring - ref).max() > 1.0                                       # loc/scale matter
    with pytest.raises(ShapeLabError, match="both loc and scale"):
        Camera.from_onet(world_mat, camera_mat, 137, 137, loc=loc)


# ---------------------------------------------------------------- the embedded data


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("imgdata")
    cfg = SynthConfig(out=str(out), views=3, n_surface=4000, n_uniform=4000, n_ifnet_surface=500, n_part_points=500,
                      n_genren=500, resolution=64, formats=("onet", "r2n2", "genren", "humans"))
    summary = generate(cfg, ["chair", "airplane", "human"], 2, jobs=1, progress=False)
    assert summary["written"] == 6 and not summary["failed"]
    return out


def _human_split(data):
    return next(iter(humans.read_splits_csv(os.path.join(data, "humans", "d-faust_splits.csv"))))


def _onet_split(root):
    return [s for s in ("train", "val", "test") if onet.read_split(root, s)][0]


def _on_object(uv, mask):
    """Fraction of projected points on object pixels (mask dilated by one pixel: edge pixels of thin parts)."""
    m = torch.as_tensor(mask)[None, None].float()
    m = torch.nn.functional.max_pool2d(m, 3, 1, 1)[0, 0] > 0
    h, w = m.shape
    ij = torch.as_tensor(uv).floor().long()
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
    ij = ij[inside]
    return float(m[ij[:, 1], ij[:, 0]].float().sum()) / len(inside)


def test_onet_points_land_on_their_own_renders(data):
    """Real convention end to end: pointcloud.npz (normalised) + loc/scale + cameras.npz (pixels, original frame)."""
    root = os.path.join(data, "onet")
    for synset, sid in onet.read_split(root, "train") + onet.read_split(root, "val") + onet.read_split(root, "test"):
        d = os.path.join(root, synset, sid)
        pts, _ = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"))
        loc, scale = onet.read_loc_scale(os.path.join(d, "pointcloud.npz"))
        assert scale != pytest.approx(1.0, abs=0.05)            # the files really are in another frame
        cams = onet.read_cameras(os.path.join(d, "img_choy2016", "cameras.npz"), loc=loc, scale=scale)
        raw = onet.read_cameras_npz(os.path.join(d, "img_choy2016", "cameras.npz"))
        for i, cam in enumerate(cams):
            img = r2n2.read_image(os.path.join(d, "img_choy2016", f"{i:03d}.jpg"), "RGB").astype(np.float64) / 255
            fg = np.abs(1 - img).max(-1) > 0.1
            p = torch.tensor(pts[::8])
            assert _on_object(cam.project(p), fg) > 0.99
            # the conventions this replaces put (almost) nothing of the shape on its object
            assert _on_object(Camera.from_onet(*raw[i], 137, 137, units="ndc").project(p), fg) < 0.2
        assert raw[0][1][0, 0] == pytest.approx(149.84375, rel=1e-5)


def test_r2n2_and_human_points_land_on_their_renders(data):
    hits = []
    for split in ("train", "val", "test"):
        try:
            ds = FieldsDataset(os.path.join(data, "r2n2"), "r2n2", split, [ImagesField("RGBA"), PointCloudField(n=800)],
                               train=False)
        except ShapeLabError:
            continue
        for k in range(len(ds)):
            s = ds[k]
            cam = Camera(K=s["image.K"], R=s["image.R"], t=s["image.t"], width=137, height=137)
            hits.append(_on_object(cam.project(s["pointcloud"]), s["image"][3] > 0))
    assert len(hits) == 4 and min(hits) > 0.99
    h = FieldsDataset(os.path.join(data, "humans"), "humans", _human_split(data), [ImagesField(), PointCloudField(n=800)],
                      train=False)
    s = h[0]
    assert s["image"].shape == (3, 224, 224)
    cam = Camera(K=s["image.K"], R=s["image.R"], t=s["image.t"], width=224, height=224)
    assert _on_object(cam.project(s["pointcloud"]), (1 - s["image"]).abs().amax(0) > 0.05) > 0.99
    # the DFAUST camera: at (1, 1.5, 3) in the DFAUST-like frame the stored frame maps to
    scale, loc = DFAUST_FROM_STORED
    np.testing.assert_allclose((scale * cam.center.double() + torch.tensor(loc, dtype=torch.float64)).numpy(),
                               DFAUST_EYE, atol=1e-4)
    assert (s["image"][:, :5, :5] == 1).all()                                      # white background


def test_r2n2_metadata_and_binvox_as_the_real_files(data):
    root = os.path.join(data, "r2n2")
    synset, sid, views = sum((r2n2.read_split(os.path.join(root, "split.json"), k) for k in r2n2.SPLITS), [])[0]
    meta = r2n2.read_rendering_metadata(os.path.join(r2n2.rendering_dir(root, synset, sid), "rendering_metadata.txt"))
    assert meta.shape == (3, 5) and list(views) == [0, 1, 2]
    assert np.all((meta[:, 0] >= 0) & (meta[:, 0] < 360) & (meta[:, 1] >= 25) & (meta[:, 1] <= 30))
    assert np.all((meta[:, 3] >= 0.65) & (meta[:, 3] <= 0.95)) and np.all(meta[:, 2] == 0) and np.all(meta[:, 4] == 25)
    grid, translate, scale = read_binvox(r2n2.binvox_path(root, synset, sid), expected_dims=(32, 32, 32))
    v = load_mesh(r2n2.mesh_path(root, synset, sid)).vertices
    # binvox-tool header: the mesh's bbox min corner and largest side, in the mesh's frame (bbox diagonal 1)
    np.testing.assert_allclose(translate, v.min(0), atol=2e-3)
    assert scale == pytest.approx((v.max(0) - v.min(0)).max(), abs=2e-3)
    assert np.linalg.norm(v.max(0) - v.min(0)) == pytest.approx(1.0, abs=2e-3)
    # fields round trip (r2n2): voxels placed by the header, the mesh, the image as stored
    split = next(k for k in r2n2.SPLITS if r2n2.read_split(os.path.join(root, "split.json"), k))
    ds = FieldsDataset(root, "r2n2", split, [ImagesField("RGBA"), VoxelsField(), MeshField()], train=False)
    s = ds[[(it.group, it.name) for it in ds.items].index((synset, sid))]
    # the files are in ShapeNet v1 axes; the sample is canonical (voxels and mesh turned together)
    Rc = to_canonical_rotation(r2n2.FRAME)
    placed = place_binvox(grid, translate, scale, 32, (-0.5, 0.5))
    np.testing.assert_array_equal(s["voxels"].numpy(), rotate_grid(placed, Rc))
    np.testing.assert_array_equal(s["voxels"].numpy(), place_binvox(*rotate_binvox(grid, translate, scale, Rc), 32,
                                                                     (-0.5, 0.5)))
    np.testing.assert_allclose(s["mesh.vertices"].numpy(), v @ Rc.T, atol=1e-6)
    np.testing.assert_array_equal((s["image"].permute(1, 2, 0).numpy() * 255).round(),
                                  np.asarray(Image.open(r2n2.image_path(root, synset, sid, 0))))
    img = Image.open(r2n2.image_path(root, synset, sid, 0))
    assert img.mode == "RGBA" and img.size == (137, 137)
    a = np.asarray(img)[..., 3]
    assert a[0, 0] == 0 and (a == 255).any() and ((a > 0) & (a < 255)).any()        # transparent, anti-aliased


def test_fields_round_trip_every_layout(data):
    on = os.path.join(data, "onet")
    split = _onet_split(on)
    ds = FieldsDataset(on, "onet", split, [ImagesField(), VoxelsField(), PointCloudField(), PointsField(float16_noise=0),
                                             MeshField()], seed=3)
    s = ds[0]
    d = os.path.join(on, s["category"], s["model"])
    pts, nrm = onet.read_pointcloud_npz(os.path.join(d, "pointcloud.npz"))
    key = np.lexsort(s["pointcloud"].numpy().T)                                     # n=None: all points, shuffled
    np.testing.assert_array_equal(s["pointcloud"].numpy()[key], pts[np.lexsort(pts.T)])
    np.testing.assert_array_equal(s["pointcloud.normals"].numpy()[key], nrm[np.lexsort(pts.T)])
    p, occ = onet.read_points_npz(os.path.join(d, "points.npz"))
    key = np.lexsort(s["points"].numpy().T)
    np.testing.assert_array_equal(s["points"].numpy()[key], p[np.lexsort(p.T)])
    np.testing.assert_array_equal(s["points.occ"].numpy()[key], occ[np.lexsort(p.T)])
    img = r2n2.read_image(os.path.join(d, "img_choy2016", f"{int(s['image.view']):03d}.jpg"), "RGB")
    np.testing.assert_allclose(s["image"].permute(1, 2, 0).numpy(), img / 255.0, atol=1e-6)
    m = load_mesh(os.path.join(d, "model.off"))                                     # ShapeNet v1 axes on disk
    np.testing.assert_allclose(s["mesh.vertices"].numpy(), m.vertices @ to_canonical_rotation(onet.FRAME).T, atol=1e-6)
    # voxels in the normalised frame agree with occupancy: inside points mostly in full voxels, and the
    # surface is covered
    from modules.geometry.voxels import points_to_cells
    idx, valid = points_to_cells(pts, 32)
    assert valid.all() and s["voxels"].numpy()[idx[:, 0], idx[:, 1], idx[:, 2]].mean() > 0.99
    idx, valid = points_to_cells(p[occ], 32)
    assert s["voxels"].numpy()[idx[valid, 0], idx[valid, 1], idx[valid, 2]].mean() > 0.99
    # same seed, epoch and index -> same sample; training views vary; evaluation takes the fixed view
    again = FieldsDataset(on, "onet", split, [ImagesField(), PointsField(n=100)], train=True, seed=3)
    assert torch.equal(again[0]["points"], again[0]["points"])
    seen = set()
    for epoch in range(12):
        again.set_epoch(epoch)
        seen.add(int(again[0]["image.view"]))
    assert len(seen) == 3
    fixed = FieldsDataset(on, "onet", split, [ImagesField()], train=False, eval_view=2)
    assert {int(fixed[0]["image.view"]) for _ in range(3)} == {2}
    # humans: labels aligned with the subsampled surface points
    hroot = os.path.join(data, "humans")
    h = FieldsDataset(hroot, "humans", _human_split(data), [PartLabelsField(), PointCloudField(n=300), PointsField(n=200)], seed=0)[0]
    hp, hn, hl = humans.read_surface_points(humans.frame_paths(hroot, h["category"], int(h["model"]))["surface"])
    lookup = {tuple(q): lab for q, lab in zip(hp.tolist(), hl.tolist())}
    assert [lookup[tuple(q)] for q in h["pointcloud"].tolist()] == h["labels"].tolist()
    # genren: images and shapes, unpaired
    groot = os.path.join(data, "genren")
    gi = FieldsDataset(groot, "genren", None, [ImagesField("RGBA", with_camera=False, size=64)])
    assert gi[0]["image"].shape == (4, 64, 64) and len(gi) == 12
    gs = FieldsDataset(groot, "genren", None, [PointCloudField(n=100, normalize=True)])
    assert len(gs) == 4 and gs[0]["pointcloud"].abs().max() <= 0.5 + 1e-6
    with pytest.raises(ShapeLabError, match="unpaired"):
        FieldsDataset(groot, "genren", None, [ImagesField("RGBA"), PointCloudField()])


def test_loader_collates_fields(data):
    from torch.utils.data import DataLoader
    split = _onet_split(os.path.join(data, "onet"))
    ds = FieldsDataset(os.path.join(data, "onet"), "onet", split, [ImagesField(size=64), PointsField(n=50), MeshField()],
                       seed=0)
    batch = next(iter(DataLoader(ds, batch_size=len(ds), collate_fn=collate_fields)))
    assert batch["image"].shape == (len(ds), 3, 64, 64) and batch["image.K"].shape == (len(ds), 3, 3)
    assert batch["image.K"][0, 0, 0].item() == pytest.approx(149.84375 * 64 / 137, rel=1e-5)   # rescaled with the image
    assert isinstance(batch["mesh.vertices"], list) or batch["mesh.vertices"].ndim == 3


def test_material_renders_do_not_encode_parts(tmp_path):
    """Default renders: one material colour per shape (chromaticity nearly constant on the object);
    the part-coloured option varies it."""
    spread = {}
    for style in ("material", "parts"):
        cfg = SynthConfig(out=str(tmp_path / style), views=2, n_surface=2000, n_uniform=2000, resolution=48,
                          formats=("r2n2",), render_style=style)
        generate(cfg, ["chair"], 1, progress=False)
        d = r2n2.rendering_dir(str(tmp_path / style / "r2n2"), "03001627", "synth_00000")
        x = np.asarray(Image.open(os.path.join(d, "00.png")), np.float64)
        fg = x[..., 3] == 255
        rgb = x[..., :3][fg] + 1
        chroma = rgb / rgb.sum(1, keepdims=True)
        spread[style] = chroma.std(0).max()
    assert spread["material"] < 0.02 < spread["parts"]


# ---------------------------------------------------------------- binvox placement


def test_binvox_placed_by_header_not_unit_box(tmp_path):
    grid = np.zeros((16, 16, 16), bool)
    grid[4:12, 2:6, 8:16] = True
    translate, scale = np.array([0.1, -0.3, -0.2]), 0.5                   # voxel size 0.5/16
    write_binvox(tmp_path / "v.binvox", grid, translate, scale)
    back, t, s = read_binvox(tmp_path / "v.binvox", expected_dims=(16, 16, 16))
    np.testing.assert_array_equal(back, grid)
    placed = place_binvox(back, t, s, resolution=64, box=(-0.5, 0.5))    # target cells 1/64: half a source voxel
    lo = translate + np.array([4, 2, 8]) * scale / 16                     # the occupied block's box
    hi = translate + np.array([12, 6, 16]) * scale / 16
    e = np.arange(64) / 64 - 0.5                                          # target cell lower edges
    ex, ey, ez = np.meshgrid(e, e, e, indexing="ij")
    h = 1 / 64                                                            # occupied = overlaps the block
    expected = ((ex + h > lo[0]) & (ex < hi[0]) & (ey + h > lo[1]) & (ey < hi[1]) & (ez + h > lo[2]) & (ez < hi[2]))
    np.testing.assert_array_equal(placed, expected)
    unit = place_binvox(back, (-0.5, -0.5, -0.5), 1.0, resolution=16)   # what ignoring the header gives
    assert not np.array_equal(place_binvox(back, t, s, resolution=16), unit)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.integers(2, 12), scale=st.floats(0.1, 3.0),
       tx=st.floats(-2, 2), ty=st.floats(-2, 2), tz=st.floats(-2, 2))
def test_binvox_placement_properties(tmp_path_factory, seed, dim, scale, tx, ty, tz):
    """Same cube and resolution -> identity; any box -> every occupied voxel centre inside it is covered."""
    grid = np.random.default_rng(seed).random((dim, dim, dim)) < 0.3
    path = tmp_path_factory.mktemp("bv") / "g.binvox"
    write_binvox(path, grid, (tx, ty, tz), scale)
    g, t, s = read_binvox(path)
    lo = t
    np.testing.assert_array_equal(place_binvox(g, t, s, dim, (lo, lo + s)), grid)
    placed = place_binvox(g, t, s, 8, (-1.0, 1.0))
    centres = binvox_voxel_centers(g, t, s)
    idx = np.floor((centres + 1.0) / 2.0 * 8).astype(int)
    ok = np.all((idx >= 0) & (idx < 8), 1) & np.all(np.abs(((centres + 1.0) / 2.0 * 8) % 1 - 0.5) < 0.499, 1)
    assert placed[idx[ok, 0], idx[ok, 1], idx[ok, 2]].all()


# ---------------------------------------------------------------- readers and bad input


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.tuples(st.floats(0, 360, exclude_max=True), st.floats(-90, 90), st.floats(-180, 180),
                               st.floats(0.01, 5), st.floats(1, 120)), min_size=1, max_size=30))
def test_rendering_metadata_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("meta") / "rendering_metadata.txt"
    r2n2.write_rendering_metadata(path, rows)
    back = r2n2.read_rendering_metadata(path)
    np.testing.assert_allclose(back, np.asarray(rows, np.float32), rtol=1e-5, atol=1e-4)


def _copy_r2n2_item(data, tmp_path):
    src = os.path.join(data, "r2n2")
    dst = str(tmp_path / "r2n2")
    shutil.copytree(src, dst)
    for split in r2n2.SPLITS:
        entries = r2n2.read_split(os.path.join(dst, "split.json"), split)
        if entries:
            return dst, split, entries[0]


def test_bad_images_metadata_and_voxels(data, tmp_path):
    root, split, (synset, sid, _) = _copy_r2n2_item(data, tmp_path)
    d = r2n2.rendering_dir(root, synset, sid)
    fields = [ImagesField("RGBA"), VoxelsField()]

    def first():
        return FieldsDataset(root, "r2n2", split, fields, train=False)[0]

    first()
    png = os.path.join(d, "00.png")
    rgba = np.asarray(Image.open(png))
    Image.fromarray(rgba[..., :3]).save(png)                                     # RGB where RGBA is expected
    with pytest.raises(ShapeLabError, match=r"00\.png: image mode RGB has no alpha channel, expected RGBA"):
        first()
    opaque = FieldsDataset(root, "r2n2", split, [ImagesField("RGBA", allow_no_alpha=True)], train=False)[0]
    assert (opaque["image"][3] == 1).all()                                       # converted: opaque, as said
    Image.fromarray(rgba[..., 0]).save(png)                                      # grayscale
    with pytest.raises(ShapeLabError, match="mode L has no alpha"):
        first()
    with open(png, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)                          # corrupt
    with pytest.raises(ShapeLabError, match=r"00\.png: not a readable image"):
        first()
    os.remove(png)                                                               # missing view
    with pytest.raises(ShapeLabError, match=r"image not found: .*00\.png"):
        first()
    meta = os.path.join(d, "rendering_metadata.txt")
    with open(meta, "w") as f:
        f.write("10 25 0 0.8 25\n20 26 0 0.7\n")
    with pytest.raises(ShapeLabError, match=r"rendering_metadata\.txt:2: expected 5 columns .* got 4"):
        r2n2.read_rendering_metadata(meta)
    vox = r2n2.binvox_path(root, synset, sid)
    write_binvox(vox, np.ones((16, 16, 16), bool), (-0.5, -0.5, -0.5), 1.0)
    with pytest.raises(ShapeLabError, match=r"model\.binvox: binvox grid is 16x16x16, expected 32x32x32"):
        FieldsDataset(root, "r2n2", split, [VoxelsField()], train=False)[0]
    with pytest.raises(ShapeLabError, match="field 'points' has no files in layout 'r2n2'"):
        FieldsDataset(root, "r2n2", split, [PointsField()])


def test_grey_jpeg_is_converted_to_rgb(data, tmp_path):
    src = os.path.join(data, "onet")
    dst = str(tmp_path / "onet")
    shutil.copytree(src, dst)
    split = _onet_split(dst)
    synset, sid = onet.read_split(dst, split)[0]
    jpg = os.path.join(dst, synset, sid, "img_choy2016", "000.jpg")
    Image.open(jpg).convert("L").save(jpg)
    s = FieldsDataset(dst, "onet", split, [ImagesField()], train=False)[0]
    assert s["image"].shape == (3, 137, 137) and torch.equal(s["image"][0], s["image"][1])
    with pytest.raises(ShapeLabError, match="without alpha"):
        FieldsDataset(dst, "onet", split, [ImagesField("RGBA")])
