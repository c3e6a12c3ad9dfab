"""Neural Parts losses against closed forms (sphere primitives vs sphere targets) and naive
transcriptions of the original's formulas; the weighted sum, switching terms off, and a short fit."""
import math

import pytest
import torch

from modules.losses.neural_parts import (DEFAULT_WEIGHTS, implicit_surface_loss, min_points_loss,
                                         neural_parts_loss, non_overlapping_regularizer,
                                         normal_consistency_loss, true_chamfer_loss)
from modules.models.neural_parts import NeuralParts
from modules.utils import ShapeLabError
from test_neural_parts_model import TinyEncoder, images, small_model, sphere_model

pytestmark = pytest.mark.usefixtures("single_thread")
f64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- reconstruction
@pytest.mark.parametrize("R", [0.35, 0.1])
def test_chamfer_of_concentric_spheres_is_the_radius_gap(R):
    rho = 0.2
    model = sphere_model([[0.05, -0.1, 0.0]], [rho])
    F_prim = model.primitive_features(images(1))
    y_prim, on_surface = model.points_on_primitives(F_prim, 300)
    c = torch.tensor([0.05, -0.1, 0.0], dtype=f64)
    target = c + (y_prim[:, :, 0] - c) * (R / rho)                   # same directions, radius R
    gap = abs(R - rho)
    assert on_surface.all()
    assert torch.allclose(true_chamfer_loss(y_prim, on_surface, target), torch.tensor(2 * gap, dtype=f64))
    t2p = true_chamfer_loss(y_prim, on_surface, target, prim_to_target_weight=0.0)
    assert torch.allclose(t2p, torch.tensor(gap, dtype=f64))


def _naive_true_chamfer(y_prim, on_surface, targets):
    """The original's `true_chamfer_loss`, transcribed with the full (B,S,M,N2) distance tensor."""
    internal = ~on_surface[:, :, :, None]
    dists = torch.sqrt(((y_prim[:, :, :, None] - targets[:, None, None]) ** 2).sum(-1))
    target_to_prim = dists.min(1)[0].min(1)[0].mean()
    prim_to_target = dists.masked_fill(internal, 0).min(3)[0].mean() / on_surface.float().mean()
    return target_to_prim + prim_to_target


def test_chamfer_matches_the_originals_formula_with_masking():
    y_prim = torch.rand(2, 30, 3, 3, dtype=f64, generator=_gen(0))
    on_surface = torch.rand(2, 30, 3, generator=_gen(1)) < 0.6
    targets = torch.rand(2, 40, 3, dtype=f64, generator=_gen(2))
    got = true_chamfer_loss(y_prim, on_surface, targets)
    assert torch.allclose(got, _naive_true_chamfer(y_prim, on_surface, targets), atol=1e-10)
    # masking matters: the unmasked value differs
    assert not torch.allclose(got, true_chamfer_loss(y_prim, torch.ones_like(on_surface), targets))
    # every point internal: the original divides 0 by 0; we return the target->prim part only
    none = torch.zeros_like(on_surface)
    got = true_chamfer_loss(y_prim, none, targets)
    assert torch.isfinite(got) and torch.allclose(got, true_chamfer_loss(y_prim, none, targets, 1.0, 0.0))


# --------------------------------------------------------------------------- normals
def _sphere_targets(centre, R, n=200, seed=0):
    d = torch.randn(1, n, 3, dtype=f64, generator=_gen(seed))
    d = d / d.norm(dim=-1, keepdim=True)
    return torch.tensor(centre, dtype=f64) + R * d, d


@pytest.mark.parametrize("R", [0.3, 0.1])
def test_normal_consistency_is_0_for_outward_and_2_for_inward_normals(R):
    c = [0.1, 0.0, -0.05]
    model = sphere_model([c], [0.2])
    points, normals = _sphere_targets(c, R)
    for sign, expected in ((1, 0.0), (-1, 2.0)):
        out = model(images(1), None, points)
        loss = normal_consistency_loss(out["phi_surface"], out["surface_points"], sign * normals)
        assert abs(loss.item() - expected) < 1e-10


def test_normal_consistency_uses_the_primitive_with_smallest_phi_squared():
    c = [[-0.2, 0.0, 0.0], [0.2, 0.0, 0.0]]
    model = sphere_model(c, [0.15, 0.15])
    points, normals = _sphere_targets(c[1], 0.15)                   # on primitive 1 only
    out = model(images(1), None, points)
    assert abs(normal_consistency_loss(out["phi_surface"], out["surface_points"], normals).item()) < 1e-10


def test_normal_consistency_against_finite_differences_and_trains_the_network():
    torch.manual_seed(0)
    model = small_model(3)
    points = 0.3 * torch.randn(1, 12, 3, dtype=f64, generator=_gen(5))
    normals = torch.randn(1, 12, 3, dtype=f64, generator=_gen(6))
    normals = normals / normals.norm(dim=-1, keepdim=True)
    out = model(images(1), None, points)
    loss = normal_consistency_loss(out["phi_surface"], out["surface_points"], normals)
    F_prim = out["features"]
    with torch.no_grad():                                           # naive: central differences
        owner = out["phi_surface"].pow(2).argmin(-1)[0]
        naive = 0.0
        for i in range(12):
            g = torch.zeros(3, dtype=f64)
            for k in range(3):
                e = torch.zeros(1, 1, 3, dtype=f64)
                e[..., k] = 1e-6
                p = points[:, i:i + 1]
                g[k] = (model.phi(p + e, F_prim)[0, 0, owner[i]] - model.phi(p - e, F_prim)[0, 0, owner[i]]) / 2e-6
            naive += 1 - float(normals[0, i] @ (g / g.norm()))
    assert abs(loss.item() - naive / 12) < 1e-6
    loss.backward()                                                 # create_graph: reaches the INN
    assert model.inn.layers[0].map_s[0].weight.grad.abs().sum() > 0
    with pytest.raises(ShapeLabError, match="requires_grad"):
        normal_consistency_loss(out["phi_surface"], points, normals)


# --------------------------------------------------------------------------- volume losses
def _volume_case(B=2, N=25, M=3, seed=0):
    phi = 0.02 * torch.randn(B, N, M, dtype=f64, generator=_gen(seed))
    labels = (torch.rand(B, N, generator=_gen(seed + 1)) < 0.5).to(f64)
    weights = torch.rand(B, N, dtype=f64, generator=_gen(seed + 2)) * 2
    return phi, labels, weights


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@pytest.mark.parametrize("smooth_max", [False, True])
def test_occupancy_against_a_naive_bce_loop(smooth_max):
    phi, labels, weights = _volume_case()
    B, N, M = phi.shape
    total = 0.0
    for b in range(B):
        for n in range(N):
            logits = [250 * -phi[b, n, m].item() for m in range(M)]
            z = math.log(sum(math.exp(v) for v in logits)) if smooth_max else max(logits)
            y = labels[b, n].item()
            bce = y * _softplus(-z) + (1 - y) * _softplus(z)            # -y log s(z) - (1-y) log(1-s(z))
            total += weights[b, n].item() * bce
    got = implicit_surface_loss(phi, labels, weights, smooth_max=smooth_max)
    assert abs(got.item() - total / (B * N)) < 1e-10
    assert torch.allclose(implicit_surface_loss(phi, labels[..., None], weights[..., None], smooth_max=smooth_max), got)


def test_coverage_against_a_naive_sort():
    phi, labels, _ = _volume_case(N=40)
    B, N, M = phi.shape
    terms = []
    for b in range(B):
        for m in range(M):
            inside = sorted(phi[b, n, m].item() for n in range(N) if labels[b, n] == 1)
            outside = sorted(phi[b, n, m].item() + 1e6 for n in range(N) if labels[b, n] == 0)
            for v in (inside + outside)[:10]:
                terms.append(-math.log(1 / (1 + math.exp(250 * v)) + 1e-6) if v < 1e3 else -math.log(1e-6))
    got = min_points_loss(phi, labels, k=10)
    assert abs(got.item() - sum(terms) / len(terms)) < 1e-10
    with pytest.raises(ShapeLabError, match="k=50"):
        min_points_loss(phi, labels, k=50)


def test_overlap_against_a_naive_sum():
    phi, _, _ = _volume_case(N=30, M=4)
    phi = phi - 0.01                                               # many points inside >= 2 primitives
    B, N, M = phi.shape
    total = 0.0
    for b in range(B):
        for n in range(N):
            s = sum(1 / (1 + math.exp(250 * phi[b, n, m].item())) for m in range(M))
            total += max(s - 1.95, 0.0)
    got = non_overlapping_regularizer(phi)
    assert got.item() > 0 and abs(got.item() - total / (B * N)) < 1e-10


# --------------------------------------------------------------------------- weighted sum
def _pred_and_batch(seed=0):
    torch.manual_seed(seed)
    model = small_model(3, n_points_on_sphere=20)
    surface = torch.rand(2, 30, 3, dtype=f64, generator=_gen(seed)) - 0.5
    normals = surface / surface.norm(dim=-1, keepdim=True)
    queries = torch.rand(2, 40, 3, dtype=f64, generator=_gen(seed + 1)) - 0.5
    pred = model(images(), queries, surface)
    batch = {"points": queries, "occ": (queries.norm(dim=-1) < 0.3).to(f64),
             "weights": torch.ones(2, 40, dtype=f64), "surface_points": surface, "surface_normals": normals}
    return model, pred, batch


def test_total_is_the_weighted_sum_and_terms_switch_off():
    _, pred, batch = _pred_and_batch()
    total, terms = neural_parts_loss(pred, batch)
    assert set(terms) == set(DEFAULT_WEIGHTS)
    assert DEFAULT_WEIGHTS == {"reconstruction": 0.3, "normal_consistency": 0.01, "occupancy": 1.0,
                               "coverage": 0.01, "overlap": 0.1}
    assert torch.allclose(total, sum(DEFAULT_WEIGHTS[k] * v for k, v in terms.items()))
    assert torch.allclose(terms["occupancy"], implicit_surface_loss(pred["phi_volume"], batch["occ"], batch["weights"]))
    # ablation: a weight of 0 drops the term, and its inputs are no longer needed
    no_normals = {k: v for k, v in batch.items() if k != "surface_normals"}
    total2, terms2 = neural_parts_loss(pred, no_normals, weights={"normal_consistency": 0})
    assert "normal_consistency" not in terms2
    assert torch.allclose(total2, total - 0.01 * terms["normal_consistency"])
    with pytest.raises(ShapeLabError, match="surface_normals"):
        neural_parts_loss(pred, no_normals)
    with pytest.raises(ShapeLabError, match="unknown term"):
        neural_parts_loss(pred, batch, weights={"chamfer": 1.0})


def test_short_fit_of_two_primitives_to_an_ellipsoid_lowers_the_loss():
    torch.manual_seed(0)
    model = NeuralParts(TinyEncoder(8), n_primitives=2, feature_dim=8, hidden_size=32, proj_dims=16,
                        n_points_on_sphere=60)
    axes = torch.tensor([0.35, 0.2, 0.15])
    d = torch.randn(1, 300, 3, generator=_gen(0))
    d = d / d.norm(dim=-1, keepdim=True)
    surface = d * axes
    normals = surface / axes ** 2
    normals = normals / normals.norm(dim=-1, keepdim=True)
    queries = torch.rand(1, 400, 3, generator=_gen(1)) - 0.5
    occ = ((queries / axes) ** 2).sum(-1) < 1
    batch = {"occ": occ.float(), "surface_points": surface, "surface_normals": normals}
    image = torch.rand(1, 3, 8, 8, generator=_gen(2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(60):
        total, _ = neural_parts_loss(model(image, queries, surface), batch)
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1)
        opt.step()
        history.append(total.item())
    first, last = sum(history[:5]) / 5, sum(history[-5:]) / 5
    assert last < 0.5 * first, (first, last)       # measured: 1.68 -> 0.31
