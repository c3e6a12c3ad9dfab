"""Training samples of Neural Parts: an input render, target surface points with normals, and volume points
with the original's "equal" in/out sampling and importance weights.

Built on `modules.data.fields.FieldsDataset` over the humans (DFAUST-style) or onet (objects) layout. Part
labels are not used: unlabelled humans (real bodies, `preprocess.py mesh --formats humans`, DFAUST) train the
same way as the embedded, labelled ones.
"""
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from modules.data import humans
from modules.data.fields import FieldsDataset, ImagesField, PointCloudField, PointsField, collate_fields
from modules.utils import ShapeLabError

LAYOUTS = ("humans", "onet")
SAMPLINGS = ("equal", "uniform")


def equal_volume_sample(points, occ, n, rng):
    """The original's "equal" volume sampling (neural_parts `datasets/transforms.py`).

    points (N,3), occ (N,) in {0,1}. Draws n indices (with replacement) with p_i proportional to
    n_out for inside points and n_in for outside ones (half in, half out on average) and returns
    (points (n,3), occ (n,), weights (n,)) with weight = (1/N) / p_i, so that a weighted mean over the
    sample estimates the mean over all N points (weights average 1). All-in or all-out: uniform, weight 1.
    """
    occ = np.asarray(occ, np.float64).reshape(-1)
    N = len(occ)
    n_in = occ.sum()
    n_out = N - n_in
    if n_in == 0 or n_out == 0:
        p = np.full(N, 1.0 / N)
    else:
        p = n_out * occ + n_in * (1 - occ)
        p = p / p.sum()
    idx = rng.choice(N, int(n), replace=True, p=p)
    w = (1.0 / N) / p[idx]
    return points[idx], occ[idx].astype(np.float32), w.astype(np.float32)


class NeuralPartsDataset(Dataset):
    """Samples {"image" (3,S,S) in [0,1], "surface_points" (n_surface,3), "surface_normals" (n_surface,3),
    "points" (n_volume,3), "occ" (n_volume,), "weights" (n_volume,), "idx", "category", "model", and the
    input camera "image.K" (3,3) pixels, "image.R" (3,3), "image.t" (3,) (world->camera, OpenCV)}.

    root/layout: a humans root (d-faust_splits.csv, <sequence>/...) or an onet root (<synset>/<id>/ with
    img_choy2016/, pointcloud.npz, points.npz). train: random draws from NumPy's global RNG (which the
    engine seeds); otherwise each index draws from a generator seeded by (eval_seed, index), so
    evaluation is reproducible.
    """

    def __init__(self, root, layout="humans", split="train", image_size=224, n_surface=1500, n_volume=5000,
                 volume_sampling="equal", categories=None, max_items=0, train=None, eval_seed=0):
        if layout not in LAYOUTS:
            raise ShapeLabError(f"data.layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
        if volume_sampling not in SAMPLINGS:
            raise ShapeLabError(f"data.volume_sampling {volume_sampling!r}: expected one of {', '.join(SAMPLINGS)}")
        if int(n_surface) < 1 or int(n_volume) < 1:
            raise ShapeLabError(f"data.n_surface={n_surface}, data.n_volume={n_volume}: expected positive counts")
        self.train = (split == "train") if train is None else bool(train)
        self.inner = FieldsDataset(root, layout, split, [ImagesField("RGB", size=image_size),
                                                         PointCloudField(n=int(n_surface), with_normals=True),
                                                         PointsField(n=None)],
                                   train=self.train, seed=None if self.train else eval_seed,
                                   categories=(categories or None) if layout == "onet" else None)
        self.n_volume, self.sampling, self.eval_seed = int(n_volume), volume_sampling, int(eval_seed)
        self.layout, self.split, self.root = layout, split, self.inner.root
        self.size = len(self.inner) if not max_items else min(int(max_items), len(self.inner))
        if layout == "humans":      # renders are optional in the layout (--views 0) but Neural Parts' input
            it = self.inner.items[0]
            render = humans.frame_paths(it.root, it.group, int(it.name))["render"]
            if not os.path.isfile(render):
                raise ShapeLabError(f"{render}: input render not found; Neural Parts learns from the renders "
                                    f"(write them with preprocess.py --views 1 or more)")

    @property
    def items(self):
        return self.inner.items[:self.size]

    def __len__(self):
        return self.size

    def rng(self, idx):
        if self.train:
            return np.random.default_rng(np.random.randint(0, 2 ** 31 - 1))
        return np.random.default_rng([self.eval_seed, 7, int(idx)])

    def __getitem__(self, idx):
        s = self.inner[idx]
        pts, occ = s["points"].numpy(), s["points.occ"].numpy()
        rng = self.rng(idx)
        if self.sampling == "equal":
            p, o, w = equal_volume_sample(pts, occ, self.n_volume, rng)
        else:
            sel = rng.choice(len(pts), self.n_volume, replace=len(pts) < self.n_volume)
            p, o, w = pts[sel], occ[sel].astype(np.float32), np.ones(self.n_volume, np.float32)
        return {"image": s["image"], "surface_points": s["pointcloud"], "surface_normals": s["pointcloud.normals"],
                "points": torch.from_numpy(np.ascontiguousarray(p, np.float32)), "occ": torch.from_numpy(o),
                "weights": torch.from_numpy(w), "idx": idx, "category": s["category"], "model": s["model"],
                **{k: s[k] for k in ("image.K", "image.R", "image.t") if k in s}}

    collate = staticmethod(collate_fields)
