"""modules.models.image_encoders: torchvision names and weight files, RGBA conv1, frozen BN, heads,
feature-map hooks and captum GradCAM. All inputs are 64x64 so each test runs in well under a second."""
import pytest
import torch
import torchvision
from captum.attr import LayerGradCam
from torch import nn

from modules.models.image_encoders import (IMAGENET_MEAN, IMAGENET_STD, ImageEncoder, ImageNetNormalize,
                                           torchvision_weight_files)
from modules.models.layers import count_parameters
from modules.utils import ShapeLabError


def _randomise_bn(model, seed=0):
    """Non-trivial BN statistics/affine values, so that loading or freezing them wrongly shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model


@pytest.fixture(scope="module")
def tv18_file(tmp_path_factory):
    """A torchvision resnet18 state dict on disk (random weights, randomised BN) and the model itself."""
    torch.manual_seed(0)
    model = _randomise_bn(torchvision.models.resnet18(weights=None)).eval()
    path = tmp_path_factory.mktemp("w") / "resnet18-f37072fd.pth"
    torch.save(model.state_dict(), path)
    return path, model


def _images(b=2, c=3, seed=1):
    return torch.rand(b, c, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_state_dict_names_are_torchvisions():
    tv_keys = set(torchvision.models.resnet18(weights=None).state_dict())
    enc = ImageEncoder("resnet18")
    assert set(enc.backbone.state_dict()) == {k for k in tv_keys if not k.startswith("fc.")}
    assert set(enc.state_dict()) == {"backbone." + k for k in tv_keys if not k.startswith("fc.")}
    head_keys = {k for k in ImageEncoder("resnet18", head=[512, 256]).state_dict() if ".fc." in k}
    assert head_keys == {"backbone.fc.0.weight", "backbone.fc.0.bias", "backbone.fc.2.weight", "backbone.fc.2.bias"}


def test_imagenet_normalize_matches_formula_and_passes_alpha():
    x = _images(c=4)
    out = ImageNetNormalize()(x)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(out[:, :3], (x[:, :3] - mean) / std)
    assert torch.equal(out[:, 3], x[:, 3])
    u8 = (x[:, :3] * 255).round().to(torch.uint8)
    torch.testing.assert_close(ImageNetNormalize()(u8), (u8.float() / 255 - mean) / std)
    with pytest.raises(ShapeLabError, match=r"\(B,3\|4,H,W\)"):
        ImageNetNormalize()(torch.rand(2, 2, 8, 8))


def test_weight_file_loads_and_matches_torchvision(tv18_file):
    path, tv = tv18_file
    ref = torchvision.models.resnet18(weights=None)
    ref.load_state_dict(tv.state_dict())
    ref.fc = nn.Identity()
    ref.eval()
    x = _images()
    enc = ImageEncoder("resnet18", normalize=False, weights=path).eval()
    assert enc.out_dim == 512 and enc.weights_path == str(path)
    with torch.no_grad():
        out, expected = enc(x), ref(x)
    assert out.shape == (2, 512)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    # normalize=True is the same network behind ImageNet normalisation
    enc_n = ImageEncoder("resnet18", normalize=True, weights=path).eval()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(enc_n(x), ref((x - mean) / std), rtol=0, atol=1e-6)
    # a random-init encoder differs (the comparison above can fail)
    with torch.no_grad():
        assert not torch.allclose(ImageEncoder("resnet18", normalize=False).eval()(x), expected, atol=1e-3)


def test_own_state_dict_and_imagenet_cache_load(tmp_path, tv18_file, monkeypatch):
    _, tv = tv18_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ShapeLabError) as err:
        ImageEncoder("resnet18", weights="imagenet")
    assert "resnet18-f37072fd.pth" in str(err.value) and str(tmp_path / "torch") in str(err.value)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(tv.state_dict(), cached)
    enc = ImageEncoder("resnet18", weights="imagenet")
    assert torch.equal(enc.backbone.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    # an ImageEncoder's own state dict ("backbone." prefix, head keys) loads as weights too
    own = tmp_path / "own.pt"
    torch.save(ImageEncoder("resnet18", head=[512, 256], weights=cached).state_dict(), own)
    enc2 = ImageEncoder("resnet18", weights=own)
    assert torch.equal(enc2.backbone.bn1.running_var, tv.bn1.running_var)


def test_missing_and_corrupt_weight_files(tmp_path):
    missing = tmp_path / "nowhere" / "r18.pth"
    with pytest.raises(ShapeLabError) as err:
        ImageEncoder("resnet18", weights=missing)
    msg = str(err.value)
    assert str(missing) in msg and "resnet18-f37072fd.pth" in msg and "\n" not in msg
    with pytest.raises(ShapeLabError, match="resnet50-0676ba61.pth"):
        ImageEncoder("resnet50", weights=missing)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ShapeLabError, match="bad.pth: cannot read"):
        ImageEncoder("resnet18", weights=bad)
    other = tmp_path / "dict.pth"
    torch.save({"foo": torch.zeros(3)}, other)
    with pytest.raises(ShapeLabError, match="not a torchvision ResNet"):
        ImageEncoder("resnet18", weights=other)


def test_weights_for_another_architecture(tmp_path):
    p34 = tmp_path / "resnet34-b627a593.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), p34)
    with pytest.raises(ShapeLabError) as err:
        ImageEncoder("resnet18", weights=p34)
    msg = str(err.value)
    assert "\n" not in msg and "expected torchvision resnet18" in msg and "looks like resnet34" in msg
    p18 = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), p18)
    with pytest.raises(ShapeLabError, match="looks like resnet18"):
        ImageEncoder("resnet34", weights=p18)
    # same keys, other shapes (a 4-channel conv1 into an RGB encoder)
    p4 = tmp_path / "rgba.pt"
    torch.save(ImageEncoder("resnet18", in_channels=4).state_dict(), p4)
    with pytest.raises(ShapeLabError, match=r"conv1.weight has shape \(64, 4, 7, 7\)"):
        ImageEncoder("resnet18", weights=p4)


def test_rgba_conv1_keeps_rgb_filters(tv18_file):
    path, tv = tv18_file
    enc = ImageEncoder("resnet18", in_channels=4, normalize=False, weights=path).eval()
    w = enc.backbone.conv1.weight
    assert w.shape == (64, 4, 7, 7)
    assert torch.equal(w[:, :3], tv.conv1.weight)
    torch.testing.assert_close(w[:, 3], tv.conv1.weight.mean(dim=1))
    # with alpha = 0 the RGBA encoder is the RGB network
    x = _images()
    ref = torchvision.models.resnet18(weights=None)
    ref.load_state_dict(tv.state_dict())
    ref.fc = nn.Identity()
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(enc(torch.cat([x, torch.zeros(2, 1, 64, 64)], 1)), ref(x), rtol=0, atol=1e-6)
        assert not torch.allclose(enc(torch.cat([x, torch.ones(2, 1, 64, 64)], 1)), ref(x), atol=1e-3)
    # random-init RGBA encoder, with normalisation of RGB only
    enc_r = ImageEncoder("resnet18", in_channels=4)
    assert enc_r(_images(c=4)).shape == (2, 512)
    with pytest.raises(ShapeLabError, match=r"\(B,4,H,W\)"):
        enc_r(_images(c=3))


def test_frozen_bn(tv18_file):
    path, _ = tv18_file
    plain = ImageEncoder("resnet18", weights=path).eval()
    frozen = ImageEncoder("resnet18", weights=path, frozen_bn=True)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
    assert sum(isinstance(m, torchvision.ops.FrozenBatchNorm2d) for m in frozen.modules()) == 20
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable and not any(".bn" in n or "downsample.1" in n for n in trainable)
    bn_params = sum(m.weight.numel() * 2 for m in plain.modules() if isinstance(m, nn.BatchNorm2d))
    assert count_parameters(frozen) == count_parameters(plain) - bn_params
    x = _images()
    with torch.no_grad():
        out_train = frozen.train()(x)
        out_eval = frozen.eval()(x)
        torch.testing.assert_close(out_train, out_eval, rtol=0, atol=0)
        torch.testing.assert_close(out_eval, plain(x), rtol=0, atol=1e-5)
        # an unfrozen encoder in train mode uses batch statistics: different output
        assert not torch.allclose(plain.train()(x), out_eval, atol=1e-3)


def test_neural_parts_head_and_parameter_counts():
    enc = ImageEncoder("resnet18", head=[512, 256], frozen_bn=True)
    fc = enc.backbone.fc
    assert [type(m) for m in fc] == [nn.Linear, nn.ReLU, nn.Linear]
    assert enc.out_dim == 256 and enc(_images()).shape == (2, 256)
    head_params = (512 * 512 + 512) + (512 * 256 + 256)
    trunk = ImageEncoder("resnet18")
    n_trunk = count_parameters(trunk)
    # torchvision's published count for resnet18 (with its 1000-class fc)
    tv_total = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["num_params"]
    assert n_trunk + 512 * 1000 + 1000 == tv_total == 11_689_512
    assert count_parameters(ImageEncoder("resnet18", head=[512, 256])) == n_trunk + head_params
    print(f"\nresnet18 encoder (no fc): {n_trunk:,}; with torchvision fc: {tv_total:,}; "
          f"Neural Parts head variant: {n_trunk + head_params:,}")


@pytest.mark.parametrize("arch,dim", [("resnet34", 512), ("resnet50", 2048)])
def test_bigger_archs(arch, dim):
    enc = ImageEncoder(arch)
    assert enc.out_dim == dim and enc(_images(b=1)).shape == (1, dim)
    meta = torchvision.models.get_model_weights(arch).IMAGENET1K_V1.meta["num_params"]
    assert count_parameters(enc) + dim * 1000 + 1000 == meta
    assert torchvision_weight_files(arch)[0] in {"resnet34-b627a593.pth", "resnet50-0676ba61.pth"}
    print(f"\n{arch} encoder (no fc): {count_parameters(enc):,}")


def test_feature_map_without_avgpool():
    enc = ImageEncoder("resnet18", keep_avgpool=False).eval()
    pooled = ImageEncoder("resnet18").eval()
    pooled.load_state_dict(enc.state_dict())
    x = _images()
    with torch.no_grad():
        fmap = enc(x)
        assert fmap.shape == (2, 512, 2, 2) and enc.out_dim == 512
        torch.testing.assert_close(fmap.mean(dim=(2, 3)), pooled(x))
    with pytest.raises(ShapeLabError, match="keep_avgpool"):
        ImageEncoder("resnet18", head=[256], keep_avgpool=False)


def test_bad_options():
    with pytest.raises(ShapeLabError, match="resnet18, resnet34, resnet50"):
        ImageEncoder("vgg16")
    with pytest.raises(ShapeLabError, match="in_channels=1"):
        ImageEncoder(in_channels=1)
    with pytest.raises(ShapeLabError, match="head"):
        ImageEncoder(head=[])
    with pytest.raises(ShapeLabError, match="did you mean backbone.layer4"):
        ImageEncoder().layer("layr4")


def test_feature_map_hook_activation_and_gradient():
    torch.manual_seed(0)
    enc = ImageEncoder("resnet18", head=[512, 256]).eval()
    x = _images()
    with enc.feature_map("backbone.layer4") as fm:
        out = enc(x)
        out.sum().backward(retain_graph=True)
    assert fm.activation.shape == (2, 512, 2, 2)
    # the recorded activation is the real layer4 output
    b = enc.backbone
    with torch.no_grad():
        h = b.maxpool(b.relu(b.bn1(b.conv1(enc.normalize(x)))))
        torch.testing.assert_close(fm.activation.detach(), b.layer4(b.layer3(b.layer2(b.layer1(h)))))
    (expected,) = torch.autograd.grad(out.sum(), fm.activation)
    assert fm.gradient is not None and fm.gradient.abs().sum() > 0
    torch.testing.assert_close(fm.gradient, expected)
    # hooks are gone after the block
    fm.activation = None
    enc(x)
    assert fm.activation is None
    # a module that runs twice per forward (the ReLU of a BasicBlock): gradient of the last call
    with enc.feature_map("layer4.1.relu") as fm2:
        out = enc(x)
        (g_ref,) = torch.autograd.grad(out.sum(), fm2.activation, retain_graph=True)
        out.sum().backward()
    torch.testing.assert_close(fm2.gradient, g_ref)


def test_captum_layer_gradcam_matches_feature_map():
    torch.manual_seed(0)
    enc = ImageEncoder("resnet18", head=[512, 256]).eval()
    x = _images()
    cam = LayerGradCam(enc, enc.layer("backbone.layer4")).attribute(x, target=3)
    assert cam.shape == (2, 1, 2, 2)
    # GradCAM by hand from the hook: channel weights = spatial mean of gradients
    with enc.feature_map("layer4") as fm:
        enc(x)[:, 3].sum().backward()
    weights = fm.gradient.mean(dim=(2, 3), keepdim=True)
    manual = (weights * fm.activation).sum(dim=1, keepdim=True)
    torch.testing.assert_close(cam.detach(), manual.detach(), rtol=1e-4, atol=1e-6)
    assert enc.attribution_layers()[3] is enc.layer("layer4")
