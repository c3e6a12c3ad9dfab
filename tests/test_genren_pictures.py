"""genren's pictures: graphics_grid.png shows the input cloud (not a flat grey tile) next to the mesh AE and the
renders, every column titled; the point splats use the renderer's camera and pixel layout. Tiny model
(configs/genren/tiny.yaml)."""
import os

import numpy as np
import pytest
import torch

import modules.families  # noqa: F401
from modules.config import load_config
from modules.families.genren.evaluation import TILE, graphics_grid, reconstruction_grid, shade_grey, splat_points
from modules.registry import MODELS
from modules.utils import ROOT
from modules.vis.render import vertex_normals

pytestmark = pytest.mark.usefixtures("single_thread")
PAD = 2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODELS.build(load_config(os.path.join(ROOT, "configs", "genren", "tiny.yaml"))["model"]).eval()


def ellipsoid(radii, n=600, seed=0):
    """(1,n,3) points on an axis-aligned ellipsoid and their unit normals."""
    d = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 3))).float()
    d = d / d.norm(dim=1, keepdim=True)
    r = torch.tensor(radii)
    n_ = d / r
    return (d * r)[None], (n_ / n_.norm(dim=1, keepdim=True))[None]


def mask_box(alpha):
    ys, xs = torch.nonzero(alpha > 0.5, as_tuple=True)
    return xs.float().mean().item(), ys.float().mean().item(), xs.min().item(), xs.max().item(), ys.min().item(), \
        ys.max().item()


def test_point_splats_land_where_the_renderer_draws_the_mesh(model):
    # an off-centre ellipsoid with the template's topology: its vertices splatted vs the mesh rendered
    verts = model.template_verts * torch.tensor([0.3, 0.12, 0.12]) + torch.tensor([0.25, 0.15, 0.0])
    colors = shade_grey(vertex_normals(verts, model.template_faces)[None])
    with torch.no_grad():
        mesh = model.render(verts[None], colors)[0, 3]
        cloud = splat_points(model, verts[None], colors, radius=1)[0, 3]
    mc, cc = mask_box(mesh), mask_box(cloud)
    assert abs(mc[0] - cc[0]) < 1.0 and abs(mc[1] - cc[1]) < 1.0, (mc, cc)      # same centroid
    assert cc[2] <= mc[2] and cc[3] >= mc[3] and cc[4] <= mc[4] and cc[5] >= mc[5]  # splats (radius 1) cover it
    assert mc[0] > model.image_size / 2 and mc[1] < model.image_size / 2           # +x right, +y up, as rendered


def test_graphics_grid_titles_every_column_and_shows_the_input_cloud(model):
    wide, wide_n = ellipsoid((0.45, 0.12, 0.12))
    tall, tall_n = ellipsoid((0.12, 0.45, 0.12), seed=1)
    n_renders = 2
    grid = graphics_grid(model, torch.cat([wide, tall]), torch.cat([wide_n, tall_n]), n_renders=n_renders)
    K = 2 + n_renders
    band = max(12, TILE // 8) + PAD
    assert grid.shape == (3, band + 2 * (TILE + PAD) + PAD, K * (TILE + PAD) + PAD)
    for k in range(K):      # a title (dark text) above every column
        assert grid[:, :band, PAD + k * (TILE + PAD):(k + 1) * (TILE + PAD)].min() < 0.3, f"column {k} untitled"
    boxes = []
    for row in range(2):
        y = band + PAD + row * (TILE + PAD)
        first = grid[:, y:y + TILE, PAD:PAD + TILE]
        background = (first > 0.99).all(0)
        assert 0.05 < background.float().mean() < 0.95, "first column is a uniform tile"
        assert first[:, ~background].std() > 0.02, "first column is flat grey (no shading)"
        mesh = grid[:, y:y + TILE, 2 * PAD + TILE:2 * (PAD + TILE)]
        assert mesh.std() > 0.01, "mesh AE column is a uniform tile"
        boxes.append(mask_box((~background).float()))
    (_, _, x0, x1, y0, y1), (_, _, u0, u1, v0, v1) = boxes
    assert x1 - x0 > 1.5 * (y1 - y0) and v1 - v0 > 1.5 * (u1 - u0)     # the wide cloud looks wide, the tall one tall


def test_vision_grid_titles_every_column(model):
    torch.manual_seed(1)
    S = model.image_size
    images = torch.cat([torch.rand(2, 3, S, S) * 2 - 1, torch.ones(2, 1, S, S)], 1)
    grid = reconstruction_grid(model, images)
    band = max(12, TILE // 8) + PAD
    K = 5       # input | 3 views | re-render
    assert grid.shape[-1] == K * (TILE + PAD) + PAD
    for k in range(K):
        assert grid[:, :band, PAD + k * (TILE + PAD):(k + 1) * (TILE + PAD)].min() < 0.3, f"column {k} untitled"

