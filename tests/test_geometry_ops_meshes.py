"""Mesh ops (Meshes, surface sampling, ico sphere, mesh losses, cubify) against naive references and
closed forms."""
import itertools
import math

import pytest
import torch
import trimesh

from modules.geometry import (Meshes, cubify, ico_sphere, mesh_edge_loss, mesh_laplacian_smoothing,
                              mesh_normal_consistency, sample_points_from_meshes)
from modules.utils import ShapeLabError


def two_meshes(dtype=torch.float32):
    """A perturbed level-1 icosphere and a tetrahedron (different sizes, for packing/weighting)."""
    torch.manual_seed(0)
    s = ico_sphere(1)
    v1 = (s.verts_packed() + 0.05 * torch.randn(42, 3)).to(dtype)
    v2 = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]], dtype=dtype)
    f2 = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return Meshes([v1, v2], [s.faces_packed(), f2])


# ---------------------------------------------------------------- Meshes
def test_meshes_views_and_errors():
    m = two_meshes()
    assert m.num_verts_per_mesh().tolist() == [42, 4] and m.num_faces_per_mesh().tolist() == [80, 4]
    assert torch.equal(m.faces_packed()[80:], m.faces_list()[1] + 42)
    assert m.verts_padded().shape == (2, 42, 3) and (m.verts_padded()[1, 4:] == 0).all()
    assert (m.faces_padded()[1, 4:] == -1).all()
    assert m.edges_packed().shape[0] == 120 + 6 and m.num_edges_per_mesh().tolist() == [120, 6]
    # edge k of each face is the one opposite vertex k
    f, e = m.faces_packed(), m.edges_packed()[m.faces_packed_to_edges_packed()]
    assert torch.equal(e[:, 0].sort(1).values, f[:, [1, 2]].sort(1).values)
    moved = m.offset_verts(torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(moved.verts_list()[1], m.verts_list()[1] + torch.tensor([1.0, 2.0, 3.0]))
    again = Meshes(m.verts_padded()[:1], m.faces_padded()[:1])
    assert torch.equal(again.faces_packed(), m.faces_list()[0])
    with pytest.raises(ShapeLabError, match="chair.obj: faces index vertices in \\[0, 4\\]"):
        Meshes([torch.rand(4, 3)], [torch.tensor([[0, 1, 4]])], names=["chair.obj"])
    with pytest.raises(ShapeLabError, match="mesh 0: vertices contain NaN"):
        Meshes([torch.full((3, 3), float("nan"))], [torch.tensor([[0, 1, 2]])])


# ---------------------------------------------------------------- ico sphere
@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_ico_sphere_closed_forms(level):
    m = ico_sphere(level)
    v, f = m.verts_packed(), m.faces_packed()
    assert v.shape[0] == 10 * 4 ** level + 2 and f.shape[0] == 20 * 4 ** level
    assert torch.allclose(v.norm(dim=1), torch.ones(v.shape[0]), atol=1e-6)
    t = trimesh.Trimesh(v.numpy(), f.numpy(), process=False)
    assert t.is_watertight and t.is_winding_consistent and t.euler_number == 2 and t.volume > 0
    # inscribed polyhedron: the area approaches the sphere's 4 pi from below, ~4x closer per level
    assert 0 < (4 * math.pi - t.area) / (4 * math.pi) < 0.25 / 3 ** level


# ---------------------------------------------------------------- surface sampling
def test_sampling_on_surface_with_normals_and_face_idx():
    torch.manual_seed(1)
    m = two_meshes()
    pts, normals, fidx = sample_points_from_meshes(m, 2000, return_normals=True, return_face_idx=True)
    assert pts.shape == (2, 2000, 3) and normals.shape == (2, 2000, 3) and fidx.shape == (2, 2000)
    for n in range(2):
        v, f = m.verts_list()[n], m.faces_list()[n]
        tri = v[f[fidx[n]]]  # (S, 3, 3) the triangle each point came from
        # inside its triangle: the three sub-triangles around the point add up to the triangle
        p = pts[n]
        sub = sum(torch.cross(tri[:, (k + 1) % 3] - p, tri[:, (k + 2) % 3] - p, dim=1).norm(dim=1) for k in range(3))
        full = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1).norm(dim=1)
        assert torch.allclose(sub / full, torch.ones(2000), atol=1e-3)
        ref_n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
        assert torch.allclose(normals[n], ref_n / ref_n.norm(dim=1, keepdim=True), atol=1e-5)


def test_sampling_is_area_weighted_and_differentiable():
    # two disjoint triangles with areas 0.5 and 4.5: 10% / 90% of the samples
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 0], [8, 0, 0], [5, 3, 0.0]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [3, 4, 5]])
    torch.manual_seed(2)
    _, fidx = sample_points_from_meshes(Meshes([v], [f]), 20000, return_face_idx=True)
    assert (fidx == 0).double().mean().item() == pytest.approx(0.1, abs=0.01)

    def sample(verts):
        torch.manual_seed(3)  # same faces and barycentrics on every call
        return sample_points_from_meshes(Meshes([verts], [f]), 50)
    assert torch.autograd.gradcheck(sample, (v.clone().requires_grad_(True),), eps=1e-6)


def test_sampling_rejects_degenerate_mesh():
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [2, 0, 0.0]])  # collinear: zero area
    with pytest.raises(ShapeLabError, match="flat: cannot sample"):
        sample_points_from_meshes(Meshes([v], [torch.tensor([[0, 1, 2]])], names=["flat"]), 10)


# ---------------------------------------------------------------- mesh losses
def naive_edges(f):
    return sorted({tuple(sorted((int(a), int(b)))) for tri in f for a, b in itertools.combinations(tri, 2)})


def test_mesh_edge_loss_matches_naive():
    m = two_meshes()
    per_mesh = []
    for v, f in zip(m.verts_list(), m.faces_list()):
        lengths = torch.stack([(v[a] - v[b]).norm() for a, b in naive_edges(f)])
        per_mesh.append(((lengths - 0.3) ** 2).mean())
    assert mesh_edge_loss(m, 0.3).item() == pytest.approx(torch.stack(per_mesh).mean().item(), rel=1e-5)


def naive_laplacian(v, f, method):
    """Dense loops: uniform neighbour mean, cot weights from the angles (acos), per-vertex areas."""
    V = v.shape[0]
    Wm = torch.zeros(V, V, dtype=v.dtype)
    area = torch.zeros(V, dtype=v.dtype)
    for tri in f.tolist():
        a = 0.5 * torch.cross(v[tri[1]] - v[tri[0]], v[tri[2]] - v[tri[0]], dim=0).norm()
        for k in range(3):
            i, j, o = tri[(k + 1) % 3], tri[(k + 2) % 3], tri[k]  # edge (i, j), opposite corner o
            e1, e2 = v[i] - v[o], v[j] - v[o]
            ang = torch.acos((e1 @ e2) / (e1.norm() * e2.norm()))
            w = 1.0 if method == "uniform" else 1.0 / torch.tan(ang)
            if method == "uniform":
                Wm[i, j] = Wm[j, i] = 1.0
            else:
                Wm[i, j] += w
                Wm[j, i] += w
            area[tri[k]] += a
    rows = Wm.sum(1, keepdim=True)
    if method == "uniform":
        lv = Wm @ v / rows - v
    elif method == "cot":
        lv = Wm @ v / rows - v
    else:
        lv = (Wm @ v - rows * v) / (4 * area[:, None])
    return lv.norm(dim=1).mean()


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_mesh_laplacian_smoothing_matches_naive(method):
    m = two_meshes(torch.float64)
    ref = torch.stack([naive_laplacian(v, f, method) for v, f in zip(m.verts_list(), m.faces_list())]).mean()
    assert mesh_laplacian_smoothing(m, method).item() == pytest.approx(ref.item(), rel=1e-6)


def test_laplacian_closed_forms():
    # interior vertex of a flat symmetric fan: every Laplacian is 0 there, so only the rim counts;
    # on a unit icosphere the cot-curvature vector has length 2H * A_mixed / (4 A_1ring) ~ 2 * 1/6
    s = ico_sphere(3)
    assert mesh_laplacian_smoothing(s, "cotcurv").item() == pytest.approx(1 / 3, rel=0.01)


def naive_normal_consistency(v, f):
    faces_of_edge = {}
    for t, tri in enumerate(f.tolist()):
        for k in range(3):
            e = tuple(sorted((tri[(k + 1) % 3], tri[(k + 2) % 3])))
            faces_of_edge.setdefault(e, []).append(tri[k])
    terms = []
    for (a, b), opp in faces_of_edge.items():
        for i, j in itertools.combinations(range(len(opp)), 2):
            n0 = torch.cross(v[b] - v[a], v[opp[i]] - v[a], dim=0)
            n1 = torch.cross(v[opp[j]] - v[a], v[b] - v[a], dim=0)
            terms.append(1 - torch.dot(n0, n1) / (n0.norm() * n1.norm()))
    return torch.stack(terms).mean()


def test_mesh_normal_consistency_matches_naive_and_closed_forms():
    m = two_meshes(torch.float64)
    ref = torch.stack([naive_normal_consistency(v, f) for v, f in zip(m.verts_list(), m.faces_list())]).mean()
    assert mesh_normal_consistency(m).item() == pytest.approx(ref.item(), rel=1e-6)
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]])
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert mesh_normal_consistency(Meshes([v], [f])).item() == pytest.approx(0.0, abs=1e-7)
    v[3] = torch.tensor([1.0, 1.0, 1.0])  # second triangle folded up by 90 degrees -> 1 - cos 90 = 1
    assert mesh_normal_consistency(Meshes([v], [f])).item() == pytest.approx(1.0, abs=1e-6)
    # a non-manifold edge shared by three faces counts each of its 3 face pairs
    v3 = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1.0]])
    f3 = torch.tensor([[0, 1, 2], [0, 1, 3], [0, 1, 4]])
    assert mesh_normal_consistency(Meshes([v3], [f3])).item() == pytest.approx(
        naive_normal_consistency(v3, f3).item(), rel=1e-6)


def test_mesh_losses_gradcheck():
    m = two_meshes(torch.float64)
    v0 = m.verts_list()[1].clone().requires_grad_(True)
    f = m.faces_list()[1]
    for fn in (lambda v: mesh_edge_loss(Meshes([v], [f]), 0.5),
               lambda v: mesh_normal_consistency(Meshes([v], [f])),
               lambda v: mesh_laplacian_smoothing(Meshes([v], [f]), "uniform")):
        # (cot weights are constants under autograd, as in PyTorch3D, so only "uniform" is a true gradient)
        assert torch.autograd.gradcheck(fn, (v0,), eps=1e-6)


# ---------------------------------------------------------------- cubify
def test_cubify_counts_volume_and_convention():
    vox = torch.zeros(3, 2, 3, 4)
    vox[0, 0, 0, 0] = 1  # one cube
    vox[1, 0, 0, 0] = vox[1, 0, 0, 1] = 1  # two cubes sharing a face along W
    m = cubify(vox, 0.5)
    assert m.num_verts_per_mesh().tolist() == [8, 12, 0] and m.num_faces_per_mesh().tolist() == [12, 20, 0]
    # topleft: grid point i of an axis of size S sits at 2 i / (S - 1) - 1; x <-> W, y <-> H, z <-> D
    v = m.verts_list()[1]
    assert torch.allclose(v.min(0).values, torch.tensor([-1.0, -1.0, -1.0]))
    assert torch.allclose(v.max(0).values, torch.tensor([-1 + 2 * 2 / 3, -1 + 2 / 2, -1 + 2 / 1]))
    full = cubify(torch.ones(1, 3, 4, 5), 0.5, align="corner")
    assert torch.allclose(full.verts_packed().abs().max(0).values, torch.ones(3))
    assert full.num_faces_per_mesh().item() == 2 * 2 * (3 * 4 + 4 * 5 + 3 * 5)  # only the outer shell


def test_cubify_random_grid_is_closed_outward_and_has_the_right_volume():
    torch.manual_seed(4)
    vox = torch.rand(1, 5, 6, 7)
    m = cubify(vox, 0.6, align="corner")  # occupied when >= 0.6
    t = trimesh.Trimesh(m.verts_packed().numpy(), m.faces_packed().numpy(), process=False)
    cell = (2 / 7) * (2 / 6) * (2 / 5)
    assert t.volume == pytest.approx(int((vox >= 0.6).sum()) * cell, rel=1e-5)
    # closed and consistently oriented: each directed edge a->b is matched by as many b->a
    f = m.faces_packed()
    directed = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    forward = torch.unique(directed, dim=0, return_counts=True)
    backward = torch.unique(directed.flip(1), dim=0, return_counts=True)
    assert torch.equal(forward[0], backward[0]) and torch.equal(forward[1], backward[1])
    with pytest.raises(ShapeLabError, match="align"):
        cubify(vox, 0.5, align="middle")
