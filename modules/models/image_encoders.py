"""Image encoders built from torchvision ResNets, with torchvision's state-dict names.

One class, `ImageEncoder`, covers what the image-conditioned originals use:

- Neural Parts: ResNet-18, ImageNet-normalised input, frozen BatchNorm, `fc` replaced by
  `Linear(512,512)-ReLU-Linear(512,256)`:
  `ImageEncoder("resnet18", head=[512, 256], frozen_bn=True)`.
- 16-889 single-view 3D: ResNet-18 without `fc`, 512-d feature: `ImageEncoder("resnet18")`.
- genren: ResNet-18 on RGBA (4 input channels), not pretrained, 512-d:
  `ImageEncoder("resnet18", in_channels=4, normalize=False)` (genren adds BatchNorm1d+ReLU itself).

The backbone is `torchvision.models.<arch>(weights=None)`, so `encoder.backbone.state_dict()` has
exactly torchvision's names (`conv1.weight`, `layer4.1.bn2.running_var`, ...) and a published
torchvision weight file placed on disk loads with `torch.load(weights_only=True)`. Nothing is
downloaded at run time: the default is random initialisation, and asking for weights that are not
on disk is a one-line `ShapeLabError` naming the file to put there.

Feature maps and their gradients of any named layer are available through
`encoder.feature_map("backbone.layer4")` (GradCAM-family maps), and `encoder.layer(name)` returns
the module itself for captum's layer attributions (`LayerGradCam(forward, encoder.layer(...))`).
"""
import difflib
import os

import torch
import torchvision
from torch import nn
from torchvision.ops import FrozenBatchNorm2d
from torchvision.transforms.v2 import functional as TF

from modules.utils import ShapeLabError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ARCHS = ("resnet18", "resnet34", "resnet50")
# Block counts per stage and block type identify a torchvision ResNet from its state-dict keys.
_RESNET_LAYOUTS = {(False, 2, 2, 2, 2): "resnet18", (False, 3, 4, 6, 3): "resnet34",
                   (True, 3, 4, 6, 3): "resnet50", (True, 3, 4, 23, 3): "resnet101",
                   (True, 3, 8, 36, 3): "resnet152"}
_WEIGHTS_URL = "https://download.pytorch.org/models/"


class ImageNetNormalize(nn.Module):
    """(B,3|4,H,W) images in [0,1] (float, or uint8 in [0,255]) -> ImageNet-normalised RGB.

    RGB becomes (x - IMAGENET_MEAN) / IMAGENET_STD per channel (torchvision's `normalize`);
    a 4th (alpha) channel passes through unchanged. Differentiable w.r.t. the input.
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def forward(self, images):
        if images.ndim != 4 or images.shape[1] not in (3, 4):
            raise ShapeLabError(f"ImageNetNormalize: expected images (B,3|4,H,W), got {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            images = TF.to_dtype(images, torch.float32, scale=True)
        rgb = TF.normalize(images[:, :3], self.mean, self.std)
        if images.shape[1] == 4:
            return torch.cat([rgb, images[:, 3:]], dim=1)
        return rgb

    def extra_repr(self):
        return f"mean={self.mean}, std={self.std}"


class FeatureMap:
    """Activation and gradient of one layer, recorded by hooks; a context manager.

        with encoder.feature_map("backbone.layer4") as fm:
            score = encoder(images)[:, k].sum()
            score.backward()            # or torch.autograd.grad(score, images)
        fm.activation   # (B,C,h,w) output of the layer on the last forward (part of the graph)
        fm.gradient     # (B,C,h,w) d(backpropagated quantity)/d(activation), None until a backward

    If the module runs several times in one forward (a ReLU module reused inside a ResNet block),
    the last call is recorded. Hooks are removed on exit (or by `remove()`).
    """

    def __init__(self, module, name):
        self.module, self.name = module, name
        self.activation = None
        self.gradient = None
        self._calls = 0
        self._handle = module.register_forward_hook(self._on_forward)

    def _on_forward(self, module, inputs, output):
        if not torch.is_tensor(output):
            raise ShapeLabError(f"feature_map {self.name!r}: the layer returns {type(output).__name__}, "
                                "expected a tensor")
        self._calls += 1
        self.activation, self.gradient = output, None
        if output.requires_grad:
            call = self._calls
            output.register_hook(lambda grad: self._on_backward(grad, call))

    def _on_backward(self, grad, call):
        if call == self._calls:  # ignore gradients of earlier calls of a reused module
            self.gradient = grad

    def remove(self):
        self._handle.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def freeze_batchnorm(module):
    """Replace every nn.BatchNorm2d inside `module` by torchvision's FrozenBatchNorm2d, in place.

    The frozen layer copies weight, bias, running mean/var and eps, so an eval-mode forward is
    unchanged; afterwards BatchNorm has no trainable parameters and train()/eval() give the same
    output (Neural Parts' `freeze_bn`). Returns `module`.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            with torch.no_grad():
                if child.affine:
                    frozen.weight.copy_(child.weight)
                    frozen.bias.copy_(child.bias)
                if child.track_running_stats:
                    frozen.running_mean.copy_(child.running_mean)
                    frozen.running_var.copy_(child.running_var)
            ref = child.weight if child.affine else child.running_mean
            if ref is not None:
                frozen.to(device=ref.device, dtype=ref.dtype)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def torchvision_weight_files(arch):
    """File names of torchvision's published ImageNet weights for `arch`, e.g. ['resnet18-f37072fd.pth'].

    Reads torchvision's weight enum only (no download)."""
    enum = torchvision.models.get_model_weights(arch)
    return [w.url.rsplit("/", 1)[-1] for w in enum]


def default_weights_path(arch):
    """Where torchvision itself caches `arch`'s IMAGENET1K_V1 file: <torch hub dir>/checkpoints/<file>."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", torchvision_weight_files(arch)[0])


def _guess_resnet(keys):
    """Name of the torchvision ResNet whose state-dict has these keys, or a short description."""
    if "conv1.weight" not in keys:
        return "not a torchvision ResNet"
    blocks = []
    for stage in range(1, 5):
        ids = {k.split(".")[1] for k in keys if k.startswith(f"layer{stage}.")}
        blocks.append(len(ids))
    layout = ("layer1.0.conv3.weight" in keys, *blocks)
    return _RESNET_LAYOUTS.get(layout, f"a ResNet with blocks {blocks}")


def _read_state_dict(path):
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and EOF errors all mean the same thing to the user
        msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ShapeLabError(f"encoder weights {path}: cannot read as a torch weight file "
                            f"({type(err).__name__}: {msg[:120]})") from None
    for key in ("state_dict", "model"):  # checkpoints that wrap the state dict
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not sd or not all(torch.is_tensor(v) for v in sd.values()):
        raise ShapeLabError(f"encoder weights {path}: expected a state dict of tensors "
                            f"(a torchvision .pth file), got {type(sd).__name__}")
    for prefix in ("module.", "backbone."):  # DDP wrappers, and our own ImageEncoder.state_dict()
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def _skip(key):
    # fc is always replaced here; num_batches_tracked is absent from older torchvision files
    return key.startswith("fc.") or key.endswith("num_batches_tracked")


class ImageEncoder(nn.Module):
    """ResNet image encoder: (B, in_channels, H, W) images -> (B, out_dim) features (or a feature map).

    Args:
        arch: "resnet18" | "resnet34" | "resnet50", built by `torchvision.models.<arch>(weights=None)`.
        in_channels: 3 (RGB) or 4 (RGBA, genren). With 4, conv1 takes 4 channels; when 3-channel
            weights are loaded, the RGB filters are copied and the alpha filter is initialised as
            the mean of the three RGB filters (so a constant alpha acts like an extra brightness).
        head: None -> `fc` removed, out_dim = 512 (resnet18/34) or 2048 (resnet50). A list of widths,
            e.g. [512, 256] -> `fc` = Linear(feat,512)-ReLU-Linear(512,256) (Neural Parts), stored
            at `backbone.fc` as in the original, out_dim = last width.
        keep_avgpool: False -> forward returns the (B, C, H/32, W/32) output of layer4 (needs head=None).
        frozen_bn: replace every BatchNorm2d by torchvision.ops.FrozenBatchNorm2d (stats copied).
        normalize: apply ImageNetNormalize first; inputs are then images in [0,1].
        weights: None (random init, the default), a path to a torchvision weight file such as
            resnet18-f37072fd.pth (loaded with weights_only=True; fc keys ignored), or "imagenet"
            for that file in torchvision's cache, <torch hub dir>/checkpoints/. Never downloads.

    Attributes: `backbone` (the torchvision ResNet), `normalize` (module or Identity),
    `feature_dim` (channels of layer4), `out_dim`.
    """

    def __init__(self, arch="resnet18", in_channels=3, head=None, keep_avgpool=True, frozen_bn=False,
                 normalize=True, weights=None):
        super().__init__()
        if arch not in ARCHS:
            raise ShapeLabError(f"image encoder arch {arch!r}: expected one of {', '.join(ARCHS)}")
        if in_channels not in (3, 4):
            raise ShapeLabError(f"image encoder in_channels={in_channels}: expected 3 (RGB) or 4 (RGBA)")
        if head is not None:
            head = list(head)
            if not head or not all(isinstance(w, int) and w > 0 for w in head):
                raise ShapeLabError(f"image encoder head={head}: expected None or a non-empty list of "
                                    "positive widths, e.g. [512, 256]")
            if not keep_avgpool:
                raise ShapeLabError("image encoder: a head needs the pooled feature; use keep_avgpool=True "
                                    "or head=None")
        self.arch, self.in_channels, self.keep_avgpool = arch, in_channels, bool(keep_avgpool)

        backbone = getattr(torchvision.models, arch)(weights=None)
        if in_channels != 3:
            old = backbone.conv1
            backbone.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride,
                                       old.padding, bias=False)
            # torchvision's own init for convs
            nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.backbone = backbone
        self.weights_path = None
        if weights is not None:
            self.weights_path = self._load_weights(weights)

        self.feature_dim = backbone.fc.in_features
        if head is None:
            backbone.fc = nn.Identity()
            self.out_dim = self.feature_dim
        else:
            layers, width = [], self.feature_dim
            for i, w in enumerate(head):
                layers.append(nn.Linear(width, w))
                if i < len(head) - 1:
                    layers.append(nn.ReLU(inplace=False))
                width = w
            backbone.fc = nn.Sequential(*layers)
            self.out_dim = width
        if not self.keep_avgpool:
            self.out_dim = self.feature_dim  # channels of the returned map
        if frozen_bn:
            freeze_batchnorm(backbone)
        self.frozen_bn = bool(frozen_bn)
        self.normalize = ImageNetNormalize() if normalize else nn.Identity()

    # ------------------------------------------------------------------ weights

    def _load_weights(self, weights):
        files = torchvision_weight_files(self.arch)
        path = default_weights_path(self.arch) if weights == "imagenet" else os.fspath(weights)
        if not os.path.isfile(path):
            raise ShapeLabError(
                f"encoder weights not found: {path} (model.encoder_weights); put torchvision's ImageNet "
                f"{self.arch} file there ({' or '.join(files)}, from {_WEIGHTS_URL}); nothing is "
                "downloaded at run time")
        sd = _read_state_dict(path)
        want = {k: v for k, v in self.backbone.state_dict().items() if not _skip(k)}
        got = {k: v for k, v in sd.items() if not _skip(k)}
        missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        if missing or unexpected:
            example = (missing or unexpected)[0]
            raise ShapeLabError(
                f"encoder weights {path}: expected torchvision {self.arch} weights (e.g. {files[0]}), "
                f"the file looks like {_guess_resnet(set(sd))} ({len(missing)} keys missing, "
                f"{len(unexpected)} unexpected, e.g. {example!r})")
        conv1 = got["conv1.weight"]
        if conv1.ndim == 4 and conv1.shape[1] == 3 and self.in_channels == 4:
            # RGB filters kept; alpha filter = mean of the RGB filters
            got["conv1.weight"] = torch.cat([conv1, conv1.mean(dim=1, keepdim=True)], dim=1)
        for k, v in got.items():
            if v.shape != want[k].shape:
                raise ShapeLabError(
                    f"encoder weights {path}: {k} has shape {tuple(v.shape)}, expected {tuple(want[k].shape)} "
                    f"for torchvision {self.arch} with in_channels={self.in_channels}")
        self.backbone.load_state_dict(got, strict=False)
        return path

    # ------------------------------------------------------------------ forward

    def forward(self, images):
        """(B, in_channels, H, W) -> (B, out_dim), or (B, feature_dim, H/32, W/32) without avgpool."""
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ShapeLabError(f"ImageEncoder: expected images (B,{self.in_channels},H,W), "
                                f"got {tuple(images.shape)}")
        b = self.backbone
        x = self.normalize(images)
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        if not self.keep_avgpool:
            return x
        return b.fc(torch.flatten(b.avgpool(x), 1))

    # ------------------------------------------------------------------ layers

    def layer_names(self):
        return [name for name, _ in self.named_modules() if name]

    def layer(self, name):
        """Module called `name` ("backbone.layer4", or "layer4" for short), e.g. for captum's LayerGradCam."""
        for candidate in (name, f"backbone.{name}"):
            try:
                return self.get_submodule(candidate)
            except AttributeError:
                continue
        close = difflib.get_close_matches(f"backbone.{name}", self.layer_names(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "e.g. backbone.layer4"
        raise ShapeLabError(f"image encoder has no layer {name!r}; {hint}")

    def attribution_layers(self):
        """The four ResNet stages (layer ids 0..3, coarse maps at 4, 8, 16, 32 pixels per cell)."""
        b = self.backbone
        return [b.layer1, b.layer2, b.layer3, b.layer4]

    def feature_map(self, name):
        """A FeatureMap recording the activation and gradient of layer `name` (see FeatureMap)."""
        return FeatureMap(self.layer(name), name)
