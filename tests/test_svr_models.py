"""Single-view reconstruction decoders, fit parameterisations and losses (modules/models/svr.py,
modules/losses/svr.py): shapes and parameter counts from the architecture, the voxel index -> coordinate
convention against modules.geometry's voxeliser and binvox, fits that converge (IoU, F1@0.05 from
modules.metrics), a valid AtlasNet triangulation, conditioning of the implicit decoder, and a loss that
falls when the point decoder trains."""
import numpy as np
import pytest
import torch
import trimesh

from modules.geometry import (Meshes, binvox_voxel_centers, ico_sphere, mesh_laplacian_smoothing, mesh_edge_loss,
                              mesh_normal_consistency, read_binvox, sample_points_from_meshes, voxelize_mesh,
                              write_binvox)
from modules.losses.svr import chamfer_loss, fit_loss, implicit_loss, mesh_fit_loss, voxel_loss
from modules.metrics import eval_pointcloud, iou, sample_mesh_surface
from modules.models.layers import count_parameters
from modules.models.svr import (ImplicitDecoder, MeshDecoder, MeshFit, ParametricDecoder, PointDecoder, PointFit,
                                VoxelDecoder, VoxelFit, uv_grid)
from modules.utils import ShapeLabError


pytestmark = pytest.mark.usefixtures("single_thread")


def features(b=2, seed=0):
    return torch.randn(b, 512, generator=torch.Generator().manual_seed(seed))


def sphere_mesh(radius, center=(0.0, 0.0, 0.0), level=3):
    s = ico_sphere(level)
    return s.verts_packed() * radius + torch.tensor(center), s.faces_packed()


def linear(a, b):
    return a * b + b


def f1_at_005(pred, gt):
    return eval_pointcloud(np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64))["f1@0.05"]


# ---------------------------------------------------------------- shapes and sizes at the defaults

def test_default_decoders_build_and_give_the_documented_shapes():
    torch.manual_seed(0)
    f = features()
    assert VoxelDecoder()(f).shape == (2, 32, 32, 32)
    assert PointDecoder()(f).shape == (2, 1000, 3)
    verts, faces = MeshDecoder()(f)
    assert verts.shape == (2, 2562, 3) and faces.shape == (5120, 3)
    assert ImplicitDecoder()(f, torch.rand(2, 77, 3) - 0.5).shape == (2, 77)
    par = ParametricDecoder()
    assert len(par.patches) == 25
    assert par.sample(f, 1003).shape == (2, 1003, 3)


def test_parameter_counts_follow_the_architecture():
    F, h = 512, 1024
    mlp = linear(F, h) + linear(h, h)
    assert count_parameters(PointDecoder(n_points=1000)) == mlp + linear(h, 3000)
    assert count_parameters(MeshDecoder()) == mlp + linear(h, 3 * 2562)
    # Linear 512 -> 256*8, ConvT (no bias) 256->128->64->32->16 (k=4^3) each + BN (2 C), Conv 16->1
    convs = sum(a * b * 64 + 2 * b for a, b in [(256, 128), (128, 64), (64, 32), (32, 16)])
    assert count_parameters(VoxelDecoder()) == linear(F, 256 * 8) + convs + linear(16, 1)
    bn = 2 * (F + F // 2 + F // 4)
    patch = linear(F + 2, F) + linear(F, F // 2) + linear(F // 2, F // 4) + bn + linear(F // 4, 3)
    assert count_parameters(ParametricDecoder(n_patches=3)) == 3 * patch


def test_bounded_decoders_stay_in_the_box_and_the_mesh_decoder_starts_at_its_template():
    f = features() * 50  # saturate the tanh
    assert PointDecoder(n_points=64)(f).abs().max() <= 0.5
    assert ParametricDecoder(n_patches=2).sample(f, 64).abs().max() <= 0.5
    verts, _ = MeshDecoder(level=2)(f)
    assert torch.allclose(verts.norm(dim=-1), torch.full((2, 162), 0.5), atol=1e-6)


# ---------------------------------------------------------------- voxel convention and the voxel fit

def test_voxel_cells_follow_the_voxeliser_and_binvox_convention(tmp_path):
    """An off-centre sphere voxelised by modules.geometry lands where cell_centers says: an axis flip or
    a half-cell shift would move it. binvox with translate -0.5, scale 1 gives the same centres."""
    center, radius = np.array([0.2, -0.1, 0.05]), 0.22
    v, f = sphere_mesh(radius, center)
    grid = voxelize_mesh(v.numpy(), f.numpy(), 32)
    centres = VoxelDecoder().cell_centers().numpy()
    dist = np.linalg.norm(centres - center, axis=-1)
    half_diag = np.sqrt(3) / 64
    assert grid[dist < radius - half_diag].all()
    assert not grid[dist > radius + half_diag].any()
    path = tmp_path / "sphere.binvox"
    write_binvox(path, grid, translate=(-0.5, -0.5, -0.5), scale=1.0)
    back, translate, scale = read_binvox(path)
    assert np.allclose(binvox_voxel_centers(back, translate, scale), centres[grid], atol=1e-6)


def test_voxel_fit_with_bce_reaches_iou_095():
    v, f = sphere_mesh(0.3, (0.1, 0.0, -0.05))
    target = torch.from_numpy(voxelize_mesh(v.numpy(), f.numpy(), 32)).float()[None]
    fit = VoxelFit(32, generator=torch.Generator().manual_seed(0))
    init = fit().detach()
    assert init.shape == (1, 32, 32, 32) and 0 <= float(init.min()) and float(init.max()) < 1  # the seed's rand
    opt = torch.optim.Adam(fit.parameters(), lr=0.1)
    first = None
    for _ in range(100):
        loss, _ = fit_loss("vox", fit(), target)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.05 * first
    assert iou(torch.sigmoid(fit()).detach().numpy(), target.numpy()) > 0.95


# ---------------------------------------------------------------- point and mesh fits

def test_point_fit_with_chamfer_reaches_f1_95():
    torch.manual_seed(0)
    v, f = sphere_mesh(0.4)
    gt = sample_points_from_meshes(Meshes([v], [f]), 1000)
    fit = PointFit(1000, generator=torch.Generator().manual_seed(0))
    assert fit().shape == (1, 1000, 3)
    opt = torch.optim.Adam(fit.parameters(), lr=0.05)
    for _ in range(200):
        loss, _ = fit_loss("point", fit(), gt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert f1_at_005(fit()[0].detach(), gt[0]) >= 95


def test_mesh_fit_to_a_box_reaches_f1_90():
    torch.manual_seed(0)
    box = trimesh.creation.box(extents=(0.8, 0.5, 0.6))
    target = Meshes([torch.tensor(box.vertices, dtype=torch.float32)], [torch.tensor(box.faces)])
    fit = MeshFit(level=2)
    verts, faces = fit()
    assert verts.shape == (1, 162, 3) and faces.shape == (320, 3)
    opt = torch.optim.Adam(fit.parameters(), lr=0.01)
    for _ in range(150):
        gt = sample_points_from_meshes(target, 1000)  # resampled every step, as the seed
        loss, terms = fit_loss("mesh", fit(), gt, n_points=1000, w_chamfer=1.0, w_smooth=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(terms) == {"chamfer", "smooth"}
    verts, faces = fit()
    pred, _ = sample_mesh_surface(verts[0].detach().numpy(), faces.numpy(), 5000, seed=0)
    gt_eval, _ = sample_mesh_surface(box.vertices, box.faces, 5000, seed=1)
    assert f1_at_005(pred, gt_eval) >= 90


# ---------------------------------------------------------------- losses against references

def test_chamfer_loss_is_the_sum_of_both_mean_squared_directions():
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 50, 3, generator=g), torch.rand(2, 70, 3, generator=g)
    d = torch.cdist(a, b) ** 2
    reference = (d.min(2).values.mean(1) + d.min(1).values.mean(1)).mean()
    assert torch.allclose(chamfer_loss(a, b), reference, atol=1e-6)


def test_voxel_and_implicit_losses_are_mean_bce():
    g = torch.Generator().manual_seed(4)
    logits, occ = torch.randn(2, 8, 8, 8, generator=g), (torch.rand(2, 8, 8, 8, generator=g) > 0.5).float()
    p = torch.sigmoid(logits)
    reference = -(occ * p.log() + (1 - occ) * (1 - p).log()).mean()
    assert torch.allclose(voxel_loss(logits, occ), reference, atol=1e-5)
    assert torch.allclose(voxel_loss(logits[:, None], occ), reference, atol=1e-5)  # eval's (B,1,R,R,R)
    assert torch.allclose(implicit_loss(logits.view(2, -1), occ.view(2, -1)), reference, atol=1e-5)


def test_mesh_fit_loss_is_the_weighted_sum_of_its_terms():
    v, f = sphere_mesh(0.5, level=1)
    verts = (v + 0.05 * torch.randn(v.shape, generator=torch.Generator().manual_seed(0)))[None].requires_grad_()
    gt = torch.rand(1, 300, 3) - 0.5
    torch.manual_seed(7)
    loss, terms = mesh_fit_loss(verts, f, gt, n_points=200, w_chamfer=1.0, w_smooth=0.1, w_edge=0.3, w_normal=0.2)
    m = Meshes([verts[0]], [f])
    torch.manual_seed(7)
    cham = chamfer_loss(sample_points_from_meshes(m, 200), gt)
    assert torch.allclose(terms["chamfer"], cham)
    assert torch.allclose(terms["smooth"], mesh_laplacian_smoothing(m))
    assert torch.allclose(terms["edge"], mesh_edge_loss(m))
    assert torch.allclose(terms["normal"], mesh_normal_consistency(m))
    expected = cham + 0.1 * terms["smooth"] + 0.3 * terms["edge"] + 0.2 * terms["normal"]
    assert torch.allclose(loss, expected)
    loss.backward()
    assert verts.grad.abs().sum() > 0


# ---------------------------------------------------------------- parametric (AtlasNet) meshes

def test_parametric_mesh_is_a_valid_triangulation_of_the_uv_grids():
    K, R = 3, 5
    dec = ParametricDecoder(n_patches=K).eval()
    f = features()
    verts, faces = dec.mesh(f, grid_res=R)
    assert verts.shape == (2, K * R * R, 3) and faces.shape == (K * (R - 1) ** 2 * 2, 3)
    assert faces.min() >= 0 and faces.max() < K * R * R
    assert ((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])).all()
    per_patch = faces.view(K, -1, 3) // (R * R)  # each patch's faces stay within its own vertices
    assert (per_patch == torch.arange(K)[:, None, None]).all()
    uv, grid_faces = uv_grid(R)
    a, b, c = uv[grid_faces[:, 0]], uv[grid_faces[:, 1]], uv[grid_faces[:, 2]]
    signed = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
    assert torch.allclose(signed, torch.full_like(signed, 1 / (R - 1) ** 2))  # same orientation, tiles the square
    # the vertices are the patch MLPs evaluated at the grid uv (eval mode: BN uses running stats)
    expected = dec.decode_uv(f, [uv[None].expand(2, -1, -1)] * K)
    assert torch.allclose(verts, torch.cat(expected, 1), atol=1e-6)
    mesh = trimesh.Trimesh(verts[0].detach().numpy(), faces.numpy(), process=False)
    assert len(mesh.faces) == K * (R - 1) ** 2 * 2


def test_parametric_points_are_split_over_the_patches():
    dec = ParametricDecoder(n_patches=4)
    assert dec.points_per_patch(10) == [3, 3, 2, 2]
    assert sum(dec.points_per_patch(2500)) == 2500
    assert ParametricDecoder(n_patches=1).sample(features(1), 7).shape == (1, 7, 3)


# ---------------------------------------------------------------- implicit decoder conditioning

def test_implicit_decoder_is_conditioned_on_the_feature_and_passes_gradients_to_it():
    torch.manual_seed(0)
    dec = ImplicitDecoder(hidden_dim=32, n_blocks=2)
    queries = (torch.rand(1, 64, 3) - 0.5).expand(2, -1, -1)
    feats = features().requires_grad_()
    out = dec(feats, queries)
    assert torch.allclose(out[0], out[1])  # ONet init: conditioning maps start at zero
    opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
    occ = torch.stack([torch.ones(64), torch.zeros(64)])  # item 0 all inside, item 1 all outside
    for _ in range(5):
        loss = implicit_loss(dec(feats, queries), occ)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dec.eval()
    feats.grad = None
    out = dec(feats, queries)
    assert (out[0] - out[1]).abs().min() > 1e-3
    assert out[0].mean() > out[1].mean()
    out.sum().backward()
    assert feats.grad.abs().sum(1).min() > 0


# ---------------------------------------------------------------- a short training of the point decoder

def test_point_decoder_training_halves_the_chamfer_loss():
    torch.manual_seed(0)
    dec = PointDecoder(n_points=500)
    f = features()
    v, faces = sphere_mesh(0.35, (0.1, 0.0, 0.0))
    box = trimesh.creation.box(extents=(0.8, 0.3, 0.5))
    targets = torch.cat([sample_points_from_meshes(Meshes([v], [faces]), 500),
                         sample_points_from_meshes(Meshes([torch.tensor(box.vertices, dtype=torch.float32)],
                                                          [torch.tensor(box.faces)]), 500)])
    opt = torch.optim.Adam(dec.parameters(), lr=4e-4)
    losses = []
    for _ in range(30):
        loss = chamfer_loss(dec(f), targets)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, call", [
    (lambda: PointDecoder(n_points=10), lambda m: m(torch.randn(2, 256))),
    (lambda: VoxelDecoder(), lambda m: m(torch.randn(512))),
    (lambda: ImplicitDecoder(hidden_dim=8, n_blocks=1), lambda m: m(torch.randn(2, 512), torch.rand(2, 5, 2))),
    (lambda: ParametricDecoder(n_patches=2), lambda m: m.sample(torch.randn(2, 512), 0)),
    (lambda: ParametricDecoder(n_patches=2), lambda m: m.mesh(torch.randn(2, 512), grid_res=1)),
    (lambda: ParametricDecoder(n_patches=4), lambda m: m.sample(torch.randn(1, 512), 3)),  # 1 point: BatchNorm
    (lambda: MeshDecoder(level=0), lambda m: m(torch.randn(2, 512, 1))),
])
def test_bad_inputs_raise_one_line_errors(make, call):
    with pytest.raises(ShapeLabError):
        call(make())


@pytest.mark.parametrize("make", [
    lambda: VoxelDecoder(resolution=24), lambda: PointDecoder(n_points=0), lambda: ParametricDecoder(n_patches=0),
    lambda: MeshDecoder(level=-1), lambda: PointFit(0), lambda: MeshFit(radius=0),
])
def test_bad_sizes_raise(make):
    with pytest.raises(ShapeLabError):
        make()


def test_bad_loss_inputs_raise():
    with pytest.raises(ShapeLabError, match="voxel_loss"):
        voxel_loss(torch.zeros(1, 32, 32, 32), torch.zeros(1, 16, 16, 16))
    with pytest.raises(ShapeLabError, match="chamfer_loss"):
        chamfer_loss(torch.zeros(1, 0, 3), torch.zeros(1, 5, 3))
    with pytest.raises(ShapeLabError, match="--type"):
        fit_loss("cloud", torch.zeros(1, 5, 3), torch.zeros(1, 5, 3))
    with pytest.raises(ShapeLabError, match="n_points"):
        mesh_fit_loss(torch.zeros(1, 12, 3), torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 5, 3), n_points=0)
