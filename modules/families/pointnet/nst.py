"""Geometric neural style transfer on point coordinates with a frozen PointNet part segmenter.

The optimised variable is the (N, 3) coordinate tensor of the "current" cloud, started from the
content cloud (or noise). Each iteration runs the frozen segmenter (eval mode) on it and
minimises

    content_weight * sum_l MSE(F_l(current), F_l(content))          l in content_layers
  + style_weight   * sum_l S(F_l(current)[moving], F_l(style)[style part])   l in style_layers
  + score_weight   * score loss      (part-specific runs)
  + attr_weight    * attribution loss (mode hirescam)

with Adam, where F_l is the segmenter's `feature_l` (layers 0-5: 64, 128, 128, 512, 2048, 2048
channels) and S the per-channel mean/std statistics loss (`style_loss: stats`, the original's
StatsLoss) or the Gram loss (`style_loss: gram`), see modules/losses/style.py.

Modes:
- `vanilla`: the losses above on all points (or on the moving part when part_specific).
- `gbp`: the style features of both clouds are multiplied by their Guided-Backprop masks
  1[activation > 0 and guided gradient > 0] for the part score (content part on the current
  cloud, style part on the style cloud). One extra guided backward pass per iteration.
- `hirescam`: features are weighted per point by HiResCAM maps (content loss: both sides by the
  content part's map on the content cloud; style loss: style features by the style part's map on
  the style cloud, current features by the current map), and an attribution loss pulls the current
  cloud's map towards both (double backward: two backward passes per iteration).

Part-specific transfer (`part_specific: true`): only the points whose part (file labels when the
cloud has them, else the segmenter's prediction) is in `mask_class_list` move; all others are
the very same tensor values in the very same order in every iteration (exact zero displacement).
"""
import copy
import os

import numpy as np
import torch
import torch.nn.functional as F

from modules import vis
from modules.attribution import guided_backprop_features, part_score_target, resolve_layer
from modules.config import apply_overrides, load_yaml_chain, read_yaml, validate
from modules.engine.input_optimization import optimize_inputs
from modules.data import categories
from modules.families.pointnet.outputs import check_name, check_writable, fresh_dir
from modules.families.pointnet.weights import describe_weights, load_segmenter
from modules.geometry import chamfer_distance
from modules.geometry.io import load_point_cloud, load_seg, save_point_cloud
from modules.geometry.transforms import normalize_unit_sphere
from modules.losses.style import STYLE_LOSSES, content_loss
from modules.models.pointnet import SEG_LAYER_CHANNELS as LAYER_CHANNELS
from modules.models.pointnet import make_input
from modules.utils import ShapeLabError, get_device, save_yaml

NUM_LAYERS = len(LAYER_CHANNELS)
SYNTH_COMMAND = ("python preprocess.py synth --out data/synth_nst --formats shapenet_part --views 0 "
                 "--categories chair,table,lamp --per-category 24")
MODES = ("vanilla", "gbp", "hirescam")

# Every key run_nst.py accepts (config file, --flag or key=value). Types are checked against these.
NST_DEFAULTS = {
    "content_shape": None,          # .pts (+ ../points_label/<id>.seg) / .xyz / .ply / .npz
    "content_category": "chair",
    "style_shape": None,
    "style_category": "table",
    "pretrained": "auto",           # checkpoint; auto: pretrained_models/pointnet_seg.pt if present; none: random
    "width_multiplier": 1.0,        # must match the checkpoint; < 1 only for tests
    "output_dir": "experiments/nst",
    "exp_suffix": "",               # sub-folder of output_dir for this run (relative, confined to output_dir)
    "num_iters": 500,
    "save_every": 100,              # .ply snapshot every this many iterations (0: only the final one)
    "num_points": 2048,             # points sampled from each cloud (with replacement if the file has fewer)
    "step_size": 0.01,              # Adam learning rate on the coordinates
    "content_weight": 1.0,
    "style_weight": 15.0,
    "content_layers": [0, 1, 2, 3, 4],
    "style_layers": [3, 4],
    "style_loss": "stats",          # stats (per-channel mean/std, the original) | gram
    "init": "content",              # content | noise (the original's randn_noise)
    "noise_std": 0.5,               # std of the noise initialisation (clouds are unit-sphere normalised)
    "mode": "vanilla",              # vanilla | gbp | hirescam
    "part_specific": False,
    "mask_class_list": [],          # global part ids of the content cloud that move (part_specific)
    "content_part_class": None,     # content part id for the score/GBP/HiResCAM targets
    "style_part_class": None,       # style part id whose style is transferred
    "score_weight": 10.0,           # part-specific: weight of the style-part score loss (original: 10, hard-coded)
    "attr_weight": 10.0,            # hirescam: weight of the attribution loss
    "attr_layer": 7,                # hirescam: attributed layer id (model.attribution_layers(); 7 as the original)
    "part_labels": "auto",          # auto (file labels if present, else predicted) | predicted
    "seed": 0,
    "device": "auto",               # auto (cuda if available) | cpu | cuda[:N]
    "pictures": True,               # write panel.png and progress.gif at the end
    "sweep": None,                  # {key: name, values: [...]}: one run per value, sub-folders <key>_<i>
}


# ---------------------------------------------------------------- config

def check_config(cfg, source="config"):
    """Fill defaults, check key names and types (modules.config.validate against NST_DEFAULTS, as train.py
    configs are checked against the registered defaults), then ranges and files; returns a new dict."""
    cfg = {k: ([v] if isinstance(v, int) and not isinstance(v, bool) and isinstance(NST_DEFAULTS.get(k), list) else v)
           for k, v in cfg.items()}
    out = copy.deepcopy(NST_DEFAULTS)
    out.update(validate(copy.deepcopy(cfg), NST_DEFAULTS, "", source))
    if isinstance(out["attr_layer"], bool) or not isinstance(out["attr_layer"], int) or not 0 <= out["attr_layer"] <= 8:
        raise ShapeLabError(f"{source}: 'attr_layer' must be a layer id 0-8 (0-5 features, 6-8 the head's "
                            f"256/256/128 layers), got {out['attr_layer']!r}")
    for key in ("num_iters", "save_every", "num_points", "seed"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 0:
            raise ShapeLabError(f"{source}: '{key}' must be a non-negative integer, got {out[key]!r}")
    if out["num_points"] < 16:
        raise ShapeLabError(f"{source}: 'num_points' must be at least 16, got {out['num_points']}")
    for key in ("step_size", "content_weight", "style_weight", "score_weight", "attr_weight",
                "noise_std", "width_multiplier"):
        try:
            out[key] = float(out[key])
        except (TypeError, ValueError):
            raise ShapeLabError(f"{source}: '{key}' must be a number, got {out[key]!r}") from None
        positive = key in ("step_size", "noise_std", "width_multiplier")
        if not np.isfinite(out[key]) or out[key] < 0 or (positive and out[key] == 0):
            raise ShapeLabError(f"{source}: '{key}' must be a finite number {'> 0' if positive else '>= 0'}, "
                                f"got {out[key]!r}")
    if not isinstance(out["device"], str):
        raise ShapeLabError(f"{source}: 'device' must be auto, cpu or cuda[:N], got {out['device']!r}")
    if not isinstance(out["output_dir"], str) or not out["output_dir"]:
        raise ShapeLabError(f"{source}: 'output_dir' must be a folder path, got {out['output_dir']!r}")
    check_writable(out["output_dir"], f"{source}: output_dir")
    if out["exp_suffix"] not in ("", None):
        out["exp_suffix"] = check_name(out["exp_suffix"], f"{source}: exp_suffix")
    else:
        out["exp_suffix"] = ""
    for key in ("content_layers", "style_layers"):
        layers = out[key]
        if isinstance(layers, int):
            layers = [layers]
        if not isinstance(layers, (list, tuple)):
            raise ShapeLabError(f"{source}: '{key}' must be a list of layer ids 0-5, got {layers!r}")
        for layer in layers:
            if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < NUM_LAYERS:
                raise ShapeLabError(f"{source}: '{key}' has layer id {layer!r}; valid layer ids are 0-5 "
                                    f"(channels {', '.join(map(str, LAYER_CHANNELS))})")
        out[key] = list(layers)
    for key, choices in (("style_loss", tuple(STYLE_LOSSES)), ("init", ("content", "noise")),
                         ("mode", MODES), ("part_labels", ("auto", "predicted"))):
        if out[key] not in choices:
            raise ShapeLabError(f"{source}: '{key}' must be one of {', '.join(choices)}, got {out[key]!r}")
    for key in ("content_shape", "style_shape"):
        if not out[key]:
            raise ShapeLabError(f"{source}: '{key}' is required (a .pts/.xyz/.ply/.npz point cloud)")
        if not os.path.isfile(out[key]):
            hint = f" (make the synthetic data with: {SYNTH_COMMAND})" if "data/synth" in str(out[key]) else ""
            raise ShapeLabError(f"{source}: {key} file not found: {out[key]}{hint}")
    out["content_category"] = categories.category_name(out["content_category"])
    out["style_category"] = categories.category_name(out["style_category"])
    categories.category_index(out["content_category"])
    categories.category_index(out["style_category"])
    if os.path.abspath(out["content_shape"]) == os.path.abspath(out["style_shape"]):
        raise ShapeLabError(f"{source}: content_shape and style_shape are the same file ({out['content_shape']}); "
                            "style transfer needs two different shapes")
    if isinstance(out["mask_class_list"], int):
        out["mask_class_list"] = [out["mask_class_list"]]
    if out["part_specific"] and not out["mask_class_list"]:
        if out["content_part_class"] is None:
            raise ShapeLabError(f"{source}: part_specific needs mask_class_list (content part ids that move)")
        out["mask_class_list"] = [out["content_part_class"]]
    for pid in out["mask_class_list"]:
        categories.check_part_id(out["content_category"], pid)
    needs_parts = out["part_specific"] or out["mode"] in ("gbp", "hirescam")
    if needs_parts:
        for key, cat in (("content_part_class", "content_category"), ("style_part_class", "style_category")):
            if out[key] is None:
                raise ShapeLabError(f"{source}: '{key}' is required with part_specific or mode {out['mode']}; "
                                    f"valid ids for {out[cat]}: {_part_list(out[cat])}")
            categories.check_part_id(out[cat], out[key])
    return out


def _part_list(category):
    return ", ".join(f"{i} ({n})" for i, n in categories.part_table(category).items())


# ---------------------------------------------------------------- data and model

def find_seg_file(path):
    """ShapeNet-Part layout: <synset>/points/<id>.pts -> <synset>/points_label/<id>.seg (None if absent)."""
    folder, name = os.path.split(os.path.abspath(path))
    stem = os.path.splitext(name)[0]
    for candidate in (os.path.join(os.path.dirname(folder), "points_label", stem + ".seg"),
                      os.path.join(folder, stem + ".seg")):
        if os.path.isfile(candidate):
            return candidate
    return None


def to_global_labels(labels, category, path):
    """File labels -> global part ids: .seg files hold local labels 1..k; global ids pass through."""
    ids = categories.part_ids(category)
    labels = np.asarray(labels, dtype=np.int64)
    if np.all(np.isin(labels, ids)) and not np.all(np.isin(labels, np.arange(1, len(ids) + 1))):
        return labels
    if np.all((labels >= 1) & (labels <= len(ids))):
        return labels - 1 + ids[0]
    if np.all(np.isin(labels, ids)):
        return labels
    raise ShapeLabError(f"{path}: labels {sorted(set(labels.tolist()))[:10]} are neither local labels 1..{len(ids)} "
                        f"nor global part ids of '{category}' ({_part_list(category)})")


def check_cloud(points, path):
    """Raise a one-line error unless the (N,3) cloud read from `path` has points, finite ones, and extent."""
    n = len(points)
    if n == 0:
        raise ShapeLabError(f"{path}: the point cloud has no points")
    if not np.all(np.isfinite(points)):
        raise ShapeLabError(f"{path}: the point cloud has NaN or infinite coordinates")
    if float(np.ptp(points, axis=0).max()) == 0.0:
        raise ShapeLabError(f"{path}: all {n} points coincide (a cloud needs extent to be normalised)")
    return points


def read_cloud(path):
    """modules.geometry.io.load_point_cloud, with a folder or an unreadable file as a one-line error."""
    if os.path.isdir(path):
        raise ShapeLabError(f"{path}: is a folder, expected a point cloud file (.pts/.xyz/.xyzn/.ply/.npz)")
    try:
        return load_point_cloud(path)
    except OSError as err:
        raise ShapeLabError(f"{path}: cannot be read ({err.strerror or err})") from None


def load_shape(path, category, num_points, rng, allow_duplicates=True, flag="num_points"):
    """Read a cloud (+ labels from the file or a ShapeNet-Part .seg), normalise to the unit sphere,
    sample `num_points` (without replacement when the file has enough points; with replacement, i.e.
    duplicated points, only when `allow_duplicates`, else an error naming `flag`). num_points None: all
    points of the file, in file order.

    Returns dict(points (N,3) float32 tensor, labels (N,) int64 tensor or None, path, file_points,
    duplicates (bool)).
    """
    cloud = read_cloud(path)
    points, labels = cloud["points"], cloud["labels"]
    n = len(check_cloud(points, path))
    if labels is None:
        seg = find_seg_file(path)
        if seg is not None:
            labels = load_seg(seg)
            if len(labels) != n:
                raise ShapeLabError(f"{seg}: {len(labels)} labels for {n} points in {path}")
    if labels is not None:
        labels = to_global_labels(labels, category, path)
    if num_points is None:
        idx = np.arange(n)
    elif num_points > n and not allow_duplicates:
        raise ShapeLabError(f"{flag} {num_points}: {path} has only {n} points (give {flag} {n} or fewer, or "
                            "leave it out to use every point once)")
    else:
        idx = rng.choice(n, num_points, replace=num_points > n)
    pts = normalize_unit_sphere(torch.from_numpy(points[idx]).float()[None])[0]
    return dict(points=pts.contiguous(), labels=None if labels is None else torch.from_numpy(labels[idx]), path=path,
                file_points=n, duplicates=len(idx) > n)


def describe_shape(shape, category):
    """'path (chair, 2048 of 2500 points)' for the run summaries; says when points were duplicated."""
    used, n = len(shape["points"]), shape["file_points"]
    how = f"{used} points drawn with replacement from {n} (duplicates)" if shape["duplicates"] else \
        (f"all {n} points" if used == n else f"{used} of {n} points")
    labels = "file labels" if shape["labels"] is not None else "no labels"
    return f"{shape['path']} ({category}, {how}, {labels})"


def run_segmenter(model, points, category):
    """points (N,3) -> ({layer id: (1, C, N) features}, scores (1, 50, N))."""
    cat = torch.tensor([categories.category_index(category)], device=points.device)
    scores = model(make_input(points[None], cat))
    feats = {int(k.rsplit("_", 1)[1]): v for k, v in model.features.items()}
    return feats, scores


# ---------------------------------------------------------------- attribution pieces

def part_target(category, part_id):
    """The attribution target of modules.attribution: mean score of `part_id` over the points the
    segmenter predicts as that part (argmax over the category's parts; all points if none)."""
    return part_score_target(part_id, candidate_parts=categories.part_ids(category))


def gbp_feature_masks(model, points, category, part_id, layers):
    """Guided-Backprop feature masks {layer: (1, C, N) 0/1}, detached, from one guided backward pass
    (modules.attribution.guided_backprop_features): 1[feature > 0 and guided gradient > 0] for layers
    0-4; the global feature (layer 5) is not masked, as in the original."""
    inputs = make_input(points.detach()[None], [categories.category_index(category)])
    _, masks = guided_backprop_features(model, inputs, part_target(category, part_id))
    out = dict(enumerate(masks))
    return {l: out[l] if l in out else torch.ones(()) for l in layers}


def hirescam_map(model, points, category, part_id, layer_id, create_graph=False):
    """HiResCAM (Draelos & Carin 2020) per point, the definition of modules.attribution.hirescam
    (sum over channels of gradient x activation at `model.attribution_layers()[layer_id]`, target
    `part_target`), in one backward pass. Unlike the Captum version it can keep the graph
    (create_graph=True), so the (N,) map is differentiable w.r.t. `points` for the attribution loss.
    Returns (map (N,), features {layer: (1,C,N)}, scores (1,50,N)).
    """
    target = part_target(category, part_id)
    layer = resolve_layer(model, layer_id)
    store = {}
    handle = layer.register_forward_hook(lambda mod, inp, out: store.__setitem__("act", out))
    try:
        with torch.enable_grad():
            x = points if points.requires_grad else points.detach().requires_grad_(True)
            feats, scores = run_segmenter(model, x, category)
            value = target.value(scores, target.prepare(scores.detach())).sum()
            act = store["act"]
            grad = torch.autograd.grad(value, act, create_graph=create_graph)[0]
            cam = (grad * act).sum(dim=1)[0]
    finally:
        handle.remove()
    return cam, feats, scores


def unit_normalise(m, eps=1e-8):
    """Scale a map so its largest |value| is 1 (the original's norm_unit divided by the max)."""
    return m / (m.abs().max() + eps)


# ---------------------------------------------------------------- the optimisation

class StyleTransfer:
    """One style-transfer run: holds the targets, the optimised coordinates and the loss."""

    def __init__(self, cfg, model, content, style):
        self.cfg = cfg
        self.model = model
        self.content = content
        self.style = style
        device = content["points"].device
        ccat, scat = cfg["content_category"], cfg["style_category"]
        with torch.no_grad():
            self.content_feats, self.content_scores = run_segmenter(model, content["points"], ccat)
            self.style_feats, self.style_scores = run_segmenter(model, style["points"], scat)
        use_file = cfg["part_labels"] == "auto"
        self.content_labels = self._labels(content, self.content_scores, ccat, use_file)
        self.style_labels = self._labels(style, self.style_scores, scat, use_file)
        n = content["points"].shape[0]
        # which content points move
        if cfg["part_specific"]:
            self.moving = torch.isin(self.content_labels, torch.tensor(cfg["mask_class_list"], device=device))
            if not self.moving.any():
                raise ShapeLabError(self._empty_part_message(content, self.content_labels, ccat,
                                                             cfg["mask_class_list"], "mask_class_list"))
        else:
            self.moving = torch.ones(n, dtype=torch.bool, device=device)
        # which style points carry the style
        if cfg["style_part_class"] is not None and (cfg["part_specific"] or cfg["mode"] != "vanilla"):
            self.style_part = self.style_labels == cfg["style_part_class"]
            if not self.style_part.any():
                raise ShapeLabError(self._empty_part_message(style, self.style_labels, scat,
                                                             [cfg["style_part_class"]], "style_part_class"))
        else:
            self.style_part = None
        # fixed points: a constant tensor; moving points: the parameter
        self.fixed_points = content["points"].detach().clone()
        self.moving_index = self.moving.nonzero()[:, 0]
        init = self.fixed_points[self.moving_index].clone()
        if cfg["init"] == "noise":
            gen = torch.Generator().manual_seed(cfg["seed"])
            init = (torch.randn(init.shape, generator=gen) * cfg["noise_std"]).to(device)
        self.param = torch.nn.Parameter(init)
        self.style_fn = STYLE_LOSSES[cfg["style_loss"]]
        self._prepare_attribution_targets()

    @staticmethod
    def _labels(shape, scores, category, use_file):
        """File labels when present (part_labels auto), else the segmenter's prediction restricted to the category."""
        if use_file and shape["labels"] is not None:
            return shape["labels"].to(scores.device)
        ids = torch.tensor(categories.part_ids(category), device=scores.device)
        return ids[scores[0, ids].argmax(0)]

    def _empty_part_message(self, shape, labels, category, wanted, key):
        present = {int(i): int(c) for i, c in zip(*torch.unique(labels, return_counts=True))}
        names = categories.part_table(category)
        have = ", ".join(f"{i} ({names.get(i, '?')}): {c} points" for i, c in present.items())
        source = "file labels" if shape["labels"] is not None and self.cfg["part_labels"] == "auto" \
            else "segmenter prediction"
        return (f"{shape['path']}: {key} {wanted} selects no points of this {category} ({source}); "
                f"parts present: {have}")

    def current_points(self):
        """(N,3): fixed points untouched and in their original order, moving points from the parameter."""
        if bool(self.moving.all()):
            return self.param
        return self.fixed_points.index_put((self.moving_index,), self.param)

    def _prepare_attribution_targets(self):
        cfg = self.cfg
        self.style_masks = None
        if cfg["mode"] == "gbp":
            self.style_masks = gbp_feature_masks(self.model, self.style["points"], cfg["style_category"],
                                                 cfg["style_part_class"], cfg["style_layers"])
        elif cfg["mode"] == "hirescam":
            content_cam = hirescam_map(self.model, self.content["points"], cfg["content_category"],
                                       cfg["content_part_class"], cfg["attr_layer"])[0]
            style_cam = hirescam_map(self.model, self.style["points"], cfg["style_category"],
                                     cfg["style_part_class"], cfg["attr_layer"])[0]
            self.content_cam = unit_normalise(content_cam.detach())
            self.style_cam = unit_normalise(style_cam.detach())
            # per-point weights (non-negative part of the maps): the content loss weights both sides
            # by the content map (same points), the style targets by the style map
            self.content_weights = self.content_cam.clamp(min=0)[None, None]
            sw = self.style_cam.clamp(min=0)[None, None]
            self.content_feats = {l: f * self.content_weights for l, f in self.content_feats.items()}
            self.style_feats = {l: f * sw for l, f in self.style_feats.items()}

    def losses(self, points):
        """All loss terms at `points` (N,3) as a dict of scalar tensors, 'total' included."""
        cfg = self.cfg
        ccat = cfg["content_category"]
        out = {}
        cam = None
        if cfg["mode"] == "hirescam":
            cam, feats, scores = hirescam_map(self.model, points, ccat, cfg["content_part_class"],
                                              cfg["attr_layer"], create_graph=True)
        else:
            feats, scores = run_segmenter(self.model, points, ccat)
        total = points.new_zeros(())
        if cfg["content_weight"] > 0 and cfg["content_layers"]:
            cw = self.content_weights if cam is not None else 1.0
            out["content"] = sum(content_loss(feats[l] * cw, self.content_feats[l]) for l in cfg["content_layers"])
            total = total + cfg["content_weight"] * out["content"]
        if cfg["style_weight"] > 0 and cfg["style_layers"]:
            cur = {l: feats[l] for l in cfg["style_layers"]}
            sty = {l: self.style_feats[l] for l in cfg["style_layers"]}
            if cfg["mode"] == "gbp":
                masks = gbp_feature_masks(self.model, points, ccat, cfg["content_part_class"], cfg["style_layers"])
                cur = {l: cur[l] * masks[l] for l in cur}
                sty = {l: sty[l] * self.style_masks[l] for l in sty}
            elif cam is not None:   # the current cloud's own (detached) map weights its style features
                w = unit_normalise(cam.detach()).clamp(min=0)[None, None]
                cur = {l: cur[l] * w for l in cur}
            moving = None if bool(self.moving.all()) else self.moving
            out["style"] = sum(self.style_fn(cur[l], sty[l], moving, self.style_part) for l in cfg["style_layers"])
            total = total + cfg["style_weight"] * out["style"]
        if cfg["part_specific"] and cfg["score_weight"] > 0:
            # moved points should score like the style part scores on the style cloud
            sp = cfg["style_part_class"]
            target = self.style_scores[0, sp, self.style_part].mean()
            out["score"] = F.mse_loss(scores[0, sp, self.moving], target.expand(int(self.moving.sum())))
            total = total + cfg["score_weight"] * out["score"]
        if cam is not None and cfg["attr_weight"] > 0:
            cam = unit_normalise(cam)
            # order-free comparison with the style map (different shapes: 1-D Wasserstein of sorted
            # values), point-wise with the content map (same points, same order)
            n = min(cam.numel(), self.style_cam.numel())
            style_sorted = torch.sort(self.style_cam)[0]
            cur_sorted = torch.sort(cam)[0]
            if cam.numel() != self.style_cam.numel():
                q = torch.linspace(0, 1, n, device=cam.device)
                cur_sorted = torch.quantile(cur_sorted, q)
                style_sorted = torch.quantile(style_sorted, q)
            out["attribution"] = F.mse_loss(cur_sorted, style_sorted) + F.mse_loss(cam, self.content_cam)
            total = total + cfg["attr_weight"] * out["attribution"]
        out["total"] = total
        return out, scores

    def objective(self, iteration=None):
        """The objective of modules.engine.input_optimization: (total loss, {term: float})."""
        losses, _ = self.losses(self.current_points())
        return losses["total"], {k: float(v.detach()) for k, v in losses.items()}

    def predicted_parts(self, points=None):
        points = self.current_points() if points is None else points
        with torch.no_grad():
            _, scores = run_segmenter(self.model, points.detach(), self.cfg["content_category"])
        ids = torch.tensor(categories.part_ids(self.cfg["content_category"]), device=scores.device)
        return ids[scores[0, ids].argmax(0)], scores


# ---------------------------------------------------------------- outputs

def save_snapshot(path, points, part_ids):
    """Coloured (by part) .ply with a `label` property; atomic."""
    labels = part_ids.cpu().numpy()
    save_point_cloud(path, points.detach().cpu().numpy(), colors=vis.part_colors(labels), labels=labels)


def shape_statistics(transfer, points):
    """Measured shape statistics of a cloud `points` (N,3) of this transfer, with
    modules.geometry.chamfer_distance (PyTorch3D: squared distances, mean each way, the two summed), in
    the unit-sphere frame both clouds were normalised to:
      chamfer_to_style: the moving points (all points unless part-specific) to the style part's points
                        (the whole style cloud when no style part is set);
      chamfer_to_content: the whole cloud to the content cloud."""
    style = transfer.style["points"] if transfer.style_part is None else transfer.style["points"][transfer.style_part]
    with torch.no_grad():
        moving = points.detach()[transfer.moving]
        return {"chamfer_to_style": float(chamfer_distance(moving[None], style[None])[0]),
                "chamfer_to_content": float(chamfer_distance(points.detach()[None], transfer.content["points"][None])[0])}


def _resumable(out_dir, cfg):
    """An interrupted run of the same config: config.yaml equal, a checkpoint, no final result."""
    return (os.path.isfile(os.path.join(out_dir, "config.yaml")) and read_yaml(os.path.join(out_dir, "config.yaml")) == cfg
            and os.path.isfile(os.path.join(out_dir, "checkpoints", "latest.pt"))
            and not os.path.isfile(os.path.join(out_dir, "stylization_final.ply")))


def describe_run(cfg, transfer):
    moving = int(transfer.moving.sum())
    if cfg["part_specific"]:
        what = f"part-specific: content parts {cfg['mask_class_list']} move ({moving} points)"
    else:
        what = f"all {moving} points move"
    if transfer.style_part is not None:
        what += f", style part {cfg['style_part_class']} ({int(transfer.style_part.sum())} style points)"
    return (f"mode {cfg['mode']}, {what}; start {cfg['init']}; {cfg['num_iters']} Adam iterations, step "
            f"{cfg['step_size']}; content {cfg['content_weight']:g} x layers {cfg['content_layers']}, style "
            f"{cfg['style_weight']:g} x {cfg['style_loss']} on layers {cfg['style_layers']}")


def run_style_transfer(cfg, model=None, callback=None, progress=True, log=print):
    """Run one style transfer described by `cfg` (see NST_DEFAULTS). Returns a result dict:
    points (N,3), initial_points, moving (N,) bool, losses (list of per-iteration dicts), out_dir,
    stats {"before": shape_statistics, "after": ...}.

    Output folder: output_dir[/exp_suffix]; an interrupted run of the same config there is resumed, any
    other existing result is kept and a numbered sibling folder is used (and named in the log). All
    inputs are checked before anything is written.
    `callback(iteration, transfer, losses)` is called after every iteration. A KeyboardInterrupt
    (Ctrl-C, or raised by the callback) writes `stylization_interrupted.ply` atomically and re-raises.
    """
    cfg = check_config(cfg)
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    device = get_device(cfg["device"])
    content = load_shape(cfg["content_shape"], cfg["content_category"], cfg["num_points"], rng)
    style = load_shape(cfg["style_shape"], cfg["style_category"], cfg["num_points"], rng)
    if model is None:
        model = load_segmenter(cfg["pretrained"], cfg["width_multiplier"], device)
    model = model.to(device)
    for shape in (content, style):
        shape["points"] = shape["points"].to(device)
    transfer = StyleTransfer(cfg, model, content, style)
    out_dir = os.path.join(cfg["output_dir"], cfg["exp_suffix"]) if cfg["exp_suffix"] else cfg["output_dir"]
    resume = _resumable(out_dir, cfg)
    note = f"resuming the interrupted run in {out_dir}" if resume else ""
    if not resume:
        out_dir, note = fresh_dir(out_dir, "output_dir")
    log(f"nst: segmenter with {describe_weights(model)}, device {device}\n"
        f"  content {describe_shape(content, cfg['content_category'])}\n"
        f"  style   {describe_shape(style, cfg['style_category'])}\n"
        f"  {describe_run(cfg, transfer)}\n"
        f"  writing to {out_dir}" + (f"\n  note: {note}" if note else ""))
    save_yaml(cfg, os.path.join(out_dir, "config.yaml"))
    initial = transfer.current_points().detach().clone()
    frames = []

    def on_snapshot(it, tag, logs):
        pts = transfer.current_points().detach()
        parts, _ = transfer.predicted_parts(pts)
        name = {"initial": "stylization_it00000", "snapshot": f"stylization_it{it:05d}",
                "final": "stylization_final", "interrupted": "stylization_interrupted"}[tag]
        save_snapshot(os.path.join(out_dir, name + ".ply"), pts, parts)
        if tag == "final":
            save_point_cloud(os.path.join(out_dir, "stylization_final.xyz"), pts.cpu().numpy())
        if tag != "interrupted":
            frames.append((it, pts.cpu().numpy(), parts.cpu().numpy()))

    history = optimize_inputs({"points": transfer.param}, transfer.objective, cfg["num_iters"], out_dir,
                              step_rule="adam", lr=cfg["step_size"], snapshot_every=cfg["save_every"],
                              on_snapshot=on_snapshot, resume=resume, progress=progress, desc="nst",
                              on_step=None if callback is None else (lambda it, logs: callback(it, transfer, logs)))
    final = transfer.current_points().detach()
    stats = {"before": shape_statistics(transfer, initial), "after": shape_statistics(transfer, final)}
    save_yaml({"iterations": cfg["num_iters"], "statistic": "PyTorch3D chamfer_distance (squared, mean each way, "
               "summed), unit-sphere frames", **stats,
               "final_losses": history[-1] if history else {}}, os.path.join(out_dir, "metrics.yaml"))
    log(f"  chamfer to the style {'part' if transfer.style_part is not None else 'cloud'}: "
        f"{stats['before']['chamfer_to_style']:.4g} -> {stats['after']['chamfer_to_style']:.4g}; to the content: "
        f"{stats['before']['chamfer_to_content']:.4g} -> {stats['after']['chamfer_to_content']:.4g}")
    if cfg["pictures"]:
        _save_pictures(out_dir, content, style, transfer, frames, stats)
    return dict(points=final.cpu(), initial_points=initial.cpu(), moving=transfer.moving.cpu(), losses=history,
                out_dir=out_dir, transfer=transfer, stats=stats, cfg=cfg)


def _stats_line(stats, key):
    return f"{stats['before'][key]:.3g} -> {stats['after'][key]:.3g}"


def _save_pictures(out_dir, content, style, transfer, frames, stats):
    """panel.png: content / style / result coloured by part, with the measured Chamfer distances and a
    part legend; progress.gif: the snapshots."""
    style_parts = transfer.style_labels.cpu().numpy()
    content_parts = transfer.content_labels.cpu().numpy()
    it, pts, parts = frames[-1]
    target = f"style part {transfer.cfg['style_part_class']}" if transfer.style_part is not None else "style"
    vis.save_panels_png(os.path.join(out_dir, "panel.png"), [
        dict(points=content["points"].cpu().numpy(), colors=content_parts,
             title=f"content | CD to result {_stats_line(stats, 'chamfer_to_content')}"),
        dict(points=style["points"].cpu().numpy(), colors=style_parts,
             title=f"{target} | CD {_stats_line(stats, 'chamfer_to_style')}"),
        dict(points=pts, colors=parts, title=f"result, iteration {it}")], panel_size=3.4)
    vis.save_gif(os.path.join(out_dir, "progress.gif"),
                 [vis.point_cloud_image(p, c, title=f"it {i}", figsize=(3, 3)) for i, p, c in frames])


# ---------------------------------------------------------------- config files and sweeps

def load_nst_config(path, flag_values=None, overrides=()):
    """configs/nst/*.yaml (may `inherit:` another file) <- `key=value` overrides <- --flag values."""
    cfg = load_yaml_chain(path) if path else {}
    cfg = apply_overrides(cfg, overrides)
    for key, value in (flag_values or {}).items():
        if value is not None:
            cfg[key] = value
    return check_config(cfg, source=path or "run_nst.py")


def _sweep_stat(cfg):
    """The statistic a sweep picture shows: what the objective pulls towards."""
    if cfg["style_weight"] == 0:
        return "chamfer_to_content", "CD to content"
    return "chamfer_to_style", "CD to style" + (" part" if cfg["style_part_class"] is not None and
                                                 (cfg["part_specific"] or cfg["mode"] != "vanilla") else "")


def run_sweep(cfg, model=None, progress=True, log=print):
    """One run per value of cfg['sweep'] = {key: K, values: [...]} (sub-folders K_0, K_1, ... of one sweep
    folder, plus sweep.png: the results side by side with the swept value and the measured Chamfer
    distance), or a single run without a sweep. Returns the list of results."""
    cfg = check_config(cfg)
    sweep = cfg.pop("sweep")
    if not sweep:
        return [run_style_transfer(cfg, model, progress=progress, log=log)]
    if not isinstance(sweep, dict) or set(sweep) != {"key", "values"} or not isinstance(sweep["values"], list) \
            or not sweep["values"]:
        raise ShapeLabError(f"sweep must be {{key: <config key>, values: [one or more values]}}, got {sweep!r}")
    if sweep["key"] not in NST_DEFAULTS or sweep["key"] in ("sweep", "output_dir", "exp_suffix"):
        raise ShapeLabError(f"sweep key '{sweep['key']}' is not a config key that can vary; valid: "
                            + ", ".join(k for k in NST_DEFAULTS if k not in ("sweep", "output_dir", "exp_suffix")))
    run_cfgs = []
    for i, value in enumerate(sweep["values"]):
        run_cfg = dict(cfg, **{sweep["key"]: value}, exp_suffix=f"{sweep['key']}_{i}")
        run_cfgs.append(check_config(run_cfg, source=f"sweep {sweep['key']}={value!r}"))   # all checked first
    parent = os.path.join(cfg["output_dir"], cfg["exp_suffix"]) if cfg["exp_suffix"] else cfg["output_dir"]
    record = dict(cfg, sweep=sweep)
    sweep_file = os.path.join(parent, "sweep.yaml")
    if not (os.path.isfile(sweep_file) and read_yaml(sweep_file) == record
            and not os.path.isfile(os.path.join(parent, "sweep.png"))):
        parent, note = fresh_dir(parent, "output_dir")
        if note:
            log(f"note: {note}")
    log(f"sweep over {sweep['key']}: {len(run_cfgs)} runs in {parent}")
    results = []
    for run_cfg in run_cfgs:
        run_cfg.update(output_dir=parent)
        if model is None:
            model = load_segmenter(run_cfg["pretrained"], run_cfg["width_multiplier"], get_device(run_cfg["device"]))
        results.append(run_style_transfer(run_cfg, model, progress=progress, log=log))
    save_yaml(record, sweep_file)
    if cfg["pictures"]:
        log(f"sweep picture: {render_sweep(parent)}")
    return results


def render_sweep(parent):
    """sweep.png from a finished sweep folder (sweep.yaml, <key>_<i>/stylization_final.ply, metrics.yaml):
    the reference cloud (the content when the style weight is 0, else the style) and every result side by
    side, titled with the swept value and the measured Chamfer distance (start -> end). Returns the path."""
    record = read_yaml(os.path.join(parent, "sweep.yaml"))
    sweep = record["sweep"]
    key, label = _sweep_stat(record)
    ref_key = "content" if key == "chamfer_to_content" else "style"
    ref = load_shape(record[f"{ref_key}_shape"], record[f"{ref_key}_category"], record["num_points"],
                     np.random.default_rng(record["seed"]))
    panels = [dict(points=ref["points"].numpy(), colors=None if ref["labels"] is None else ref["labels"].numpy(),
                   title=f"{ref_key} (reference)")]
    for i, value in enumerate(sweep["values"]):
        folder = os.path.join(parent, f"{sweep['key']}_{i}")
        cloud = load_point_cloud(os.path.join(folder, "stylization_final.ply"))
        stats = read_yaml(os.path.join(folder, "metrics.yaml"))
        panels.append(dict(points=cloud["points"], colors=cloud["labels"],
                           title=f"{sweep['key']} {value}\n{label} {_stats_line(stats, key)}"))
    path = os.path.join(parent, "sweep.png")
    ncols = min(len(panels), 4)
    vis.save_panels_png(path, panels, ncols=ncols, panel_size=3.2)
    return path
