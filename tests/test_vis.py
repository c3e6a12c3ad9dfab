"""modules.vis: colour maps, and that every picture writer produces a readable file of the right size
showing y-up shapes upright and unmirrored."""
import os

import numpy as np
import pytest
from PIL import Image

from modules.utils import ShapeLabError
from modules.vis import (PART_PALETTE, attribution_colors, part_colors, save_gif, save_loss_curve_png,
                         save_mesh_png, save_panels_png, save_point_cloud_png)
from modules.vis.meshes import decimate


def _box_mesh(sx=1.0, sy=2.0, sz=0.5):
    v = np.array([[x, y, z] for x in (-sx / 2, sx / 2) for y in (-sy / 2, sy / 2) for z in (-sz / 2, sz / 2)])
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return v, f


def _mask(img, rgb):
    """Pixels close in hue to a pure colour (depth shading only lightens them)."""
    a = np.asarray(img.convert("RGB")).astype(int)
    hi = [c == 1 for c in rgb]
    on = np.ones(a.shape[:2], bool)
    for ch in range(3):
        on &= (a[..., ch] > 120) if hi[ch] else True
    lo = [ch for ch in range(3) if not hi[ch]]
    hi_ch = [ch for ch in range(3) if hi[ch]]
    for ch in lo:
        for h in hi_ch:
            on &= a[..., h] - a[..., ch] > 60
    return on


def test_part_colors_fixed_distinct_and_stable():
    ids = np.arange(50)
    c = part_colors(ids)
    assert c.shape == (50, 3) and c.min() >= 0 and c.max() <= 1
    d = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(50)
    assert d.min() > 0.05  # every global part id has its own colour
    # same id -> same colour, regardless of which other labels the shape has
    np.testing.assert_array_equal(part_colors([14, 3])[0], part_colors([0, 1, 14])[2])
    np.testing.assert_array_equal(part_colors([12]), PART_PALETTE[[12]])
    extra = part_colors([50, 51, 50, -1])
    np.testing.assert_array_equal(extra[0], extra[2])
    assert np.abs(extra[0] - extra[1]).max() > 0.05
    np.testing.assert_allclose(extra[3], [0.6, 0.6, 0.6])
    with pytest.raises(ShapeLabError):
        part_colors(np.zeros((3, 2), int))


def test_attribution_colors_red_positive_blue_negative():
    c = attribution_colors([2.0, -4.0, 0.0, 1.0])
    np.testing.assert_allclose(c[1], [0, 0, 1])          # strongest (negative) is pure blue
    assert c[0, 0] > c[0, 2] and c[0, 0] > c[0, 1]       # positive -> red dominates
    np.testing.assert_allclose(c[2], [0.8, 0.8, 0.8])     # zero -> neutral grey
    assert c[0, 0] > c[3, 0] and c[0, 1] < c[3, 1]        # scaled by max |value|: 2 redder than 1
    m = attribution_colors([-4.0, 2.0, 0.0], mode="magnitude")
    np.testing.assert_allclose(m[0], [1, 0, 0])           # magnitude: sign ignored
    assert m[0, 1] < m[1, 1] < m[2, 1]
    np.testing.assert_allclose(attribution_colors(np.zeros(3)), np.full((3, 3), 0.8))
    with pytest.raises(ShapeLabError):
        attribution_colors([np.nan])
    with pytest.raises(ShapeLabError):
        attribution_colors([1.0], mode="bogus")


def test_point_cloud_png_size_upright_and_not_mirrored(tmp_path):
    rng = np.random.default_rng(0)
    top = rng.uniform(-0.2, 0.2, (300, 3)) + [0, 0.8, 0]      # red, high y
    right = rng.uniform(-0.2, 0.2, (300, 3)) + [0.8, -0.8, 0]  # blue, +x, low y
    pts = np.concatenate([top, right])
    cols = np.concatenate([np.tile([1.0, 0, 0], (300, 1)), np.tile([0, 0, 1.0], (300, 1))])
    out = tmp_path / "pc.png"
    save_point_cloud_png(out, pts, cols, title="t", elev=0, azim=-90, figsize=(3, 2), dpi=100)
    img = Image.open(out)
    assert img.format == "PNG" and img.size == (300, 200)
    red, blue = _mask(img, (1, 0, 0)), _mask(img, (0, 0, 1))
    assert red.sum() > 20 and blue.sum() > 20
    ry, rx = np.argwhere(red).mean(axis=0)
    by, bx = np.argwhere(blue).mean(axis=0)
    assert ry < by   # y up: the high-y cluster is nearer the top of the picture
    assert bx > rx   # viewed from +z, +x is on the right (no mirror)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_point_cloud_png_accepts_part_ids_and_rejects_bad_shapes(tmp_path):
    pts = np.random.default_rng(1).normal(size=(100, 3))
    save_point_cloud_png(tmp_path / "ids.png", pts, np.arange(100) % 4)
    assert Image.open(tmp_path / "ids.png").size == (400, 400)
    with pytest.raises(ShapeLabError):
        save_point_cloud_png(tmp_path / "bad.png", pts[:, :2])
    with pytest.raises(ShapeLabError):
        save_point_cloud_png(tmp_path / "bad.png", pts, np.zeros((5, 3)))
    assert not (tmp_path / "bad.png").exists()


def test_mesh_png_face_colors_and_size(tmp_path):
    v, f = _box_mesh()
    fc = np.tile([0.0, 0.8, 0.0], (len(f), 1))
    out = tmp_path / "mesh.png"
    save_mesh_png(out, v, f, face_colors=fc, title="box", figsize=(2, 3), dpi=80)
    img = Image.open(out)
    assert img.size == (160, 240)
    a = np.asarray(img.convert("RGB")).astype(int)
    green = (a[..., 1] - a[..., 0] > 40) & (a[..., 1] - a[..., 2] > 40)
    assert green.sum() > 0.05 * green.size  # the box is drawn, in its face colour
    ys, xs = np.nonzero(green)
    assert np.ptp(ys) > np.ptp(xs)             # 2 tall, 1 wide: upright
    with pytest.raises(ShapeLabError):
        save_mesh_png(tmp_path / "bad.png", v, f + 100)


def test_decimate_keeps_colours_and_limits_faces():
    import trimesh
    m = trimesh.creation.icosphere(3)  # 1280 faces
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    fc = part_colors(np.arange(len(f)) % 7)
    _, f2, _, fc2 = decimate(v, f, face_colors=fc, max_faces=300)
    assert len(f2) == 300 and len(fc2) == 300
    vc = attribution_colors(v[:, 0])
    v3, f3, vc3, _ = decimate(v, f, vertex_colors=vc, max_faces=300)
    assert len(f3) <= 300 and vc3.shape == (len(v3), 3)
    # colours travel with the vertices: +x vertices stay red-ish
    assert np.all(vc3[v3[:, 0] > 0.5, 0] > vc3[v3[:, 0] > 0.5, 2])


def test_panels_png_mixed_kinds(tmp_path):
    v, f = _box_mesh()
    img = np.zeros((32, 48, 4))
    img[..., 0] = 1.0
    img[..., 3] = 1.0
    panels = [{"image": img}, {"points": v, "colors": np.arange(8)},
              {"vertices": v, "faces": f, "face_colors": np.arange(12) % 3}, {"image": np.zeros((8, 8))}]
    out = tmp_path / "panels.png"
    save_panels_png(out, panels, titles=["input", "points", "mesh", "gray"], ncols=2, panel_size=2, dpi=50)
    assert Image.open(out).size == (200, 200)
    with pytest.raises(ShapeLabError):
        save_panels_png(out, [{"faces": f}])
    with pytest.raises(ShapeLabError):
        save_panels_png(out, panels, titles=["only one"])


def test_gif_from_arrays_and_pngs(tmp_path):
    frames = [np.full((20, 30, 3), 40 * i, np.uint8) for i in range(5)]
    out = tmp_path / "a.gif"
    save_gif(out, frames, fps=5)
    g = Image.open(out)
    assert g.format == "GIF" and g.size == (30, 20) and g.n_frames == 5
    assert g.info["duration"] == 200
    g.seek(3)
    assert abs(np.asarray(g.convert("RGB")).astype(int).mean() - 120) < 3
    paths = []
    for i, fr in enumerate(frames[:2]):
        paths.append(str(tmp_path / f"f{i}.png"))
        Image.fromarray(fr).save(paths[-1])
    save_gif(tmp_path / "b.gif", paths)
    assert Image.open(tmp_path / "b.gif").n_frames == 2
    with pytest.raises(ShapeLabError):
        save_gif(tmp_path / "c.gif", [frames[0], np.zeros((5, 5, 3), np.uint8)])
    with pytest.raises(ShapeLabError):
        save_gif(tmp_path / "c.gif", [str(tmp_path / "missing.png")])
    assert not (tmp_path / "c.gif").exists()


def test_loss_curve_png(tmp_path):
    steps = np.arange(50)
    out = tmp_path / "loss.png"
    save_loss_curve_png(out, steps, {"train": np.exp(-steps / 10), "val": np.exp(-steps / 20)}, "loss", "L",
                        logy=True, figsize=(4, 3), dpi=50)
    assert Image.open(out).size == (200, 150)
    with pytest.raises(ShapeLabError):
        save_loss_curve_png(out, steps[:3], np.ones(4), "x", "y")


def test_rasterized_render_png_gif_and_cli(tmp_path):
    import torch
    from modules.geometry.cameras import Camera
    from modules.vis.render import main, render_image, save_render_gif, save_render_png, turntable_cameras
    v, f = _box_mesh()
    v = torch.tensor(v, dtype=torch.float32)
    f = torch.tensor(f)
    cams = turntable_cameras(v, n_views=4, width=48, height=40)
    for cam in cams:  # framing: the whole box is inside every view, centred
        uv = cam.project(v)
        assert (uv[:, 0] > 0).all() and (uv[:, 0] < 48).all() and (uv[:, 1] > 0).all() and (uv[:, 1] < 40).all()
    img = render_image(v, f, cams[0], face_colors=torch.tensor([1.0, 0.0, 0.0]).expand(12, 3), rgba=True)
    assert img.shape == (40, 48, 4) and img.dtype == np.uint8
    covered = img[..., 3] == 255
    assert covered.any() and (img[~covered][:, :3] == 255).all()          # white background
    assert (img[covered][:, 1] < 60).all()                                  # shaded red box
    smooth = render_image(v, f, cams[0], rgba=True, supersample=3)
    assert smooth.shape == (40, 48, 4)
    partial = (smooth[..., 3] > 0) & (smooth[..., 3] < 255)                 # anti-aliased edge pixels
    assert partial.any() and abs(int((smooth[..., 3] > 127).sum()) - int(covered.sum())) < 0.1 * covered.sum()
    save_render_png(tmp_path / "r.png", v, f, cams[1])
    assert Image.open(tmp_path / "r.png").size == (48, 40)
    save_render_gif(tmp_path / "r.gif", v, f, n_views=3, size=32)
    assert Image.open(tmp_path / "r.gif").n_frames == 3

    import trimesh
    trimesh.Trimesh(v.numpy(), f.numpy(), process=False).export(tmp_path / "box.obj")
    main([str(tmp_path / "box.obj"), "--out", str(tmp_path / "grid.png"), "--views", "3", "--size", "50",
          "--gif", str(tmp_path / "t.gif"), "--cameras_npz", str(tmp_path / "cameras.npz")])
    assert Image.open(tmp_path / "grid.png").size == (150, 50)
    with np.load(tmp_path / "cameras.npz") as z:
        cam = Camera.from_onet(z["world_mat_2"], z["camera_mat_2"], 50, 50)
    ref = turntable_cameras(v, n_views=3, width=50, height=50)[2]
    np.testing.assert_allclose(cam.project(v).numpy(), ref.project(v).numpy(), atol=1e-3)
    with pytest.raises(SystemExit) as err:
        main([str(tmp_path / "missing.obj")])
    assert err.value.code == 2


def test_uint8_colours_are_scaled(tmp_path):
    from modules.vis.pointclouds import resolve_point_colors
    np.testing.assert_allclose(resolve_point_colors(np.array([[255, 0, 0], [0, 0, 1]], np.uint8), 2),
                               [[1, 0, 0], [0, 0, 1 / 255]])
    np.testing.assert_allclose(resolve_point_colors(np.array([0.0, 0.5, 1.0]), 2), [[0, 0.5, 1]] * 2)
    np.testing.assert_allclose(resolve_point_colors([1, 0, 0], 2), [[1, 0, 0]] * 2)       # ints in [0,1]
    np.testing.assert_allclose(resolve_point_colors([[255, 128, 0]] * 2, 2), [[1, 128 / 255, 0]] * 2)
    with pytest.raises(ShapeLabError):
        resolve_point_colors(np.zeros(5), 2)


def test_colorbar_matches_the_point_colours_and_legend_lists_present_parts():
    from modules.vis.colors import attribution_colormap, attribution_scale
    from modules.vis.pointclouds import point_cloud_figure
    values = np.array([-2.0, 0.0, 0.5, 4.0])
    pts = np.random.default_rng(0).random((4, 3))
    fig = point_cloud_figure(pts, attribution_colors(values), colorbar=dict(values=values, label="attr"))
    bar = fig.axes[-1]
    assert bar.get_ylim() == pytest.approx((-4.0, 4.0))            # [-max|v|, max|v|], the colours' scale
    cmap = attribution_colormap("negpos")
    np.testing.assert_allclose(cmap(np.array([0.25, 0.5, 1.0]))[:, :3],     # -2, 0, 4 on the bar
                               attribution_colors(values)[[0, 1, 3]], atol=0.01)
    # a robust scale saturates the extreme point and says so on the bar
    s = attribution_scale(values, 50)
    assert s == pytest.approx(1.25)
    assert np.allclose(attribution_colors(values, scale=s)[3], [1, 0, 0])
    fig = point_cloud_figure(pts, np.array([12, 13, 13, 14]),
                             legend=dict(names={12: "back", 13: "seat", 14: "leg", 15: "arm"},
                                         labels=np.array([12, 13, 13, 14])))
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["12 back (1)", "13 seat (2)", "14 leg (1)"]          # arm is absent: not listed
