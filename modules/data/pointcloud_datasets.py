"""Torch datasets over ShapeNet-Part files (real or the synthetic data in the same layout) for
PointNet part segmentation and shape classification. Files are read with modules.data.shapenet_part.

Each item is a cloud resampled to `num_points`, normalised to the unit sphere (centroid, max
radius 1, as PVCNN/PointNet), and in training optionally rotated about the canonical up axis (y) and
jittered with clipped Gaussian noise (the seed's classifier augmentation; charlesq34/pointnet's
provider.rotate_point_cloud turns about y "along up direction" by U[0, 2 pi), then N(0, 0.01^2) clipped
at 0.05). Files are read in ShapeNet-Part's frame (ShapeNet v1 axes, `shapenet_part.FRAME`, or `frame=`)
and turned into the canonical frame (y up, front +z) the models and shipped weights use.

Samples:
    seg: {"inputs": (3+16, N) float32 xyz + one-hot, "labels": (N,) int64 global part ids,
          "category": () int64 one-hot index 0-15}
    cls: {"points": (3, N) float32, "label": () int64 class index, "category": () int64}
"""
import os
import sys

import numpy as np
import torch

from modules.data import categories as cats
from modules.data import shapenet_part
from modules.geometry.frames import CANONICAL, rotation_about_axis, to_canonical_rotation
from modules.geometry.transforms import normalize_unit_sphere
from modules.utils import ShapeLabError


class ShapeNetPartDataset(torch.utils.data.Dataset):
    """ShapeNet-Part split as a dataset for `task` 'seg' or 'cls'.

    categories: names (or synsets) to keep, [] = all 16 ShapeNet-Part categories present. For
    'cls' the class index is the position in `categories` when given, else the 16-way index.
    Shapes of categories outside the 16 (the synthetic `human`) are skipped with a note; a shape
    whose files are missing or malformed is reported on stderr and skipped. frame: the files' frame (None:
    ShapeNet-Part's, `shapenet_part.FRAME`); rotate: random rotation about the canonical up axis in training.
    """

    def __init__(self, root, split="train", task="seg", num_points=2048, categories=(), rotate=False,
                 jitter_sigma=0.0, jitter_clip=0.05, augment=None, seed=0, frame=None):
        if task not in ("seg", "cls"):
            raise ShapeLabError(f"shapenet_part dataset: task must be 'seg' or 'cls', got {task!r}")
        if not os.path.isdir(root):
            out = os.path.dirname(os.path.normpath(root)) if os.path.basename(os.path.normpath(root)) == \
                "shapenet_part" else "data/synth_pointnet"
            raise ShapeLabError(f"ShapeNet-Part root not found: {root} (generate the synthetic data with "
                                f"`python preprocess.py synth --out {out} --formats shapenet_part --views 0`, or "
                                f"point data.root at the real shapenetcore_partanno_segmentation_benchmark_v0)")
        self.root, self.split, self.task = root, split, task
        self.num_points = int(num_points)
        self.augment = (split == "train") if augment is None else bool(augment)
        self.rotate, self.jitter_sigma, self.jitter_clip = bool(rotate), float(jitter_sigma), float(jitter_clip)
        self.seed = int(seed)
        self.frame = shapenet_part.FRAME if frame is None else frame
        to_canonical_rotation(self.frame)          # a bad frame fails here
        wanted = [cats.category_name(c) for c in categories] if categories else None
        if wanted:
            for name in wanted:
                cats.category_index(name)       # only the 16 ShapeNet-Part categories can be used
        self.class_names = wanted if wanted else list(cats.CATEGORIES)
        self.items, skipped_other = [], 0
        for synset, shape_id in shapenet_part.read_split(root, split):
            try:
                name = cats.category_name(synset)
            except ShapeLabError:
                print(f"warning: {root} split {split}: unknown synset {synset} ({shape_id}) skipped", file=sys.stderr)
                continue
            if name not in cats.CATEGORIES:
                skipped_other += 1
                continue
            if wanted and name not in wanted:
                continue
            try:
                shape = shapenet_part.read_shape(root, synset, shape_id, self.frame)
            except (ShapeLabError, OSError, ValueError) as err:
                print(f"warning: skipping corrupt shape {synset}/{shape_id}: {err}", file=sys.stderr)
                continue
            if len(shape["points"]) == 0:
                print(f"warning: skipping empty shape {synset}/{shape_id}", file=sys.stderr)
                continue
            self.items.append((shape["points"].astype(np.float32), shape["labels"].astype(np.int64), name, shape_id))
        if skipped_other:
            print(f"note: {root} split {split}: {skipped_other} shapes of non-ShapeNet-Part categories not used",
                  file=sys.stderr)
        if not self.items:
            raise ShapeLabError(f"{root}: split '{split}' has no usable shapes"
                                + (f" of categories {', '.join(wanted)}" if wanted else ""))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        points, labels, name, _ = self.items[index]
        if self.augment:
            rng = np.random.default_rng()
        else:       # evaluation: the same subsample every time
            rng = np.random.default_rng((self.seed, index))
        n = len(points)
        choice = rng.choice(n, self.num_points, replace=n < self.num_points)
        pts = normalize_unit_sphere(points[choice])
        if self.augment and self.rotate:
            pts = pts @ rotation_about_axis(rng.uniform(0, 2 * np.pi), CANONICAL[0]).T
        if self.augment and self.jitter_sigma > 0:
            pts = pts + np.clip(self.jitter_sigma * rng.standard_normal(pts.shape), -self.jitter_clip, self.jitter_clip)
        pts = torch.from_numpy(np.ascontiguousarray(pts, dtype=np.float32)).t()
        cat_index = cats.CATEGORIES.index(name)
        if self.task == "seg":
            one_hot = torch.zeros(cats.NUM_SHAPES, self.num_points)
            one_hot[cat_index] = 1.0
            return {"inputs": torch.cat([pts, one_hot], dim=0), "labels": torch.from_numpy(labels[choice]),
                    "category": torch.tensor(cat_index)}
        return {"points": pts, "label": torch.tensor(self.class_names.index(name)),
                "category": torch.tensor(cat_index)}
