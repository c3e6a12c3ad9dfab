"""Gradient attribution on images for single-view reconstruction models (what the image encoder looks at).

Every method explains one scalar per image, the *target* (a function of the model's output), w.r.t. the input
image or a layer of the image encoder, and returns `ImageAttribution(map, raw)`: `map` (B, H, W) at the INPUT's
spatial size (CAMs are upsampled bilinearly from the layer's h x w grid, as Grad-CAM does), `raw` the tensor it
comes from ((B,1,h,w) CAMs before upsampling, (B,C,H,W) input attributions for GBP / IG).

Inputs are RGB (B,3,H,W) or RGBA (B,4,H,W) (genren's encoder reads the mask as a 4th channel). With RGBA the
maps are over the RGB channels: CAMs are unaffected (they live on an encoder layer); GBP's map is the max of
|attribution| over RGB only; IG starts from a baseline that keeps the input's alpha and sets RGB to black, so
the path never changes the mask, alpha's attribution is exactly 0 and the RGB map alone sums to
S(x) - S(baseline) (the colours inside a fixed silhouette are explained, not the silhouette). `raw` keeps all
4 channels. `black` is the value of a black pixel in the model's input range (0 for [0,1] images, -1 for
genren's [-1,1] RGB). RGB inputs behave exactly as before (baseline: zeros).

Methods (Captum where it has the method; GradCAM++ by its formula, Captum has none):
- `gradcam`   Grad-CAM (Selvaraju et al. 2017): w_k = mean_ij dS/dA^k_ij, map = ReLU(sum_k w_k A^k)
              (captum LayerGradCam).
- `gradcam++` Grad-CAM++ (Chattopadhay et al. 2018), closed form for S -> exp(S):
              alpha^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3) (0 where g = 0), g = dS/dA^k_ij,
              w_k = sum_ij alpha^k_ij ReLU(g), map = ReLU(sum_k w_k A^k)  (`gradcam_pp_from`).
- `hirescam`  HiResCAM (Draelos & Carin 2020): map = ReLU(sum_k g^k (.) A^k), element-wise, no spatial mean
              (captum LayerGradientXActivation summed over channels).
- `gbp`       Guided Backprop (Springenberg et al. 2015) w.r.t. the image (captum GuidedBackprop, ReLUs made
              non-in-place during the call); map = max over RGB of |attribution| (saliency convention).
- `ig`        Integrated Gradients (Sundararajan et al. 2017) from a black image (captum, Gauss-Legendre,
              n_steps); map = sum over RGB (signed; the maps of an image sum to S(x) - S(baseline)).

Targets (`target_fn(output) -> (B,)`, built by `loss_target` / `occupancy_target`):
- `loss`: minus the per-image reconstruction loss against the ground truth (vox BCE, point / parametric
  Chamfer, mesh Chamfer of fixed-seed surface samples, implicit BCE at the queries): the pixels that make the
  reconstruction better.
- `occupancy`: vox: summed occupancy probability over the cells inside `region` (default the whole grid);
  implicit: the same at a fixed grid of query points inside `region`.

Sanity (Adebayo et al. 2018): `randomization_check` recomputes the maps with the encoder's weights
re-initialised and reports the Spearman rank correlation of the two maps per image (near 0: the maps depend on
the learned weights; near 1: they would be an edge detector independent of training). Frozen BatchNorm layers
(Neural Parts) are reset to the identity, as a fresh torchvision BatchNorm.
"""
import contextlib
import copy
import warnings
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modules.attribution.methods import IMAGE_METHODS as METHODS
from modules.attribution.methods import IMAGE_TARGETS as TARGETS  # noqa: F401  (images.TARGETS, for callers)
from modules.attribution.methods import captum_attr
from modules.geometry.chamfer import chamfer_distance
from modules.geometry.meshes import Meshes
from modules.geometry.sample_points_from_meshes import sample_points_from_meshes
from modules.utils import ShapeLabError

ImageAttribution = namedtuple("ImageAttribution", ["map", "raw"])


# ----------------------------------------------------------------------------- targets

def tile(x, n):
    """x (B, ...) repeated to n rows: Integrated Gradients evaluates k path points of the whole batch at once,
    stacked step-major (row s*B + b is image b), so per-image tensors are tiled, not interleaved."""
    if x.shape[0] == n:
        return x
    if n % x.shape[0]:
        raise ShapeLabError(f"attribution: a batch of {n} rows is not a multiple of the {x.shape[0]} images")
    return x.repeat(n // x.shape[0], *([1] * (x.ndim - 1)))


def loss_target(model_type, batch, faces=None, mesh_samples=1000, seed=0):
    """-> fn(output) -> (B,) minus the per-image loss of `model_type` against the batch's ground truth.

    batch: vox "voxels" (B,R,R,R); point / parametric / mesh "pointcloud" (B,N,3); implicit "points.occ" (B,Q)
    (the queries themselves are the model's input). mesh needs `faces`; its surface samples use a fixed seed so
    every call (IG's path points) explains the same function."""
    if model_type == "vox":
        gt = batch["voxels"].float()
        return lambda logits: -F.binary_cross_entropy_with_logits(
            logits, tile(gt, len(logits)).to(logits.device), reduction="none").flatten(1).mean(1)
    if model_type == "implicit":
        occ = batch["points.occ"].float()
        return lambda logits: -F.binary_cross_entropy_with_logits(
            logits, tile(occ, len(logits)).to(logits.device), reduction="none").mean(1)
    gt = batch["pointcloud"].float()
    if model_type in ("point", "parametric"):
        return lambda pts: -chamfer_distance(pts, tile(gt, len(pts)).to(pts.device), batch_reduction=None)[0]
    if model_type == "mesh":
        if faces is None:
            raise ShapeLabError("loss_target: a mesh model needs its faces")

        def mesh_loss(verts):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                pts = sample_points_from_meshes(Meshes(list(verts), [faces] * len(verts)), mesh_samples)
            return -chamfer_distance(pts, tile(gt, len(pts)).to(pts.device), batch_reduction=None)[0]
        return mesh_loss
    raise ShapeLabError(f"loss_target: unknown model type {model_type!r}")


def region_mask(resolution, region=None):
    """bool (R,R,R) of the cells whose centre lies in region ((3,) lo, (3,) hi) of [-0.5,0.5]^3 (None: all)."""
    if region is None:
        return torch.ones((resolution,) * 3, dtype=torch.bool)
    lo, hi = (torch.as_tensor(r, dtype=torch.float32).reshape(3) for r in region)
    axis = -0.5 + (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution
    c = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    mask = ((c >= lo) & (c <= hi)).all(-1)
    if not mask.any():
        raise ShapeLabError(f"region {region}: contains no cell centre of the {resolution}^3 grid")
    return mask


def occupancy_target(model_type, region=None, resolution=32):
    """-> fn(output) -> (B,) summed occupancy probability inside `region` (vox logits (B,R,R,R), or implicit
    logits at the queries of `occupancy_queries`)."""
    if model_type not in ("vox", "implicit"):
        raise ShapeLabError(f"target 'occupancy' applies to vox and implicit models, not {model_type}; use 'loss'")
    if model_type == "vox":
        def vox_occ(logits):
            mask = region_mask(logits.shape[-1], region).to(logits.device)
            return torch.sigmoid(logits)[:, mask].sum(1)
        return vox_occ
    return lambda logits: torch.sigmoid(logits).sum(1)


def occupancy_queries(batch_size, region=None, resolution=32):
    """(B, M, 3) cell centres of a resolution^3 grid inside `region` (the implicit occupancy target's queries)."""
    axis = -0.5 + (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution
    c = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    pts = c[region_mask(resolution, region)]
    return pts[None].expand(batch_size, -1, -1).contiguous()


# ----------------------------------------------------------------------------- plumbing

class _Objective(nn.Module):
    """images (B,3|4,H,W) -> target (B,). A Module so that Captum finds the model's ReLUs through it."""

    def __init__(self, model, target_fn, queries=None, n_points=None, uv_seed=0):
        super().__init__()
        self.model, self.target_fn = model, target_fn
        self.queries, self.n_points, self.uv_seed = queries, n_points, uv_seed

    def forward(self, images):
        kwargs = {}
        if self.queries is not None:
            kwargs["queries"] = tile(self.queries, images.shape[0]).to(images.device)
        if getattr(self.model, "type", None) == "parametric":
            # fixed uv: every forward of one attribution explains the same points
            kwargs["generator"] = torch.Generator(device=images.device).manual_seed(self.uv_seed)
            kwargs["n_points"] = self.n_points
        out = self.model(images, **kwargs)
        value = self.target_fn(out)
        if value.ndim != 1 or value.shape[0] != images.shape[0]:
            raise ShapeLabError(f"attribution target must give one value per image (B,), got {tuple(value.shape)}")
        return value


@contextlib.contextmanager
def attribution_mode(model):
    """Eval mode (BatchNorm running statistics) and non-in-place ReLUs (Captum's hooks need them)."""
    was_training = model.training
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    model.eval()
    for m in relus:
        m.inplace = False
    try:
        yield model
    finally:
        for m in relus:
            m.inplace = True
        model.train(was_training)


def _check_images(images):
    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] not in (3, 4):
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ShapeLabError(f"image attribution: expected images (B, 3, H, W) or RGBA (B, 4, H, W), got {shape}")
    return images.detach().clone().requires_grad_(True)


def black_baseline(images, black=0.0):
    """IG's baseline for images (B,3|4,H,W): RGB = `black` (the value of a black pixel in the model's input
    range), alpha (4th channel) kept from the input."""
    base = torch.full_like(images, float(black))
    if images.shape[1] == 4:
        base[:, 3:] = images[:, 3:]
    return base.detach()


def resolve_layer(model, layer="layer4"):
    """A layer of the image encoder ("layer4", "backbone.layer3", ...) or a module -> module."""
    if isinstance(layer, nn.Module):
        return layer
    return model.encoder.layer(layer)


def _upsample(cam, size):
    return F.interpolate(cam, size=size, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------- methods

def gradcam_pp_from(activation, gradient):
    """Grad-CAM++ map (B,1,h,w) from a layer's activation A and gradient g = dS/dA (both (B,C,h,w)), the closed
    form of Chattopadhay et al. for the exponential of the score (see module docstring)."""
    g2, g3 = gradient ** 2, gradient ** 3
    denom = 2 * g2 + activation.sum(dim=(2, 3), keepdim=True) * g3
    alpha = torch.where(gradient != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)),
                        torch.zeros_like(g2))
    weights = (alpha * F.relu(gradient)).sum(dim=(2, 3), keepdim=True)
    return F.relu((weights * activation).sum(dim=1, keepdim=True))


def gradcam(model, images, target_fn, layer="layer4", **objective_kwargs):
    with attribution_mode(model):
        x = _check_images(images)
        objective = _Objective(model, target_fn, **objective_kwargs)
        cam = captum_attr().LayerGradCam(objective, resolve_layer(model, layer)).attribute(x, relu_attributions=True)
    return ImageAttribution(_upsample(cam, x.shape[2:])[:, 0].detach(), cam.detach())


def gradcam_pp(model, images, target_fn, layer="layer4", **objective_kwargs):
    with attribution_mode(model):
        x = _check_images(images)
        objective = _Objective(model, target_fn, **objective_kwargs)
        with model.encoder.feature_map(layer) as fm:
            score = objective(x)
            grad = torch.autograd.grad(score.sum(), fm.activation)[0]
            cam = gradcam_pp_from(fm.activation.detach(), grad.detach())
    return ImageAttribution(_upsample(cam, x.shape[2:])[:, 0].detach(), cam.detach())


def hirescam(model, images, target_fn, layer="layer4", **objective_kwargs):
    with attribution_mode(model):
        x = _check_images(images)
        objective = _Objective(model, target_fn, **objective_kwargs)
        raw = captum_attr().LayerGradientXActivation(objective, resolve_layer(model, layer)).attribute(x)
        cam = F.relu(raw.sum(dim=1, keepdim=True))
    return ImageAttribution(_upsample(cam, x.shape[2:])[:, 0].detach(), cam.detach())


def guided_backprop(model, images, target_fn, **objective_kwargs):
    with attribution_mode(model):
        x = _check_images(images)
        objective = _Objective(model, target_fn, **objective_kwargs)
        with warnings.catch_warnings():     # Captum announces its temporary ReLU hooks on every call
            warnings.simplefilter("ignore", UserWarning)
            raw = captum_attr().GuidedBackprop(objective).attribute(x)
    return ImageAttribution(raw[:, :3].abs().amax(dim=1).detach(), raw.detach())


def integrated_gradients(model, images, target_fn, n_steps=32, internal_batch_size=None, return_delta=False,
                         black=0.0, baseline=None, **objective_kwargs):
    """IG from `baseline` (default `black_baseline(images, black)`: a black image, RGBA keeping its alpha);
    map = sum over RGB. With return_delta also Captum's convergence delta (B,)."""
    with attribution_mode(model):
        x = _check_images(images)
        objective = _Objective(model, target_fn, **objective_kwargs)
        ig = captum_attr().IntegratedGradients(objective)
        base = black_baseline(x, black) if baseline is None else baseline.to(x)
        raw, delta = ig.attribute(x, baselines=base, n_steps=int(n_steps),
                                  internal_batch_size=internal_batch_size or max(x.shape[0], 8),
                                  return_convergence_delta=True)
    result = ImageAttribution(raw[:, :3].sum(dim=1).detach(), raw.detach())
    return (result, delta.detach()) if return_delta else result


def attribute(method, model, images, target_fn, layer="layer4", n_steps=32, black=0.0, **objective_kwargs):
    """Dispatch by name (METHODS) -> ImageAttribution with map (B, H, W). `black`: IG's baseline pixel value."""
    if method == "gradcam":
        return gradcam(model, images, target_fn, layer, **objective_kwargs)
    if method == "gradcam++":
        return gradcam_pp(model, images, target_fn, layer, **objective_kwargs)
    if method == "hirescam":
        return hirescam(model, images, target_fn, layer, **objective_kwargs)
    if method == "gbp":
        return guided_backprop(model, images, target_fn, **objective_kwargs)
    if method == "ig":
        return integrated_gradients(model, images, target_fn, n_steps, black=black, **objective_kwargs)
    raise ShapeLabError(f"unknown visualizer {method!r}; valid: {', '.join(METHODS)}")


@torch.no_grad()
def target_values(model, images, target_fn, **objective_kwargs):
    """The explained scalar S(x) of each image (B,), evaluated as the methods do (eval mode)."""
    with attribution_mode(model):
        return _Objective(model, target_fn, **objective_kwargs)(images.detach()).detach()


def display_map(method, attribution_map):
    """What an overlay shows: the map itself for CAMs and GBP (>= 0), |map| for signed IG."""
    return attribution_map.abs() if method == "ig" else attribution_map


def randomize_encoder(model, seed=0):
    """A copy of `model` whose image encoder is re-initialised (each module's reset_parameters, as a fresh
    torchvision ResNet); the decoder keeps its trained weights (Adebayo et al.'s model-parameter test)."""
    from torchvision.ops import FrozenBatchNorm2d  # deferred on purpose: only this check needs torchvision
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in clone.encoder.modules():
            if hasattr(m, "reset_parameters") and m is not clone.encoder:
                m.reset_parameters()
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
            if isinstance(m, FrozenBatchNorm2d):     # no reset_parameters: back to a fresh BatchNorm's identity
                with torch.no_grad():
                    m.weight.fill_(1.0), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1.0)
    return clone


def _flat(values, rtol=1e-5):
    """True for a map that is constant up to round-off (a CAM upsampled from a 1x1 grid varies by ~1e-8)."""
    return float(np.ptp(values)) <= rtol * max(float(np.abs(values).max()), 1e-30)


def randomization_check(method, model, images, target_fn, seed=0, trained_map=None, **kwargs):
    """Spearman rank correlation between each image's map from the trained model and from a copy with a
    re-initialised encoder -> {"spearman": (B,) array, "mean": float, "maps": (trained, randomised)}.
    The maps pass the check when the correlation is far from 1 (they depend on the learned weights). An image
    whose map is constant in either model gets NaN; "mean" averages the others (NaN if none).
    trained_map: the trained model's `attribute(...).map` when already computed (B,H,W)."""
    from scipy.stats import spearmanr  # deferred on purpose: scipy.stats is a slow import only this check needs
    if trained_map is None:
        trained_map = attribute(method, model, images, target_fn, **kwargs).map
    trained = display_map(method, trained_map).cpu()
    random_model = randomize_encoder(model, seed)
    randomised = display_map(method, attribute(method, random_model, images, target_fn, **kwargs).map).cpu()
    rho = []
    for a, b in zip(trained, randomised):
        a, b = a.flatten().numpy(), b.flatten().numpy()
        # a constant map (e.g. Grad-CAM's ReLU removed everything) has no ranking: undefined, not "uncorrelated"
        rho.append(float("nan") if _flat(a) or _flat(b) else float(spearmanr(a, b)[0]))
    rho = np.asarray(rho)
    finite = rho[np.isfinite(rho)]
    return {"spearman": rho, "mean": float(finite.mean()) if len(finite) else float("nan"),
            "maps": (trained, randomised)}
