"""The one way the PointNet tools (attribution.py, deepdream3d.py, run_nst.py, benchmarks) get a trained
segmenter or classifier. Weights go through modules.engine.checkpoint.load_weights (strict,
weights_only=True, `module.` prefixes of PVCNN's checkpoint stripped, fp16 release files cast).

`pretrained` is one of: "auto" (pretrained_models/pointnet_{seg,cls}.pt when present, else a random
network with a warning), "default" (that file, which must exist), "none" (a random network, with a
warning), or a path.
"""
import os
import warnings

from modules.data import categories as cats
from modules.engine.checkpoint import torch_load, load_weights
from modules.models.pointnet import PointNetCls, PointNetPartSeg
from modules.utils import ROOT, ShapeLabError

DEFAULT_SEG_WEIGHTS = os.path.join(ROOT, "pretrained_models", "pointnet_seg.pt")
DEFAULT_CLS_WEIGHTS = os.path.join(ROOT, "pretrained_models", "pointnet_cls.pt")


def resolve_weights(pretrained, default_path):
    """-> a weights path, or None for a randomly initialised network (with a warning)."""
    if pretrained in (None, "", "none", "None"):
        warnings.warn("no pretrained weights: using a randomly initialised network (give --pretrained PATH "
                      "for meaningful results)")
        return None
    if pretrained in ("auto", "default"):
        if os.path.isfile(default_path):
            return default_path
        if pretrained == "default":
            raise ShapeLabError(f"pretrained weights not found: {default_path}")
        warnings.warn(f"{default_path} not found: using a randomly initialised network "
                      "(give --pretrained PATH for meaningful results)")
        return None
    if not os.path.isfile(pretrained):
        hint = ""
        if "shapenet.pointnet" in os.path.basename(str(pretrained)):   # the seed's names (PVCNN's file, its copy)
            hint = (f" (PVCNN's checkpoint, not shipped: download it and give its path, or use ours, the default: "
                    f"{os.path.relpath(default_path, os.getcwd())}, e.g. leave the flag out)")
        raise ShapeLabError(f"pretrained: checkpoint not found: {pretrained}{hint}")
    return pretrained


def describe_weights(model):
    """One line for the tools' run summaries: which weights the network has."""
    path = getattr(model, "weights_path", None)
    return f"weights {os.path.relpath(path, os.getcwd())}" if path else "RANDOM weights (no pretrained file)"


def _file_meta(path):
    """Options stored beside the weights in our release files (width, class names); {} for others."""
    if path is None:
        return {}
    state = torch_load(path)
    return state if isinstance(state, dict) and isinstance(state.get("model"), dict) else {}


def load_segmenter(pretrained="auto", width_multiplier=None, device="cpu", frozen=True):
    """PointNetPartSeg in eval mode (parameters frozen unless frozen=False). The width multiplier comes
    from the weights file when it records one, else `width_multiplier` (default 1.0)."""
    path = resolve_weights(pretrained, DEFAULT_SEG_WEIGHTS)
    meta = _file_meta(path)
    width = float(meta.get("width_multiplier", width_multiplier or 1.0))
    model = PointNetPartSeg(num_classes=cats.NUM_PART_CLASSES, num_shapes=cats.NUM_SHAPES, width_multiplier=width)
    if path is not None:
        load_weights(model, meta or path, f"segmenter weights {path}")
    model.weights_path = path            # what the tools print: the file used, None = random weights
    model.to(device).eval()
    if frozen:
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def load_classifier(pretrained="auto", device="cpu"):
    """-> (PointNetCls in eval mode, class names). Our classifier files store `class_names` and the width."""
    path = resolve_weights(pretrained, DEFAULT_CLS_WEIGHTS)
    meta = _file_meta(path)
    names = list(meta.get("class_names", cats.CATEGORIES))
    model = PointNetCls(num_classes=len(names), width_multiplier=float(meta.get("width_multiplier", 1.0)))
    if path is not None:
        load_weights(model, meta or path, f"classifier weights {path}")
    model.weights_path = path
    return model.to(device).eval(), names
