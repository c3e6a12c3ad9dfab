"""Point ops (knn, chamfer, farthest point sampling, ball query) against naive brute-force references."""
import sys

import numpy as np
import pytest
import torch

import modules.geometry.knn as knn_mod
from modules.geometry import (ball_query, chamfer_distance, knn_gather, knn_points, knn_search_numpy,
                              sample_farthest_points)
from modules.geometry.sample_farthest_points import farthest_point_indices_naive
from modules.utils import ShapeLabError


@pytest.fixture(params=["dense", "tree"])
def path(request, monkeypatch):
    """Run a test once with the brute-force index search and once with the KD-tree one."""
    monkeypatch.setattr(knn_mod, "_DENSE_MAX_PAIRS", 10**12 if request.param == "dense" else 0)
    bq = sys.modules["modules.geometry.ball_query"]  # the package attribute is the function
    monkeypatch.setattr(bq, "_DENSE_MAX_PAIRS", 10**12 if request.param == "dense" else 0)
    return request.param


def naive_knn(p1, p2, l1, l2, K, norm):
    """Per cloud, per point: sort all distances (python loop over the batch)."""
    N, P1, _ = p1.shape
    dists = torch.zeros(N, P1, K, dtype=p1.dtype)
    idx = torch.zeros(N, P1, K, dtype=torch.int64)
    for n in range(N):
        a, b = p1[n, :l1[n]], p2[n, :l2[n]]
        diff = a[:, None] - b[None]
        d = (diff ** 2).sum(-1) if norm == 2 else diff.abs().sum(-1)
        k = min(K, b.shape[0])
        v, i = d.sort(dim=1)
        dists[n, :a.shape[0], :k] = v[:, :k]
        idx[n, :a.shape[0], :k] = i[:, :k]
    return dists, idx


@pytest.mark.parametrize("norm", [1, 2])
def test_knn_points_matches_naive(path, norm):
    torch.manual_seed(0)
    p1, p2 = torch.rand(3, 40, 3), torch.rand(3, 50, 3)
    l1, l2 = torch.tensor([40, 17, 30]), torch.tensor([50, 3, 22])
    out = knn_points(p1, p2, l1, l2, norm=norm, K=5, return_nn=True)
    d_ref, i_ref = naive_knn(p1, p2, l1, l2, 5, norm)
    assert torch.equal(out.idx, i_ref)
    assert torch.allclose(out.dists, d_ref, atol=1e-6)
    # the neighbour coordinates follow the indices; padding (k >= 3 in cloud 1) is zero
    assert torch.allclose(out.knn[0], p2[0][out.idx[0]])
    assert (out.knn[1, :, 3:] == 0).all() and (out.dists[1, :, 3:] == 0).all()
    assert (out.dists[1, 17:] == 0).all()


def test_knn_points_feature_space():
    # D > 8 (e.g. DGCNN features) always takes the brute-force path
    torch.manual_seed(11)
    f = torch.randn(2, 64, 16, dtype=torch.float64)
    out = knn_points(f, f, K=4)
    d_ref, i_ref = naive_knn(f, f, [64, 64], [64, 64], 4, 2)
    assert torch.equal(out.idx, i_ref) and torch.allclose(out.dists, d_ref)
    assert (out.idx[..., 0] == torch.arange(64)).all()  # each point is its own nearest neighbour


def test_knn_points_gradcheck(path):
    torch.manual_seed(1)
    p1 = torch.rand(2, 8, 3, dtype=torch.float64, requires_grad=True)
    p2 = torch.rand(2, 9, 3, dtype=torch.float64, requires_grad=True)
    l1, l2 = torch.tensor([8, 5]), torch.tensor([9, 2])
    for norm in (1, 2):
        assert torch.autograd.gradcheck(lambda a, b: knn_points(a, b, l1, l2, norm=norm, K=3).dists,
                                        (p1, p2), eps=1e-6, atol=1e-5)


def test_knn_gather_masks_short_clouds():
    x = torch.arange(12.0).view(2, 3, 2)
    idx = torch.tensor([[[2, 1]], [[0, 0]]])
    out = knn_gather(x, idx, lengths=torch.tensor([3, 1]))
    assert torch.equal(out[0, 0], x[0, [2, 1]])
    assert torch.equal(out[1, 0, 0], x[1, 0]) and (out[1, 0, 1] == 0).all()


def test_knn_search_numpy_matches_brute_force():
    rng = np.random.default_rng(0)
    q, r = rng.random((200, 3)), rng.random((300, 3))
    d, i = knn_search_numpy(q, r, k=4)
    full = np.linalg.norm(q[:, None] - r[None], axis=-1)
    assert d.dtype == np.float64 and i.dtype == np.int64 and d.shape == (200, 4)
    assert np.array_equal(i, np.argsort(full, axis=1)[:, :4])
    assert np.allclose(d, np.sort(full, axis=1)[:, :4])
    with pytest.raises(ShapeLabError, match="ref"):
        knn_search_numpy(q, np.zeros((0, 3)))
    with pytest.raises(ShapeLabError, match="NaN"):
        knn_search_numpy(np.full((2, 3), np.nan), r)


# ---------------------------------------------------------------- chamfer
def naive_chamfer_dir(a, b, na=None, nb=None, norm=2, abs_cos=True):
    diff = a[:, None] - b[None]
    d = (diff ** 2).sum(-1) if norm == 2 else diff.abs().sum(-1)
    v, i = d.min(dim=1)
    if na is None:
        return v, None
    cos = torch.nn.functional.cosine_similarity(na, nb[i], dim=1, eps=1e-6)
    return v, 1 - (cos.abs() if abs_cos else cos)


@pytest.mark.parametrize("point_reduction", ["mean", "sum"])
@pytest.mark.parametrize("batch_reduction", ["mean", "sum", None])
def test_chamfer_matches_naive(point_reduction, batch_reduction):
    torch.manual_seed(2)
    x, y = torch.rand(3, 30, 3), torch.rand(3, 25, 3)
    nx, ny = torch.randn(3, 30, 3), torch.randn(3, 25, 3)
    lx, ly = torch.tensor([30, 12, 20]), torch.tensor([25, 25, 7])
    w = torch.tensor([1.0, 0.5, 2.0])
    for norm, abs_cos, weights in [(2, True, None), (1, False, w)]:
        loss, loss_n = chamfer_distance(x, y, lx, ly, nx, ny, weights=weights, batch_reduction=batch_reduction,
                                        point_reduction=point_reduction, norm=norm, abs_cosine=abs_cos)
        per, per_n = [], []
        for n in range(3):
            a, b = x[n, :lx[n]], y[n, :ly[n]]
            dx, cx = naive_chamfer_dir(a, b, nx[n, :lx[n]], ny[n, :ly[n]], norm, abs_cos)
            dy, cy = naive_chamfer_dir(b, a, ny[n, :ly[n]], nx[n, :lx[n]], norm, abs_cos)
            red = (lambda t: t.mean()) if point_reduction == "mean" else (lambda t: t.sum())
            wn = 1.0 if weights is None else weights[n]
            per.append(wn * (red(dx) + red(dy)))
            per_n.append(wn * (red(cx) + red(cy)))
        per, per_n = torch.stack(per), torch.stack(per_n)
        if batch_reduction is not None:
            div = 1.0 if batch_reduction == "sum" else (3 if weights is None else weights.sum())
            per, per_n = per.sum() / div, per_n.sum() / div
        assert torch.allclose(loss, per, atol=1e-5) and torch.allclose(loss_n, per_n, atol=1e-5)


def test_chamfer_max_none_and_single_direction():
    torch.manual_seed(3)
    x, y = torch.rand(2, 20, 3), torch.rand(2, 15, 3)
    dx = torch.stack([naive_chamfer_dir(x[n], y[n])[0] for n in range(2)])
    dy = torch.stack([naive_chamfer_dir(y[n], x[n])[0] for n in range(2)])
    haus, _ = chamfer_distance(x, y, point_reduction="max", batch_reduction=None)
    assert torch.allclose(haus, torch.maximum(dx.max(1).values, dy.max(1).values))
    (cx, cy), normals = chamfer_distance(x, y, point_reduction=None, batch_reduction=None)
    assert normals is None and torch.allclose(cx, dx) and torch.allclose(cy, dy)
    single, _ = chamfer_distance(x, y, single_directional=True)
    assert torch.allclose(single, dx.mean(1).mean())


def test_chamfer_closed_forms():
    g = torch.stack(torch.meshgrid(*[torch.arange(4.0)] * 3, indexing="ij"), -1).view(1, -1, 3)
    assert chamfer_distance(g, g)[0].item() == 0.0
    # a grid of spacing 1 shifted by 0.1: every nearest neighbour is the shifted copy
    shifted = g + torch.tensor([0.1, 0.0, 0.0])
    assert chamfer_distance(g, shifted)[0].item() == pytest.approx(2 * 0.01, rel=1e-5)
    assert chamfer_distance(g, shifted, norm=1)[0].item() == pytest.approx(2 * 0.1, rel=1e-5)


def test_chamfer_gradcheck(path):
    torch.manual_seed(4)
    x = torch.rand(2, 7, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 6, 3, dtype=torch.float64, requires_grad=True)
    lx = torch.tensor([7, 4])
    assert torch.autograd.gradcheck(lambda a, b: chamfer_distance(a, b, x_lengths=lx)[0], (x, y), eps=1e-6)


def test_chamfer_tree_path_at_scale_matches_dense():
    torch.manual_seed(5)
    x, y = torch.rand(1, 3000, 3), torch.rand(1, 2500, 3)  # 7.5M pairs: KD-tree path
    assert knn_mod._use_tree(x, y, torch.tensor([3000]), torch.tensor([2500]))
    ref = torch.stack([naive_chamfer_dir(x[0], y[0])[0].mean() + naive_chamfer_dir(y[0], x[0])[0].mean()])
    assert torch.allclose(chamfer_distance(x, y)[0], ref[0], rtol=1e-5)


def test_chamfer_bad_input():
    x = torch.rand(2, 5, 3)
    with pytest.raises(ShapeLabError, match="empty"):
        chamfer_distance(x, torch.rand(2, 0, 3))
    with pytest.raises(ShapeLabError, match="y: clouds \\[1\\]"):
        chamfer_distance(x, x, y_lengths=torch.tensor([5, 0]))
    bad = x.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ShapeLabError, match="x: contains NaN"):
        chamfer_distance(bad, x)
    with pytest.raises(ShapeLabError, match="batch_reduction=None"):
        chamfer_distance(x, x, point_reduction=None)
    with pytest.raises(ShapeLabError, match="max"):
        chamfer_distance(x, x, x_normals=x, y_normals=x, point_reduction="max")
    with pytest.raises(ShapeLabError, match="x_lengths"):
        chamfer_distance(x, x, x_lengths=torch.tensor([6, 5]))


# ---------------------------------------------------------------- farthest point sampling
naive_fps = farthest_point_indices_naive


def test_fps_matches_naive_with_lengths_and_k_list():
    torch.manual_seed(6)
    pts = torch.rand(3, 400, 3)
    lengths = torch.tensor([400, 250, 6])
    sel, idx = sample_farthest_points(pts, lengths, K=[50, 30, 10])
    assert idx.shape == (3, 50)
    for n, k in enumerate([50, 30, 6]):
        ref = naive_fps(pts[n, :lengths[n]].numpy(), k)
        assert idx[n, :k].tolist() == ref
        assert (idx[n, k:] == -1).all() and (sel[n, k:] == 0).all()
        assert torch.equal(sel[n, :k], pts[n, idx[n, :k]])


def test_fps_torch_only_loop_matches_naive(monkeypatch):
    """The loop the GPU runs (torch argmax instead of numpy's), exercised on the CPU."""
    monkeypatch.setattr(sys.modules["modules.geometry.sample_farthest_points"], "_NUMPY_ARGMAX_ON_CPU", False)
    torch.manual_seed(12)
    pts = torch.rand(2, 300, 3)
    _, idx = sample_farthest_points(pts, torch.tensor([300, 120]), K=40, start_idx=torch.tensor([0, 7]))
    assert idx[0].tolist() == naive_fps(pts[0].numpy(), 40)
    assert idx[1].tolist() == naive_fps(pts[1, :120].numpy(), 40, start=7)


def test_fps_start_index_random_start_and_gradient():
    torch.manual_seed(7)
    pts = torch.rand(2, 300, 3, dtype=torch.float64, requires_grad=True)
    _, idx = sample_farthest_points(pts, K=20, start_idx=torch.tensor([5, 17]))
    assert idx[:, 0].tolist() == [5, 17]
    assert idx[1].tolist() == naive_fps(pts[1].detach().numpy(), 20, start=17)
    torch.manual_seed(8)
    _, a = sample_farthest_points(pts, K=20, random_start_point=True)
    torch.manual_seed(8)
    _, b = sample_farthest_points(pts, K=20, random_start_point=True)
    assert torch.equal(a, b) and len(set(a[0].tolist())) == 20
    sel, idx = sample_farthest_points(pts, K=10)
    sel.sum().backward()
    assert pts.grad.sum().item() == pytest.approx(2 * 10 * 3)


def test_fps_bad_input():
    with pytest.raises(ShapeLabError, match="empty"):
        sample_farthest_points(torch.rand(2, 10, 3), torch.tensor([10, 0]), K=3)
    with pytest.raises(ShapeLabError, match="NaN"):
        sample_farthest_points(torch.full((1, 10, 3), float("nan")), K=3)
    with pytest.raises(ShapeLabError, match="start_idx"):
        sample_farthest_points(torch.rand(1, 10, 3), K=3, start_idx=10)


# ---------------------------------------------------------------- ball query
def test_ball_query_matches_naive(path):
    torch.manual_seed(9)
    p1, p2 = torch.rand(2, 60, 3), torch.rand(2, 80, 3)
    l1, l2 = torch.tensor([60, 33]), torch.tensor([80, 41])
    out = ball_query(p1, p2, l1, l2, K=6, radius=0.3)
    for n in range(2):
        for i in range(60):
            if i >= l1[n]:
                assert (out.idx[n, i] == -1).all()
                continue
            d = ((p1[n, i] - p2[n, :l2[n]]) ** 2).sum(-1)
            ref = torch.nonzero(d < 0.09)[:, 0][:6].tolist()  # first K in index order
            got = out.idx[n, i]
            assert got[got >= 0].tolist() == ref and (got[len(ref):] == -1).all()
            assert torch.allclose(out.dists[n, i, :len(ref)], d[ref])
            assert (out.knn[n, i, len(ref):] == 0).all()


def test_ball_query_gradcheck(path):
    torch.manual_seed(10)
    p1 = torch.rand(1, 6, 3, dtype=torch.float64, requires_grad=True)
    p2 = torch.rand(1, 9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ball_query(a, b, K=4, radius=0.6).dists, (p1, p2), eps=1e-6)
