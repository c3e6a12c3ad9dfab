"""Occupancy networks: output shapes, parameter counts derived from the architecture, invariances,
the IF-Net voxelisation / feature sampling, ConvONet scatter ops, and bad-input errors."""
import numpy as np
import pytest
import torch

from modules.families.occupancy.config import AIRNET as AIRNET_DEFAULTS
from modules.families.occupancy.config import CONVONET as CONVONET_DEFAULTS
from modules.families.occupancy.config import IFNET as IFNET_DEFAULTS
from modules.families.occupancy.config import ONET as ONET_DEFAULTS
from modules.metrics import occupancy_iou
from modules.models.layers import count_parameters
from modules.registry import MODELS
from modules.utils import ShapeLabError

TINY_AIRNET = dict(AIRNET_DEFAULTS, npoints_per_layer=[64, 32, 16], encoder_nneigh=8, encoder_nneigh_reduced=8,
                   nfinal_trans=1, encoder_attn_dim=32, encoder_attn_dim_reduced=24, decoder_attn_dim=24,
                   decoder_nneigh=4, decoder_hidden_dim=16, decoder_nblocks=2)
TINY = {
    "airnet": TINY_AIRNET,
    "onet": dict(ONET_DEFAULTS, c_dim=32, encoder_hidden_dim=32, decoder_hidden_dim=32),
    "convonet": dict(CONVONET_DEFAULTS, plane_resolution=16, unet_depth=2, unet_filters=8, c_dim=8,
                     encoder_hidden_dim=8, decoder_hidden_dim=8),
    "convonet_grid": dict(CONVONET_DEFAULTS, feature_type="grid", grid_resolution=8, unet3d_levels=2,
                          unet3d_filters=8, c_dim=8, encoder_hidden_dim=8, decoder_hidden_dim=8),
    "ifnet": dict(IFNET_DEFAULTS, resolution=16, hidden_dim=32),
}


pytestmark = pytest.mark.usefixtures("single_thread")


def build(key, cfg=None, threshold=0.5):
    name = "convonet" if key.startswith("convonet") else key
    return MODELS.build({"name": name, **(cfg or TINY[key]), "threshold": threshold})


def cloud(b, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, n, 3, generator=g) - 0.5


@pytest.mark.parametrize("key", list(TINY))
def test_output_shape_and_gradients(key):
    torch.manual_seed(0)
    model = build(key)
    logits = model(cloud(2, 64), cloud(2, 50, seed=1))
    assert logits.shape == (2, 50)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)   # every parameter is used
    assert any(bool(g.abs().sum() > 0) for g in grads)


# ---- parameter counts, derived layer by layer from the AIR-Net description ----

def _mlp2(i, d):            # Linear(i,d) ReLU Linear(d,d)
    return i * d + d + d * d + d


def airnet_encoder_count(npoints, d, r, nfinal):
    bn = lambda c: 2 * c                                      # noqa: E731
    ptb_pos = _mlp2(3, r) + _mlp2(r, r) + bn(r)               # no q/k/v weights (unused in the original)
    ptb = lambda c: _mlp2(3, c) + _mlp2(c, c) + 3 * c * c + bn(c)                                   # noqa: E731
    sa = lambda c: _mlp2(3, c) + 2 * _mlp2(c, c) + 6 * c * c + 2 * (c * c + c) + bn(c) + 3 * bn(c)  # noqa: E731
    emlp = lambda c: 2 * (c * c + c) + 3 * bn(c)                                                      # noqa: E731
    total = ptb_pos
    for i in range(len(npoints) - 1):
        c = r if i == 0 else d
        total += sa(c) + emlp(c) + ptb(c) + emlp(d)
    total += (r * d + d) if r != d else 0
    total += nfinal * (ptb(d) + emlp(d)) + _mlp2(d, d)
    return total


def airnet_decoder_count(d_in, a, h, n):
    cross = _mlp2(3, a) + _mlp2(a, a) + 5 * d_in * a
    return cross + (a * h + h) + n * (a * h + h) + n * 2 * (h * h + h) + h + 1


@pytest.mark.parametrize("cfg", [
    AIRNET_DEFAULTS,                                                                         # airnet300
    dict(AIRNET_DEFAULTS, npoints_per_layer=[3000, 500, 100], encoder_nneigh_reduced=10,
         encoder_attn_dim_reduced=120),                                                      # airnet3000
])
def test_airnet_full_size_parameter_count(cfg):
    model = build("airnet", cfg)
    d, r = cfg["encoder_attn_dim"], cfg["encoder_attn_dim_reduced"]
    enc = airnet_encoder_count(cfg["npoints_per_layer"], d, r, cfg["nfinal_trans"])
    dec = airnet_decoder_count(d, cfg["decoder_attn_dim"], cfg["decoder_hidden_dim"], cfg["decoder_nblocks"])
    assert count_parameters(model.encoder) == enc
    assert count_parameters(model.decoder) == dec
    # the original also allocates (unused) q/k/v weights in its first, position-only block
    print(f"encoder {enc} (+{3 * r * r} unused in the original = {enc + 3 * r * r}), decoder {dec}")


def test_airnet_decoder_nblocks_is_honoured():
    a = build("airnet", dict(TINY_AIRNET, decoder_nblocks=2))
    b = build("airnet", dict(TINY_AIRNET, decoder_nblocks=4))
    h, att = TINY_AIRNET["decoder_hidden_dim"], TINY_AIRNET["decoder_attn_dim"]
    assert count_parameters(b.decoder) - count_parameters(a.decoder) == 2 * ((att * h + h) + 2 * (h * h + h))


def test_ifnet_full_size_parameter_count():
    model = build("ifnet", IFNET_DEFAULTS)
    conv = lambda i, o: i * o * 27 + o                        # noqa: E731
    ch = [16, 32, 64, 128, 128]
    enc = conv(1, 16) + 2 * 16 + sum(conv(i, o) + conv(o, o) + 2 * o for i, o in zip(ch[:-1], ch[1:]))
    feat = (1 + sum(ch)) * 7
    assert feat == 2583
    dec = feat * 256 + 256 + 2 * (256 * 256 + 256) + 256 + 1
    assert count_parameters(model.encoder) == enc
    assert count_parameters(model.decoder) == dec


def test_full_size_baselines_build():
    for name, cfg in [("onet", ONET_DEFAULTS), ("convonet", CONVONET_DEFAULTS)]:
        model = build(name, cfg)
        assert count_parameters(model) > 0


# ---- invariances of the AIR-Net encoder ----

def _eval_airnet():
    torch.manual_seed(0)
    return build("airnet").double().eval()


def test_airnet_global_code_permutation_invariant():
    model = _eval_airnet()
    x = cloud(1, 64).double()
    perm = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(63)])  # FPS starts at index 0
    with torch.no_grad():
        a, b = model.encode(x), model.encode(x[:, perm])
    assert torch.allclose(a["z"], b["z"], atol=1e-10)
    assert torch.allclose(a["anchors"], b["anchors"])


def test_airnet_translation_equivariant():
    model = _eval_airnet()
    x, q = cloud(2, 64).double(), cloud(2, 30, seed=3).double()
    t = torch.tensor([0.1, -0.05, 0.2], dtype=torch.float64)
    with torch.no_grad():
        a, b = model.encode(x), model.encode(x + t)
        assert torch.allclose(a["z"], b["z"], atol=1e-9)
        assert torch.allclose(a["anchors"] + t, b["anchors"], atol=1e-12)
        assert torch.allclose(model.decode(q, a), model.decode(q + t, b), atol=1e-9)


def test_airnet_anchors_are_farthest_point_samples():
    from modules.geometry.sample_farthest_points import sample_farthest_points
    model = _eval_airnet()
    x = cloud(1, 64).double()
    with torch.no_grad():
        anchors = model.encode(x)["anchors"]
    level1 = sample_farthest_points(x, K=32)[0]
    expected = sample_farthest_points(level1, K=16)[0]
    assert torch.equal(anchors, expected)


# ---- baselines' building blocks against naive references ----

def test_ifnet_voxelisation_and_sampling():
    from modules.models.ifnet import voxelize_nearest
    pts = torch.tensor([[[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5], [-0.5, 0.0, 0.5]]])
    grid = voxelize_nearest(pts, 5)
    assert grid.sum() == 3 and grid[0, 0, 0, 0] == 1 and grid[0, 4, 4, 4] == 1 and grid[0, 0, 2, 4] == 1
    # the decoder's first 7*1 features are the input grid sampled at q and q +- displacement
    model = build("ifnet", dict(IFNET_DEFAULTS, resolution=5, hidden_dim=8, displacement=0.5)).eval()
    features = [grid[:, None]]
    q = torch.tensor([[[-0.5, 0.0, 0.5]]])
    captured = {}
    model.decoder.fc_0.register_forward_hook(lambda m, i, o: captured.update(x=i[0]))
    model.decoder(q, features + [torch.zeros(1, c, 5, 5, 5) for c in (16, 32, 64, 128, 128)])
    x = captured["x"][0, :7, 0]
    # offsets (in grid_sample's [-1,1] units, as the original; 0.5 = one cell here) in the order
    # 0, -x, +x, -y, +y, -z, +z; q sits on the x=-0.5 and z=0.5 faces, so -x and +z clamp to the border
    assert x.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_convonet_scatter_matches_naive():
    from modules.models.convonet import scatter_cells
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 50, 4, generator=g)
    index = torch.randint(0, 6, (2, 50), generator=g)
    mx, mean = scatter_cells(feats, index, 8, "amax"), scatter_cells(feats, index, 8, "mean")
    for b in range(2):
        for c in range(8):
            sel = feats[b, index[b] == c]
            exp_max = sel.max(0).values if len(sel) else torch.zeros(4)
            exp_mean = sel.mean(0) if len(sel) else torch.zeros(4)
            assert torch.allclose(mx[b, :, c], exp_max) and torch.allclose(mean[b, :, c], exp_mean, atol=1e-6)


def test_occupancy_iou():
    pred = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    gt = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert torch.allclose(occupancy_iou(pred, gt), torch.tensor([1 / 3, 1.0]))


def test_thresholds_follow_the_originals():
    from modules.registry import MODELS as M
    assert M.defaults("airnet")["threshold"] == 0.5 and M.defaults("ifnet")["threshold"] == 0.5
    assert M.defaults("onet")["threshold"] == 0.2 and M.defaults("convonet")["threshold"] == 0.2
    model = build("onet", threshold=0.2)
    assert abs(model.logit_threshold - np.log(0.25)) < 1e-12


# ---- bad input ----

def test_too_few_points_is_a_clear_error():
    model = build("airnet")
    with pytest.raises(ShapeLabError, match="samples 32"):
        model.encode(cloud(1, 20))


@pytest.mark.parametrize("key", ["airnet", "onet", "convonet", "ifnet"])
def test_nan_points_are_a_clear_error(key):
    model = build(key)
    x = cloud(2, 64)
    x[1, 5, 0] = float("nan")
    with pytest.raises(ShapeLabError, match="NaN"):
        model.encode(x)


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ShapeLabError, match=r"\(B, N, 3\)"):
        build("onet").encode(torch.zeros(2, 64, 2))


@pytest.mark.parametrize("name", ["airnet300", "airnet3000", "airnet300_lessMemory", "onet", "convonet",
                                  "convonet_grid", "ifnet", "quickstart_airnet300"])
def test_configs_load_and_build(name):
    from modules.config import load_config
    cfg = load_config(f"configs/occupancy/{name}.yaml")
    model = MODELS.build(cfg["model"])
    assert model.threshold == (0.2 if cfg["model"]["name"] in ("onet", "convonet") else 0.5)
    if cfg["model"]["name"] == "airnet":
        assert cfg["model"]["npoints_per_layer"][0] == cfg["data"]["pc_samples"]
