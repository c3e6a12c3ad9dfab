"""Occupancy training data from the Occupancy Networks layout and the IF-Net / AIR-Nets layout.

One sample: `inputs` (pc_samples,3) surface points (+ optional Gaussian noise), `points`
(npoints_decoder,3) query points drawn with replacement and their 0/1 labels `occ`, as AIR-Nets:
- format `ifnet`: half the queries from boundary_0.1_samples.npz, half from boundary_0.01_samples.npz;
  inputs from surface_30000_samples.npy; splits from split.npz.
- format `onet`: queries uniform from points.npz (100k points in the padded box; 1e-4 jitter
  against the float16 grid, as AIR-Nets); inputs from pointcloud.npz; splits from <synset>/<split>.lst.
Validation samples of the `onet` format add `points_iou`/`occ_iou`: `iou_points` uniform points for
the volumetric IoU. The synthetic data (`preprocess.py synth`) writes both layouts.

Frames: both layouts' files are in ShapeNet v1 axes (y up, front +x; `onet.FRAME`, `ifnet.FRAME`, as the
real data); the readers turn them into the canonical frame (y up, front +z) the models and the shipped
weights use. `frame=` (config `data.up` / `data.front`) names another frame of a user's files.
No rotation augmentation: ONet, IF-Net and AIR-Nets train on the aligned shapes as stored.

Input points are drawn without replacement (the encoders' FPS and kNN assume distinct points).
Randomness comes from NumPy's global RNG, which the engine seeds per sample.
"""
import collections
import os

import numpy as np
import torch

from modules.data.categories import SYNSETS
from modules.data import ifnet, onet
from modules.data.ifnet import read_boundary_samples, read_split_npz, read_surface_samples
from modules.data.onet import read_pointcloud_npz, read_points_npz, read_split
from modules.geometry.frames import to_canonical_rotation
from modules.utils import ShapeLabError

def _synset_filter(categories):
    if not categories:
        return None
    return {SYNSETS.get(str(c).lower(), str(c)) for c in categories}


def list_split(fmt, root, split, categories=()):
    """[(synset, id)] of a split in the ONet (*.lst) or IF-Net (split.npz) layout."""
    if not os.path.isdir(root):
        raise ShapeLabError(f"data.root {root}: folder not found (generate it with `python preprocess.py synth`)")
    if fmt == "onet":
        items = [tuple(x) for x in read_split(root, split)]
    elif fmt == "ifnet":
        splits = read_split_npz(os.path.join(root, "split.npz"))
        if split not in splits:
            raise ShapeLabError(f"{os.path.join(root, 'split.npz')}: no '{split}' array (has {', '.join(splits)})")
        items = [tuple(str(x).strip("/").split("/")[-2:]) for x in splits[split]]
    else:
        raise ShapeLabError(f"data.format '{fmt}': expected 'ifnet' or 'onet'")
    keep = _synset_filter(categories)
    return [it for it in items if keep is None or it[0] in keep]


def read_ground_truth_mesh(path):
    """An ONet `model.off` or IF-Net `isosurf_scaled.off` (both stored in ShapeNet v1 axes, as the real
    releases) as a trimesh in the canonical frame."""
    return (onet.read_mesh if os.path.basename(path) == "model.off" else ifnet.read_mesh)(path)


def draw_input_points(surface, n, noise, rng):
    """n distinct points of the (M,3) surface samples (+ N(0, noise²) when noise > 0), float32: the input cloud
    of training and of generation alike (same rng, same points)."""
    pts = surface[rng.choice(len(surface), n, replace=False)]
    if noise > 0:
        pts = pts + noise * rng.standard_normal(pts.shape).astype(np.float32)
    return pts.astype(np.float32)


def subset(items, max_per_class=0, max_items=0):
    """The first max_per_class (synset, id) items of each class, in split order (a subset that still covers
    every class), then the first max_items of those (0: no limit)."""
    if max_per_class:
        seen, kept = collections.Counter(), []
        for synset, sid in items:
            seen[synset] += 1
            if seen[synset] <= max_per_class:
                kept.append((synset, sid))
        items = kept
    return items[:max_items] if max_items else items


class OccupancyDataset(torch.utils.data.Dataset):
    def __init__(self, fmt, root, split, categories=(), pc_samples=300, npoints_decoder=1000, noise=0.0,
                 iou_points=10000, max_items=0, cache=True, max_per_class=0, frame=None):
        self.fmt, self.root, self.split = fmt, root, split
        # the files' frame (None: the layout's real dataset); samples are always canonical
        self.frame = {"onet": onet.FRAME, "ifnet": ifnet.FRAME}.get(fmt) if frame is None else frame
        to_canonical_rotation(self.frame)
        self.pc_samples, self.npoints_decoder, self.noise = pc_samples, npoints_decoder, noise
        self.iou_points = iou_points if split != "train" else 0
        self.items = list_split(fmt, root, split, categories)
        self.items = subset(self.items, max_per_class, max_items)
        self.cache = {} if cache else None

    def __len__(self):
        return len(self.items)

    def categories_present(self):
        """Sorted synsets of the items (the engine stores them with a checkpoint as train_categories)."""
        return sorted({synset for synset, _ in self.items})

    def object_dir(self, i):
        synset, sid = self.items[i]
        return os.path.join(self.root, synset, sid)

    def _arrays(self, i):
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        d = self.object_dir(i)
        if self.fmt == "ifnet":
            surface = read_surface_samples(os.path.join(d, "surface_30000_samples.npy"), self.frame)
            queries = [read_boundary_samples(os.path.join(d, f"boundary_{s}_samples.npz"), self.frame)
                       for s in ("0.1", "0.01")]
        else:
            surface = read_pointcloud_npz(os.path.join(d, "pointcloud.npz"), self.frame)[0]
            queries = [read_points_npz(os.path.join(d, "points.npz"), self.frame)]
        arrays = {"surface": np.asarray(surface, np.float32),
                  "queries": [(np.asarray(p, np.float32), np.asarray(o, bool)) for p, o in queries]}
        if len(arrays["surface"]) < self.pc_samples:
            raise ShapeLabError(f"{d}: has {len(arrays['surface'])} surface points, fewer than "
                                f"data.pc_samples={self.pc_samples}")
        if self.cache is not None:
            self.cache[i] = arrays
        return arrays

    def input_points(self, i, rng=np.random):
        """(pc_samples,3) float32 input cloud of item i (noise added when data.noise > 0)."""
        return draw_input_points(self._arrays(i)["surface"], self.pc_samples, self.noise, rng)

    def __getitem__(self, i):
        arrays = self._arrays(i)
        sample = {"inputs": torch.from_numpy(self.input_points(i))}
        groups = arrays["queries"]
        counts = [self.npoints_decoder // len(groups)] * len(groups)
        counts[0] += self.npoints_decoder - sum(counts)
        pts, occ = [], []
        for (p, o), n in zip(groups, counts):
            idx = np.random.randint(0, len(p), n)
            pts.append(p[idx])
            occ.append(o[idx])
        pts = np.concatenate(pts)
        if self.fmt == "onet":
            pts = pts + 1e-4 * np.random.standard_normal(pts.shape).astype(np.float32)
        sample["points"] = torch.from_numpy(pts.astype(np.float32))
        sample["occ"] = torch.from_numpy(np.concatenate(occ).astype(np.float32))
        if self.iou_points and self.fmt == "onet":
            p, o = groups[0]
            idx = np.random.choice(len(p), min(self.iou_points, len(p)), replace=False)
            sample["points_iou"] = torch.from_numpy(p[idx])
            sample["occ_iou"] = torch.from_numpy(o[idx].astype(np.float32))
        return sample
