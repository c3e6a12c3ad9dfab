"""Neural Parts model: rotations, the conditional INN (exact inverse, gradcheck, the original's
concatenated formulation), phi, Euclidean phi, on-surface masks, primitive meshes, sizes."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import trimesh
from scipy.spatial.transform import Rotation

from modules.models.neural_parts import (CouplingLayer, NeuralParts, SimpleNVP,
                                         quaternions_to_rotation_matrices, uv_sphere)
from modules.utils import ShapeLabError

pytestmark = pytest.mark.usefixtures("single_thread")


class TinyEncoder(nn.Module):
    """Stand-in image encoder: mean colour per channel -> Linear -> (B, out_dim)."""

    def __init__(self, out_dim=8):
        super().__init__()
        self.out_dim = out_dim
        self.fc = nn.Linear(3, out_dim)

    def forward(self, images):
        return self.fc(images.mean(dim=(2, 3)))


def small_model(M=3, dtype=torch.float64, **kw):
    args = dict(n_primitives=M, feature_dim=8, n_blocks=4, hidden_size=32, proj_dims=16)
    args.update(kw)
    return NeuralParts(TinyEncoder(8), **args).to(dtype)


def _set_per_primitive(mlp, d_img, values):
    """Make a Lin-ReLU-Lin conditioning MLP output values[m] for primitive m (one-hot embeddings)."""
    with torch.no_grad():
        for p in mlp.parameters():
            p.zero_()
        for m in range(values.shape[0]):
            mlp[0].weight[m, d_img + m] = 1.0
            mlp[-1].weight[:, m] = values[m]


def sphere_model(centres, radii, dtype=torch.float64):
    """A NeuralParts whose primitive m is the sphere of radius radii[m] centred at centres[m]:
    couplings are the identity, sigma_m = r / radii[m], R = I, t = centres[m].
    Then phi_m(x) = (r / radii[m]) * (||x - c_m|| - radii[m])."""
    centres = torch.as_tensor(centres, dtype=dtype)
    radii = torch.as_tensor(radii, dtype=dtype)
    M = len(radii)
    model = small_model(M, dtype, feature_dim=max(M, 4), hidden_size=max(M, 8))
    d_img = model.encoder.out_dim
    with torch.no_grad():
        model.primitive_embedding.copy_(torch.eye(M, model.primitive_embedding.shape[1], dtype=dtype))
        for layer in model.inn.layers:
            for last in (layer.map_s[-2], layer.map_t[-1]):
                last.weight.zero_()
                last.bias.zero_()
    sigma = model.radius / radii
    pre = torch.where(sigma >= 1, sigma - 1, torch.log(sigma))      # elu(pre) + 1 = sigma
    _set_per_primitive(model.inn.scales, d_img, pre[:, None].expand(M, 3))
    _set_per_primitive(model.inn.rotations, d_img, torch.tensor([1.0, 0, 0, 0], dtype=dtype).expand(M, 4))
    _set_per_primitive(model.inn.translations, d_img, centres)
    return model


def images(B=2, dtype=torch.float64):
    return torch.rand(B, 3, 8, 8, generator=torch.Generator().manual_seed(3), dtype=dtype)


# --------------------------------------------------------------------------- rotations
def test_quaternions_match_scipy_and_are_rotations():
    q = torch.randn(200, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    R = quaternions_to_rotation_matrices(q)
    eye = torch.eye(3, dtype=torch.float64).expand(200, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(200, dtype=torch.float64), atol=1e-12)
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]].numpy()).as_matrix()        # scipy: scalar last
    np.testing.assert_allclose(R.numpy(), ref, atol=1e-12)
    # the original's s = 2/|q|^2: scale-free, and q = 0 gives the identity
    assert torch.allclose(quaternions_to_rotation_matrices(3.7 * q), R, atol=1e-12)
    assert torch.equal(quaternions_to_rotation_matrices(torch.zeros(4)), torch.eye(3))


def test_quaternion_naive_formula():
    w, x, y, z = 0.3, -0.5, 0.7, 0.2
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    naive = torch.tensor([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]], dtype=torch.float64)
    got = quaternions_to_rotation_matrices(torch.tensor([w, x, y, z], dtype=torch.float64))
    assert torch.allclose(got, naive, atol=1e-14)


# --------------------------------------------------------------------------- INN
def _random_conditions(model, B=2, scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = model.inn.feature_dims
    return scale * torch.randn(B, model.n_primitives, D, dtype=torch.float64, generator=g)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_forward_inverse_round_trip_full_size(dtype, tol):
    torch.manual_seed(0)
    model = NeuralParts(TinyEncoder(256), n_primitives=5).to(dtype)   # full-size INN (D = 512)
    for seed in range(3):
        F_prim = _random_conditions(model, seed=seed).to(dtype)
        y = model.sample_sphere_points(100, 2, dtype=dtype)
        with torch.no_grad():
            x = model.inn(F_prim, y)
            assert (x - y).abs().max() > 1e-2                          # not trivially the identity
            assert (model.inn.inverse(F_prim, x) - y).abs().max() < tol
            x2 = torch.rand(2, 100, 5, 3, dtype=dtype) - 0.5
            assert (model.inn(F_prim, model.inn.inverse(F_prim, x2)) - x2).abs().max() < tol


def test_sphere_points_map_to_phi_zero():
    torch.manual_seed(1)
    model = small_model(4)
    F_prim = _random_conditions(model)
    y_prim = model.points_on_primitives(F_prim, 50, union_surface=False)       # (B, S, M, 3)
    B, S, M, _ = y_prim.shape
    phi = model.phi(y_prim.reshape(B, S * M, 3), F_prim).view(B, S, M, M)
    own = torch.diagonal(phi, dim1=2, dim2=3)
    assert own.abs().max() < 1e-10
    # points inside / outside the sphere map to phi < 0 / > 0
    y = model.sample_sphere_points(50, B, dtype=torch.float64)
    for factor, sign in ((0.5, -1), (1.5, 1)):
        x = model.inn(F_prim, factor * y)
        phi = model.phi(x.reshape(B, S * M, 3), F_prim).view(B, S, M, M)
        expected = (factor - 1) * model.radius
        assert torch.allclose(torch.diagonal(phi, dim1=2, dim2=3), torch.full_like(own, expected), atol=1e-10)
        assert sign * expected > 0


def _tiny_coupling(mask):
    torch.manual_seed(0)
    D, P, H = 5, 4, 6
    proj = nn.Sequential(nn.Linear(3, H), nn.ReLU(), nn.Linear(H, P))
    s = nn.Sequential(nn.Linear(P + D, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 3),
                      nn.Hardtanh(-10, 10))
    t = nn.Sequential(nn.Linear(P + D, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 3))
    return CouplingLayer(s, t, proj, torch.tensor(mask, dtype=torch.float64), D).double()


@pytest.mark.parametrize("mask", [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
def test_coupling_layer_gradcheck(mask):
    layer = _tiny_coupling(mask)
    F_prim = torch.randn(1, 2, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 3, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (F_prim, y))
    assert torch.autograd.gradcheck(layer.inverse, (F_prim, y))
    assert torch.autograd.gradgradcheck(layer.inverse, (F_prim, y))     # the normal loss needs 2nd order
    with torch.no_grad():
        assert torch.allclose(layer.inverse(F_prim, layer(F_prim, y)), y, atol=1e-12)


def test_whole_inn_gradcheck():
    torch.manual_seed(0)
    inn = SimpleNVP(n_blocks=2, feature_dims=4, hidden_size=6, proj_dims=3).double()
    F_prim = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    y = 0.3 * torch.randn(1, 3, 2, 3, dtype=torch.float64)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(inn, (F_prim, y))
    assert torch.autograd.gradcheck(inn.inverse, (F_prim, y))


def test_coupling_equals_the_originals_concatenated_form():
    """Our split first Linear == the original: s = map_s(cat([F expanded over points, proj(y*m)]))."""
    layer = _tiny_coupling([1.0, 0.0, 1.0])
    F_prim = torch.randn(2, 3, 5, dtype=torch.float64)
    y = torch.randn(2, 7, 3, 3, dtype=torch.float64)
    y1 = y * layer.mask
    F_y1 = torch.cat([F_prim[:, None].expand(-1, 7, -1, -1), layer.projection(y1)], dim=-1)
    s, t = layer.map_s(F_y1), layer.map_t(F_y1)
    expected = y1 + (1 - layer.mask) * ((y - t) * torch.exp(-s))
    assert torch.allclose(layer(F_prim, y), expected, atol=1e-12)
    expected_inv = y1 + (1 - layer.mask) * (y * torch.exp(s) + t)
    assert torch.allclose(layer.inverse(F_prim, y), expected_inv, atol=1e-12)


def test_masks_are_seeded_buffers_with_two_ones():
    masks = lambda seed: [l.mask.tolist() for l in SimpleNVP(4, 8, 8, 4, seed=seed).layers]  # noqa: E731
    assert masks(5) == masks(5)
    assert len({str(masks(s)) for s in range(6)}) > 1
    inn = SimpleNVP(4, 8, 8, 4, seed=5)
    for i, layer in enumerate(inn.layers):
        assert sorted(layer.mask.tolist()) == [0.0, 1.0, 1.0]
        assert f"layers.{i}.mask" in inn.state_dict()
        assert layer.projection is inn.projection                      # one shared projection


def test_parameter_count_matches_the_original_architecture():
    D, H, P = 512, 256, 128
    lin = lambda i, o: i * o + o                                      # noqa: E731
    net = lin(P + D, H) + lin(H, H) + lin(H, 3)
    expected_inn = (lin(3, H) + lin(H, P)) + 4 * 2 * net + 2 * (lin(D, H) + lin(H, 3)) + lin(D, H) + lin(H, 4)
    model = NeuralParts(TinyEncoder(256), n_primitives=5)
    n_inn = sum(p.numel() for p in model.inn.parameters())
    assert n_inn == expected_inn == 2_275_746
    assert model.primitive_embedding.shape == (5, 256)


# --------------------------------------------------------------------------- phi and friends
def test_sphere_model_phi_closed_form():
    c, r = [[0.1, -0.2, 0.05], [0.3, 0.2, 0.0]], [0.2, 0.35]
    model = sphere_model(c, r)
    F_prim = model.primitive_features(images())
    x = torch.rand(2, 300, 3, dtype=torch.float64) - 0.5
    phi = model.phi(x, F_prim)
    for m in range(2):
        d = (x - torch.tensor(c[m], dtype=torch.float64)).norm(dim=-1)
        assert torch.allclose(phi[..., m], model.radius / r[m] * (d - r[m]), atol=1e-12)


def test_euclidean_phi_against_brute_force():
    torch.manual_seed(2)
    model = small_model(3)
    F_prim = _random_conditions(model)
    surface = model.points_on_primitives(F_prim, 40, union_surface=False)      # (B, S, M, 3)
    x = torch.rand(2, 150, 3, dtype=torch.float64) - 0.5
    got = model.euclidean_phi(x, F_prim, surface)
    radial = model.phi(x, F_prim)
    for b in range(2):
        for m in range(3):
            d = torch.cdist(x[b], surface[b, :, m]).min(dim=1).values
            assert torch.allclose(got[b, :, m], d * torch.sign(radial[b, :, m]), atol=1e-10)
    # gradients reach the network through the surface points
    got.abs().sum().backward()
    assert model.inn.layers[0].map_t[0].weight.grad.abs().sum() > 0


def test_on_surface_closed_form_for_two_spheres():
    c, r = [[0.0, 0.0, 0.0], [0.25, 0.0, 0.0]], [0.2, 0.15]
    model = sphere_model(c, r)
    F_prim = model.primitive_features(images(1))
    y_prim, on_surface = model.points_on_primitives(F_prim, 500)
    ct, rt = torch.tensor(c, dtype=torch.float64), torch.tensor(r, dtype=torch.float64)
    for m, other in ((0, 1), (1, 0)):
        p = y_prim[0, :, m]
        assert torch.allclose((p - ct[m]).norm(dim=-1), rt[m].expand(500), atol=1e-12)
        inside_other = (p - ct[other]).norm(dim=-1) < rt[other]
        assert 0 < inside_other.sum() < 500
        assert torch.equal(on_surface[0, :, m], ~inside_other)


def test_on_surface_mask_ignores_own_primitive_unless_asked():
    torch.manual_seed(5)
    model = small_model(3, dtype=torch.float32)
    F_prim = _random_conditions(model).float()
    y = model.sample_sphere_points(200, 2)
    y_prim, ours = model.points_on_primitives(F_prim, sphere_points=y)
    _, original = model.points_on_primitives(F_prim, sphere_points=y, exclude_own=False)
    phi = model.phi(y_prim.reshape(2, 600, 3), F_prim).view(2, 200, 3, 3)
    assert torch.equal(original, (phi >= 0).all(-1))                  # the original's mask
    off_diagonal = phi.masked_fill(torch.eye(3, dtype=torch.bool), 1.0)
    assert torch.equal(ours, (off_diagonal >= 0).all(-1))
    assert (ours & ~original).any()                                   # round-off drops points there


def test_forward_returns_what_the_losses_need():
    torch.manual_seed(3)
    model = small_model(4, euclidean_phi=True, n_points_on_sphere=30)
    out = model(images(), torch.rand(2, 60, 3, dtype=torch.float64) - 0.5,
                torch.rand(2, 25, 3, dtype=torch.float64) - 0.5)
    assert out["features"].shape == (2, 4, 16)
    assert out["points_on_primitives"].shape == (2, 30, 4, 3)
    assert out["on_surface"].shape == (2, 30, 4) and out["on_surface"].dtype == torch.bool
    assert out["phi_volume"].shape == (2, 60, 4)
    assert out["phi_surface"].shape == (2, 25, 4) and out["surface_points"].requires_grad
    model.use_euclidean_phi = False
    radial = model(images(), torch.zeros(2, 5, 3, dtype=torch.float64))["phi_volume"]
    assert torch.allclose(radial, model.phi(torch.zeros(2, 5, 3, dtype=torch.float64),
                                            model.primitive_features(images())))


def test_bad_arguments_raise_one_line_errors():
    with pytest.raises(ShapeLabError, match="n_primitives=0"):
        small_model(0)
    with pytest.raises(ShapeLabError, match="out_dim"):
        NeuralParts(nn.Linear(3, 4))
    model = small_model(2)
    with pytest.raises(ShapeLabError, match="expected \\(B, N, M, 3\\)"):
        model.inn(_random_conditions(model), torch.zeros(2, 5, 3, 3, dtype=torch.float64))


# --------------------------------------------------------------------------- meshes
def test_primitive_meshes_are_closed_outward_and_on_phi_zero():
    model = sphere_model([[0.0, 0.1, 0.0]], [0.3])
    F_prim = model.primitive_features(images(1))
    verts, faces = model.primitive_meshes(F_prim, level=3)
    assert verts.shape == (1, 1, 642, 3) and faces.shape == (1280, 3)
    mesh = trimesh.Trimesh(verts[0, 0].detach().numpy(), faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.volume > 0                      # outward faces
    assert abs(mesh.volume / (4 / 3 * math.pi * 0.3 ** 3) - 1) < 0.02
    torch.manual_seed(4)
    model = small_model(3)
    F_prim = _random_conditions(model, B=1)
    for kw in ({"level": 2}, {"uv_points": 300}):
        verts, faces = model.primitive_meshes(F_prim, **kw)
        phi = model.phi(verts.reshape(1, -1, 3), F_prim).view(1, 3, -1, 3)
        for m in range(3):
            assert phi[0, m, :, m].abs().max() < 1e-6                 # float32 sphere vertices
            mesh = trimesh.Trimesh(verts[0, m].detach().numpy(), faces.numpy(), process=False)
            assert mesh.is_watertight and mesh.volume > 0             # the INN keeps orientation


def test_uv_sphere_matches_the_originals_counts():
    for n in (200, 1000, 5000):
        v, f = uv_sphere(n, 0.25)
        p = math.ceil(math.sqrt(n / 2)) + 2
        assert len(v) == 2 + (p - 1) * 2 * p >= n
        assert len(f) == 2 * (2 * p) * (p - 1)
        assert torch.allclose(v.norm(dim=1), torch.full((len(v),), 0.25), atol=1e-6)
        mesh = trimesh.Trimesh(v.numpy(), f.numpy(), process=False)
        assert mesh.is_watertight and mesh.volume > 0
