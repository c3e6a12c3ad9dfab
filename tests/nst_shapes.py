"""Tiny labelled chair / table / lamp clouds (boxes) in the ShapeNet-Part layout, for the NST and
DeepDream tests. Not a data set: just enough geometry for the optimisation to have something to do."""
import numpy as np

from modules.data import categories
from modules.data.shapenet_part import shape_paths, write_shape


def _box(rng, n, lo, hi):
    return rng.uniform(lo, hi, size=(n, 3))


def chair(rng, n=600):
    """Back 12, seat 13, legs 14 (global ids)."""
    k = n // 6
    parts = [(_box(rng, 2 * k, (-0.5, 0.45, -0.5), (0.5, 0.55, 0.5)), 13),
             (_box(rng, 2 * k, (-0.5, 0.55, 0.4), (0.5, 1.4, 0.5)), 12)]
    for sx in (-0.45, 0.45):
        for sz in (-0.45, 0.45):
            parts.append((_box(rng, k // 2, (sx - 0.04, 0.0, sz - 0.04), (sx + 0.04, 0.45, sz + 0.04)), 14))
    return np.concatenate([p for p, _ in parts]), np.concatenate([np.full(len(p), l) for p, l in parts])


def table(rng, n=600):
    """Desktop 47, legs 48."""
    k = n // 6
    parts = [(_box(rng, 4 * k, (-0.8, 0.7, -0.5), (0.8, 0.78, 0.5)), 47)]
    for sx in (-0.7, 0.7):
        for sz in (-0.4, 0.4):
            parts.append((_box(rng, k // 2, (sx - 0.05, 0.0, sz - 0.05), (sx + 0.05, 0.7, sz + 0.05)), 48))
    return np.concatenate([p for p, _ in parts]), np.concatenate([np.full(len(p), l) for p, l in parts])


def write_pair(root, seed=0):
    """Write one chair and one table; returns (chair .pts path, table .pts path)."""
    rng = np.random.default_rng(seed)
    out = []
    for name, make in (("chair", chair), ("table", table)):
        pts, labels = make(rng)
        synset = categories.SYNSETS[name]
        write_shape(str(root), synset, f"{name}{seed}", pts.astype(np.float32), labels)
        out.append(shape_paths(str(root), synset, f"{name}{seed}")[0])
    return out
