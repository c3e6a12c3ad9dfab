"""modules.vis.images: titled grids put each image where make_grid says, RGBA is composited,
heat-map overlays blend as stated and the saved figure carries a colour bar."""
import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from modules.utils import ShapeLabError
from modules.vis.images import heatmap_overlay, save_heatmap_overlays, save_image_grid, to_image_batch

RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def _solid(rgb, h=32, w=32):
    return torch.tensor(rgb).view(3, 1, 1).expand(3, h, w).clone()


def test_grid_places_tiles_and_roundtrips(tmp_path):
    imgs = torch.stack([_solid(RED), _solid(GREEN), _solid(BLUE)])
    path = tmp_path / "grid.png"
    grid = save_image_grid(path, imgs, nrow=2, padding=2)
    png = np.asarray(Image.open(path).convert("RGB"))
    assert png.shape == (2 + 2 * 34, 2 + 2 * 34, 3) == tuple(grid.permute(1, 2, 0).shape)
    # tile (row, col) starts at padding + index * (32 + padding)
    assert tuple(png[2 + 16, 2 + 16]) == (255, 0, 0)
    assert tuple(png[2 + 16, 36 + 16]) == (0, 255, 0)
    assert tuple(png[36 + 16, 2 + 16]) == (0, 0, 255)
    assert tuple(png[36 + 16, 36 + 16]) == (255, 255, 255)  # empty slot = pad_value
    assert tuple(png[0, 0]) == (255, 255, 255)


def test_titles_drawn_above_tiles(tmp_path):
    imgs = torch.stack([_solid(RED, 64, 64), _solid(BLUE, 64, 64)])
    path = tmp_path / "titled.png"
    save_image_grid(path, imgs, titles=["input", "a very long title that cannot fit"], title_height=14)
    png = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert png.shape == (2 + 14 + 64 + 2, 2 + 2 * 66, 3)
    band = png[2:16, 2:66]
    assert (band.sum(-1) < 300).any() and (band == 255).all(-1).mean() > 0.5  # dark text on white
    assert tuple(png[16 + 32, 2 + 32]) == (255, 0, 0)  # the image sits under its band
    with pytest.raises(ShapeLabError, match="1 titles for 2 images"):
        save_image_grid(tmp_path / "x.png", imgs, titles=["one"])


def test_rgba_composited_and_inputs_converted():
    rgba = torch.zeros(4, 8, 8)
    rgba[0] = 1.0
    rgba[3, :, :4] = 1.0  # left half opaque red, right half transparent
    out = to_image_batch([rgba])[0]
    assert torch.equal(out[:, 0, 0], torch.tensor([1.0, 0, 0])) and torch.equal(out[:, 0, 7], torch.ones(3))
    assert torch.equal(to_image_batch([rgba], background=(0, 0, 0))[0][:, 0, 7], torch.zeros(3))
    # uint8 HxWx3 array and grey (1,H,W) tensor, resized to the first image's size
    arr = np.full((16, 16, 3), 255, np.uint8)
    batch = to_image_batch([rgba, arr, torch.full((1, 4, 4), 0.5)])
    assert batch.shape == (3, 3, 8, 8)
    torch.testing.assert_close(batch[1], torch.ones(3, 8, 8))
    torch.testing.assert_close(batch[2], torch.full((3, 8, 8), 0.5))
    with pytest.raises(ShapeLabError, match="C in 1, 3, 4"):
        to_image_batch(torch.rand(2, 2, 8, 8))


def test_heatmap_overlay_blend():
    img = _solid((0.2, 0.4, 0.6), 16, 16)
    heat = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    torch.testing.assert_close(heatmap_overlay(img, heat, alpha=0.0), img)
    full = heatmap_overlay(img, heat, alpha=1.0, cmap="viridis")
    assert full.shape == (3, 16, 16)
    lo, hi = colormaps["viridis"](0.0)[:3], colormaps["viridis"](1.0)[:3]
    # bilinear upsampling keeps the corners at the extreme values
    torch.testing.assert_close(full[:, 0, 0], torch.tensor(lo, dtype=torch.float32), atol=1e-6, rtol=0)
    torch.testing.assert_close(full[:, -1, -1], torch.tensor(hi, dtype=torch.float32), atol=1e-6, rtol=0)
    half = heatmap_overlay(img, heat, alpha=0.5, cmap="viridis")
    torch.testing.assert_close(half, 0.5 * img + 0.5 * full)
    with pytest.raises(ShapeLabError, match=r"\(h,w\)"):
        heatmap_overlay(img, torch.rand(2, 3, 3))


def test_saved_overlays_have_colour_bar(tmp_path):
    imgs = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.2 + 0.4
    heats = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    path = tmp_path / "cam.png"
    save_heatmap_overlays(path, imgs, heats, titles=["a", "b", "c"], cmap="jet", dpi=50, panel_size=2)
    png = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert png.shape == (100, 360, 3)
    # blended over grey images (>= 0.4) with alpha 0.5, every panel channel is >= 51, so the colour
    # map's dark ends, jet(0) = (0,0,128) and jet(1) = (128,0,0), can only come from the colour bar
    for end in (0.0, 1.0):
        c = (np.array(colormaps["jet"](end)[:3]) * 255).round()
        assert (np.abs(png - c).max(-1) <= 25).sum() >= 4
    save_heatmap_overlays(tmp_path / "own.png", imgs, heats, shared_scale=False, dpi=50, panel_size=2)
    with pytest.raises(ShapeLabError, match="2 heat maps for 3 images"):
        save_heatmap_overlays(tmp_path / "bad.png", imgs, heats[:2])
