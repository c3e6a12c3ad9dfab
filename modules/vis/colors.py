"""Colour maps shared by every picture: stable part colours and signed attribution colours."""
import colorsys

import numpy as np
from matplotlib.colors import LinearSegmentedColormap

from modules.utils import ShapeLabError

# 50 ShapeNet-Part global part ids get fixed colours, so "chair leg" (id 14) has the same colour in
# every figure of every shape. Id i uses tab10 colour i % 10 at shade i // 10 (as is, darker,
# lighter, ...): the parts of one category (at most 6 consecutive ids) always get distinct hues.
_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf"]
_SHADES = [(1.0, 0.0), (0.7, 0.0), (0.6, 0.4), (0.5, 0.0), (0.8, 0.2)]  # (scale, mix with white)


def _hex_to_rgb(h):
    return [int(h[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]


PART_PALETTE = np.array([np.array(_hex_to_rgb(_TAB10[i % 10])) * s + w
                         for i, (s, w) in ((i, _SHADES[i // 10]) for i in range(50))])  # (50, 3)
UNLABELLED_COLOR = np.array([0.6, 0.6, 0.6])   # negative ids (e.g. -1 = ignore)
NEUTRAL_COLOR = np.array([0.8, 0.8, 0.8])      # zero attribution


def _extra_color(label):
    """Ids >= 50 (primitives, clusters): golden-ratio hue steps, deterministic per id."""
    hue = (0.13 + 0.618033988749895 * (label - 50)) % 1.0
    return np.array(colorsys.hsv_to_rgb(hue, 0.75, 0.9))


def part_colors(labels):
    """(N,) integer part ids -> (N,3) float RGB in [0,1].

    Ids 0-49 use a fixed palette (ShapeNet-Part global ids), ids >= 50 get deterministic
    golden-ratio hues, negative ids are grey.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ShapeLabError(f"part_colors: labels must be 1-D (N,), got shape {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ShapeLabError("part_colors: labels must be integer part ids")
        labels = labels.astype(np.int64)
    out = np.empty((labels.shape[0], 3), dtype=np.float64)
    known = (labels >= 0) & (labels < len(PART_PALETTE))
    out[known] = PART_PALETTE[labels[known]]
    out[labels < 0] = UNLABELLED_COLOR
    for lab in np.unique(labels[labels >= len(PART_PALETTE)]):
        out[labels == lab] = _extra_color(int(lab))
    return out


def attribution_colors(values, mode="negpos", scale=None):
    """(N,) attribution values -> (N,3) float RGB in [0,1].

    mode="negpos": grey at zero, towards red for positive and blue for negative values,
    scaled by `scale` (default max |value|, so the strongest point is pure red or pure blue;
    values beyond a smaller scale saturate).
    mode="magnitude": grey to red by |value| / scale.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ShapeLabError(f"attribution_colors: values must be 1-D (N,), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ShapeLabError("attribution_colors: values contain NaN or inf")
    if mode not in ("negpos", "magnitude"):
        raise ShapeLabError(f"attribution_colors: mode must be 'negpos' or 'magnitude', got {mode!r}")
    scale = attribution_scale(values) if scale is None else float(scale)
    a = np.clip(values / scale, -1, 1) if scale > 0 else np.zeros_like(values)
    red, blue = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    if mode == "magnitude":
        m = np.abs(a)[:, None]
        return (1 - m) * NEUTRAL_COLOR + m * red
    pos = np.clip(a, 0, 1)[:, None]
    neg = np.clip(-a, 0, 1)[:, None]
    return (1 - pos - neg) * NEUTRAL_COLOR + pos * red + neg * blue


def attribution_scale(values, percentile=100.0):
    """The value attribution_colors maps to full red by default: max |value| (0 for an empty or all-zero
    map); with percentile < 100 that percentile of |value| (a robust scale: a few extreme points saturate
    instead of turning every other point grey)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.percentile(np.abs(values), percentile)) if values.size else 0.0


def attribution_colormap(mode="negpos"):
    """The matplotlib colormap equivalent of attribution_colors, for colour bars: on [-s, s] (negpos:
    blue - grey - red) or [0, s] (magnitude: grey - red), s = attribution_scale(values)."""
    if mode == "negpos":
        return LinearSegmentedColormap.from_list("negpos", [(0, 0, 1), tuple(NEUTRAL_COLOR), (1, 0, 0)])
    if mode == "magnitude":
        return LinearSegmentedColormap.from_list("magnitude", [tuple(NEUTRAL_COLOR), (1, 0, 0)])
    raise ShapeLabError(f"attribution_colormap: mode must be 'negpos' or 'magnitude', got {mode!r}")
