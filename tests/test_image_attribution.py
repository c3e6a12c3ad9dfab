"""Image attribution on single-view models (modules/attribution/images.py): every method gives a map of the
input's spatial size; Grad-CAM++ equals its closed form written with loops on a tiny case; Grad-CAM matches its
definition; HiResCAM equals Grad-CAM at layer4 (the gradient of a global average pool is spatially constant) and
differs from it at layer3; IG's maps sum to S(x) - S(black); the model-parameter randomisation check changes the
maps."""
import numpy as np
import pytest
import torch

from modules.attribution import images as A
from modules.models.svr import PointDecoder, SingleViewModel, VoxelDecoder

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def point_model():
    torch.manual_seed(0)
    return SingleViewModel("point", PointDecoder(n_points=32, hidden=[16])).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return {"image": torch.rand(2, 3, 48, 40, generator=g),
            "pointcloud": torch.rand(2, 50, 3, generator=g) - 0.5}


@pytest.mark.parametrize("method", A.METHODS)
def test_every_map_has_the_input_spatial_size(point_model, batch, method):
    target = A.loss_target("point", batch)
    result = A.attribute(method, point_model, batch["image"], target, n_steps=4)
    assert result.map.shape == (2, 48, 40)
    assert torch.isfinite(result.map).all()
    assert float(result.map.abs().sum()) > 0


def gradcam_pp_loops(act, grad):
    """Chattopadhay et al. eq. 19 with the exponential score, element by element."""
    B, C, h, w = act.shape
    cam = np.zeros((B, h, w))
    for b in range(B):
        for k in range(C):
            s = act[b, k].sum()
            wk = 0.0
            for i in range(h):
                for j in range(w):
                    g = grad[b, k, i, j]
                    den = 2 * g ** 2 + s * g ** 3
                    alpha = g ** 2 / den if g != 0 and den != 0 else 0.0
                    wk += alpha * max(g, 0.0)
            cam[b] += wk * act[b, k]
    return np.maximum(cam, 0)


def test_gradcam_pp_matches_its_formula_on_a_tiny_case():
    g = torch.Generator().manual_seed(3)
    act = torch.rand(2, 3, 2, 3, generator=g, dtype=torch.float64)
    grad = torch.randn(2, 3, 2, 3, generator=g, dtype=torch.float64)
    grad[0, 1, 0, 0] = 0.0
    got = A.gradcam_pp_from(act, grad)[:, 0].numpy()
    np.testing.assert_allclose(got, gradcam_pp_loops(act.numpy(), grad.numpy()), rtol=1e-12, atol=1e-12)


def test_gradcam_pp_of_a_model_uses_the_layer_activation_and_gradient(point_model, batch):
    target = A.loss_target("point", batch)
    x = batch["image"]
    with A.attribution_mode(point_model), point_model.encoder.feature_map("layer3") as fm:
        score = target(point_model(x))
        grad = torch.autograd.grad(score.sum(), fm.activation)[0]
        expected = A.gradcam_pp_from(fm.activation.detach(), grad)
    got = A.gradcam_pp(point_model, x, target, layer="layer3")
    torch.testing.assert_close(got.raw, expected)
    assert got.map.shape == (2, 48, 40)
    # and Grad-CAM by its definition: ReLU(sum_k mean_ij(g) A)
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * fm.activation.detach()).sum(1, keepdim=True))
    torch.testing.assert_close(A.gradcam(point_model, x, target, layer="layer3").raw, cam, rtol=1e-4, atol=1e-6)


def test_hirescam_equals_gradcam_after_global_pooling_and_not_before(point_model, batch):
    target = A.loss_target("point", batch)
    for layer, same in (("layer4", True), ("layer3", False)):
        a = A.gradcam(point_model, batch["image"], target, layer=layer).raw
        b = A.hirescam(point_model, batch["image"], target, layer=layer).raw
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6) == same, layer


def test_integrated_gradients_complete(batch):
    torch.manual_seed(0)
    model = SingleViewModel("vox", VoxelDecoder(resolution=8, channels=8)).eval()
    target = A.occupancy_target("vox", region=((-0.5, -0.5, -0.5), (0.0, 0.5, 0.5)))
    result, delta = A.integrated_gradients(model, batch["image"][:1], target, n_steps=64, return_delta=True)
    with torch.no_grad():
        gap = target(model(batch["image"][:1])) - target(model(torch.zeros_like(batch["image"][:1])))
    assert float(result.map.sum()) == pytest.approx(float(gap), rel=0.05, abs=1e-3)
    assert float(delta.abs().max()) < 0.05 * max(abs(float(gap)), 1e-3)


def test_region_target_counts_only_the_cells_inside():
    mask = A.region_mask(4, ((0.0, -0.5, -0.5), (0.5, 0.5, 0.5)))
    assert mask.sum() == 32 and mask[2:].all() and not mask[:2].any()
    logits = torch.zeros(1, 4, 4, 4)
    assert float(A.occupancy_target("vox", ((0.0, -0.5, -0.5), (0.5, 0.5, 0.5)))(logits)) == pytest.approx(16.0)


def test_model_parameter_randomisation_changes_the_maps(point_model, batch):
    target = A.loss_target("point", batch)
    rnd = A.randomize_encoder(point_model, seed=1)
    for (n1, p1), (n2, p2) in zip(point_model.named_parameters(), rnd.named_parameters()):
        if n1.startswith("decoder."):
            assert torch.equal(p1, p2), n1                      # the decoder keeps its weights
        elif p1.ndim > 1:
            assert not torch.equal(p1, p2), n1                  # every encoder filter is drawn again
    check = A.randomization_check("gradcam++", point_model, batch["image"], target, layer="layer3")
    trained, randomised = check["maps"]
    assert not torch.allclose(trained, randomised)
    assert check["mean"] < 0.9


def test_attribution_script_dispatches_image_models(tmp_path, capsys):
    """attribution.py --type ... is the single-view family's attribution (the seed's spelling)."""
    import attribution
    with pytest.raises(SystemExit) as exit_:
        attribution.main(["--type", "vox", "--checkpoint_path", str(tmp_path / "missing.pt"), "--visualizer",
                          "gradcam++", "--max_iter", "1", "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.pt" in err[0]
    assert not (tmp_path / "out").exists()
