"""Gradient attribution on point clouds (PointNet segmenter and classifier), built on Captum.

Every method explains one scalar per shape, the *target*, and needs a handful of backward passes
per map (one for Guided Backprop / Grad-CAM / HiResCAM, `n_steps` for IG), not one per point as
the attribution/NST seed did. Targets:

- `part_score_target(part_id)`: mean of the segmenter's score (logit) for `part_id` over the
  points the model predicts as that part on the *unperturbed* input (argmax over
  `candidate_parts`, all 50 parts if None); all points if no point is predicted as that part.
  The point set is fixed once, so IG and SmoothGrad explain one function of the input.
- `class_score_target(class_index)`: the classifier's logit for that class.
- `point_score_target(part_id, point_index)`: one point's score (the seed's per-point target;
  used by the one-backward-per-point reference in benchmarks/attribution_bench.py).

Inputs are the model's inputs: (B, 3+16, N) for the segmenter (xyz rows + one-hot) or (B, 3, N)
for the classifier. Only the xyz rows are attributed; the one-hot is held fixed (IG's baseline is
the same one-hot with xyz = 0, SmoothGrad's noise is added to xyz only).

Each method returns `AttributionResult(map, raw)`: `map` (B, N) per point, `raw` the per-channel
attribution it comes from ((B,3,N) input attributions for GBP/IG, (B,C,N) gradient x activation
for HiResCAM; None for Grad-CAM). Point maps: GBP/IG sum the xyz attributions (signed; for IG the
points' maps sum to F(x) - F(baseline)), Grad-CAM and HiResCAM sum over the layer's channels.
"""
import contextlib
import warnings
from collections import namedtuple

import torch
from torch import nn

from modules.attribution.methods import POINT_METHODS as METHODS
from modules.attribution.methods import captum_attr
from modules.utils import ShapeLabError

AttributionResult = namedtuple("AttributionResult", ["map", "raw"])
XYZ = 3


# ----------------------------------------------------------------------------- targets

class PartScoreTarget:
    """Mean score of `part_id` over the points predicted as that part (see module docstring)."""

    def __init__(self, part_id, candidate_parts=None):
        self.part_id = int(part_id)
        self.candidate_parts = None if candidate_parts is None else [int(p) for p in candidate_parts]

    def prepare(self, scores):
        """(B, K, N) scores of the unperturbed input -> (B, N) float mask of the averaged points."""
        if self.candidate_parts is not None:
            cand = torch.tensor(self.candidate_parts, device=scores.device)
            pred = cand[scores[:, cand].argmax(dim=1)]
        else:
            pred = scores.argmax(dim=1)
        mask = (pred == self.part_id).to(scores.dtype)
        empty = mask.sum(dim=1) == 0
        mask[empty] = 1.0
        return mask

    def value(self, scores, mask):
        return (scores[:, self.part_id] * mask).sum(dim=1) / mask.sum(dim=1)

    def __repr__(self):
        return f"mean score of part {self.part_id} over the points predicted as part {self.part_id}"


class PointScoreTarget:
    """Score of `part_id` at one point (the seed's per-point target)."""

    def __init__(self, part_id, point_index):
        self.part_id, self.point_index = int(part_id), int(point_index)

    def prepare(self, scores):
        return None

    def value(self, scores, aux):
        return scores[:, self.part_id, self.point_index]


class ClassScoreTarget:
    """The classifier's logit for `class_index`."""

    def __init__(self, class_index):
        self.class_index = int(class_index)

    def prepare(self, logits):
        return None

    def value(self, logits, aux):
        return logits[:, self.class_index]

    def __repr__(self):
        return f"logit of class {self.class_index}"


class _CallableTarget:
    def __init__(self, fn):
        self.fn = fn

    def prepare(self, output):
        return None

    def value(self, output, aux):
        return self.fn(output)


def part_score_target(part_id, candidate_parts=None):
    return PartScoreTarget(part_id, candidate_parts)


def point_score_target(part_id, point_index):
    return PointScoreTarget(part_id, point_index)


def class_score_target(class_index):
    return ClassScoreTarget(class_index)


def _as_target(target_fn):
    if hasattr(target_fn, "prepare") and hasattr(target_fn, "value"):
        return target_fn
    if callable(target_fn):
        return _CallableTarget(target_fn)       # plain fn(output) -> (B,)
    raise ShapeLabError(f"target must be a target object or a callable output -> (B,), got {type(target_fn).__name__}")


# ----------------------------------------------------------------------------- plumbing

class _Objective(nn.Module):
    """xyz (B,3,N), fixed rows (B,C,N) or None, target aux -> target value (B,). A Module so that
    Captum's Guided Backprop finds the model's ReLUs through it."""

    def __init__(self, model, target):
        super().__init__()
        self.model = model
        self.target = target

    def forward(self, xyz, rest, aux):
        x = xyz if rest is None else torch.cat([xyz, rest], dim=1)
        return self.target.value(self.model(x), aux)


@contextlib.contextmanager
def eval_mode(model):
    """Attribution explains the deterministic network: BatchNorm running stats, no dropout."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _setup(model, inputs, target_fn):
    if inputs.dim() != 3 or inputs.shape[1] < XYZ:
        raise ShapeLabError(f"attribution input: expected (B, 3[+C], N), got {tuple(inputs.shape)}")
    target = _as_target(target_fn)
    inputs = inputs.detach()
    with torch.no_grad():
        aux = target.prepare(model(inputs))
    xyz = inputs[:, :XYZ].clone().requires_grad_(True)
    rest = inputs[:, XYZ:].clone() if inputs.shape[1] > XYZ else None
    return _Objective(model, target), xyz, rest, aux


def resolve_layer(model, layer):
    """An int layer id (model.attribution_layers()) or a module of the model -> module."""
    if isinstance(layer, nn.Module):
        return layer
    layers = model.attribution_layers()
    if not isinstance(layer, int) or not -len(layers) <= layer < len(layers):
        raise ShapeLabError(f"layer id {layer!r} out of range: {type(model).__name__} has layer ids 0..{len(layers) - 1}")
    return layers[layer]


def _run(method, xyz, extra, smoothgrad, stdev, **kwargs):
    if smoothgrad:
        tunnel = captum_attr().NoiseTunnel(method)
        return tunnel.attribute(xyz, nt_type="smoothgrad", nt_samples=int(smoothgrad), stdevs=float(stdev),
                                additional_forward_args=extra, **kwargs)
    return method.attribute(xyz, additional_forward_args=extra, **kwargs)


# ----------------------------------------------------------------------------- methods

def guided_backprop(model, inputs, target_fn, smoothgrad=0, stdev=0.02):
    """Guided Backprop (Springenberg et al. 2015) of the target w.r.t. xyz: one backward pass in
    which every ReLU passes only positive gradients (and only where its input was positive).
    `smoothgrad=k` averages k maps over N(0, stdev^2) xyz noise (SmoothGrad)."""
    with eval_mode(model):
        objective, xyz, rest, aux = _setup(model, inputs, target_fn)
        with warnings.catch_warnings():     # Captum announces its temporary ReLU hooks on every call
            warnings.simplefilter("ignore", UserWarning)
            raw = _run(captum_attr().GuidedBackprop(objective), xyz, (rest, aux), smoothgrad, stdev)
    return AttributionResult(raw.sum(dim=1).detach(), raw.detach())


def integrated_gradients(model, inputs, target_fn, n_steps=50, baseline=None, smoothgrad=0, stdev=0.02,
                         internal_batch_size=None, return_delta=False):
    """Integrated Gradients (Sundararajan et al. 2017) along the straight path from `baseline`
    (default: xyz = 0, same one-hot) to the input, Gauss-Legendre rule with `n_steps` points.

    The per-point map sums the xyz attributions, so map.sum(1) ~= F(x) - F(baseline)
    (completeness). With return_delta, also returns Captum's convergence delta (B,)."""
    with eval_mode(model):
        objective, xyz, rest, aux = _setup(model, inputs, target_fn)
        base = torch.zeros_like(xyz) if baseline is None else torch.as_tensor(baseline, dtype=xyz.dtype).expand_as(xyz)
        ig = captum_attr().IntegratedGradients(objective)
        batch = internal_batch_size or max(xyz.shape[0], 8 * xyz.shape[0])
        kwargs = dict(baselines=base, n_steps=int(n_steps), internal_batch_size=batch)
        if return_delta and not smoothgrad:
            raw, delta = ig.attribute(xyz, additional_forward_args=(rest, aux), return_convergence_delta=True, **kwargs)
        else:
            raw, delta = _run(ig, xyz, (rest, aux), smoothgrad, stdev, **kwargs), None
    result = AttributionResult(raw.sum(dim=1).detach(), raw.detach())
    return (result, delta) if return_delta else result


def grad_cam(model, inputs, layer, target_fn, relu=True):
    """Grad-CAM (Selvaraju et al. 2017) at a per-point layer: channel weights = gradient averaged
    over the points, map = sum_c weight_c * activation_c per point, ReLU'd as in the paper."""
    with eval_mode(model):
        module = resolve_layer(model, layer)
        objective, xyz, rest, aux = _setup(model, inputs, target_fn)
        cam = captum_attr().LayerGradCam(objective, module).attribute(xyz, additional_forward_args=(rest, aux),
                                                                      relu_attributions=relu)
    return AttributionResult(cam.reshape(cam.shape[0], -1).detach(), None)


def hirescam(model, inputs, layer, target_fn):
    """HiResCAM (Draelos & Carin 2020): per point, sum over channels of gradient * activation.
    Signed; raw is the (B,C,N) gradient * activation."""
    with eval_mode(model):
        module = resolve_layer(model, layer)
        objective, xyz, rest, aux = _setup(model, inputs, target_fn)
        method = captum_attr().LayerGradientXActivation(objective, module)
        raw = method.attribute(xyz, additional_forward_args=(rest, aux))
    return AttributionResult(raw.sum(dim=1).detach(), raw.detach())


def relu_modules(model):
    return [m for m in model.modules() if isinstance(m, nn.ReLU)]


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = x.clamp_min(0)
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp_min(0) * (x > 0).to(grad.dtype)


@contextlib.contextmanager
def guided_relus(model):
    """Within the block every nn.ReLU of `model` back-propagates guided (positive gradients only,
    where the input was positive). Yields the list each forward appends the ReLU outputs to."""
    outputs = []

    def hook(module, args, out):
        guided = _GuidedReLU.apply(args[0])
        outputs.append((module, guided))
        return guided

    handles = [m.register_forward_hook(hook) for m in relu_modules(model)]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


def guided_backprop_features(model, inputs, target_fn):
    """Guided-Backprop-masked features of the segmenter for NST's `mode gbp`.

    Returns {feature_0..feature_4: relu_out * 1[relu_out > 0 and guided grad > 0],
    feature_5: the (unmasked) global feature} as in the seed, with the masks computed from one
    guided backward of the target and the features from a plain forward of `inputs` (so they stay
    differentiable w.r.t. inputs when inputs.requires_grad). Also returns the masks.
    """
    blocks = getattr(model, "point_features", None)
    if blocks is None:
        raise ShapeLabError("guided_backprop_features needs the PointNet segmenter (model.point_features)")
    target = _as_target(target_fn)
    relus = [block.layers[2] for block in blocks]
    with eval_mode(model):
        x = inputs.detach()
        with torch.no_grad():
            aux = target.prepare(model(x))
        with torch.enable_grad(), guided_relus(model) as outs:
            value = target.value(model(x.requires_grad_(True)), aux)
            picked = [next(o for m, o in outs if m is r) for r in relus]
            grads = torch.autograd.grad(value.sum(), picked, allow_unused=True)
        masks = [((o > 0) & (g > 0)).detach().to(o.dtype) if g is not None else torch.zeros_like(o)
                 for o, g in zip(picked, grads)]
        model(inputs)
        feats = dict(model.features)
    out = {f"feature_{i}": feats[f"feature_{i}"] * m for i, m in enumerate(masks)}
    out[f"feature_{len(masks)}"] = feats[f"feature_{len(masks)}"]
    return out, masks


def attribute(method, model, inputs, target_fn, layer=None, n_steps=50, smoothgrad=0, stdev=0.02):
    """Dispatch by name (the attribution.py --mode values)."""
    if method == "gbp":
        return guided_backprop(model, inputs, target_fn, smoothgrad=smoothgrad, stdev=stdev)
    if method == "ig":
        return integrated_gradients(model, inputs, target_fn, n_steps=n_steps, smoothgrad=smoothgrad, stdev=stdev)
    if method in ("grad_cam", "hirescam"):
        if smoothgrad:
            raise ShapeLabError(f"--smoothgrad applies to gbp and ig, not {method}")
        fn = grad_cam if method == "grad_cam" else hirescam
        return fn(model, inputs, layer, target_fn)
    raise ShapeLabError(f"unknown attribution mode '{method}'; valid: {', '.join(METHODS)}")
