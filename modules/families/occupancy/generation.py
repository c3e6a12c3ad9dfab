"""The occupancy family's generator: encode each test cloud, extract the iso-surface with MISE or dense
marching cubes, write `surface_reconstruction.off` and a picture (registered for task `occupancy`).

Output layout (AIR-Nets): <exp>/evaluation_<ckpt>_@<spec>/generation/<synset>/<id>/surface_reconstruction.off
with <spec> = <mise_res>x<mise_steps> (MISE) or <mcubes_res> (dense). Next to `generation/`,
`generation_config.yaml` records the checkpoint, method, threshold and data.
"""
import os
import time

import numpy as np
import torch
from tqdm import tqdm

from modules.data.categories import SYNSET_TO_NAME, SYNSETS
from modules.data.ifnet import read_surface_samples
from modules.data.occupancy_datasets import draw_input_points, list_split, read_ground_truth_mesh, subset
from modules.data.onet import read_pointcloud_npz
from modules.geometry import mise
from modules.geometry.io import save_mesh, save_point_cloud
from modules.models.occupancy import OccupancyNetwork
from modules.utils import ShapeLabError
from modules.vis import save_panels_png

MISE_BOX = (-0.51, 0.51)        # AIR-Nets: box 1.02
MCUBES_BOX = (-0.501, 0.501)    # AIR-Nets: dense grid over [-0.501, 0.501]


def spec_string(method, mise_res=64, mise_steps=2, mcubes_res=128):
    if method == "mise":
        return f"{mise_res}x{mise_steps}"
    if method == "mcubes":
        return f"{mcubes_res}"
    raise ShapeLabError(f"-method {method}: expected mise or mcubes")


@torch.no_grad()
def reconstruct(model, points, method="mise", mise_res=64, mise_steps=2, mcubes_res=128, threshold=None,
                batch_points=400000, device="cpu"):
    """Mesh of one input cloud (N,3) -> (vertices (V,3) float32, faces (F,3) int64, seconds)."""
    threshold = model.threshold if threshold is None else float(threshold)
    if not 0.0 < threshold < 1.0:
        raise ShapeLabError(f"-threshold {threshold}: expected a probability in (0, 1)")
    logit_threshold = float(np.log(threshold / (1.0 - threshold)))
    start = time.perf_counter()
    x = torch.as_tensor(np.asarray(points, np.float32), device=device)[None]
    encoding = model.encode(x)

    def occupancy_logits(query):                      # query: (M,3) tensor on `device`
        return model.decode(query[None], encoding)[0]

    if method == "mise":
        vertices, faces, _ = mise.mise_extract(occupancy_logits, mise_res, mise_steps, logit_threshold,
                                               batch_points, MISE_BOX, device=device)
    elif method == "mcubes":
        vertices, faces, _ = mise.dense_extract(occupancy_logits, mcubes_res, logit_threshold, batch_points,
                                                MCUBES_BOX, device=device)
    else:
        raise ShapeLabError(f"-method {method}: expected mise or mcubes")
    return np.asarray(vertices, np.float32), np.asarray(faces, np.int64), time.perf_counter() - start


def generate(model, dataset, out_dir, method="mise", mise_res=64, mise_steps=2, mcubes_res=128, threshold=None,
             batch_points=400000, device="cpu", seed=0, pictures=True, overwrite=False, progress=True, log=print):
    """Reconstruct every item of `dataset` (an OccupancyDataset) into out_dir/generation/<synset>/<id>/.

    Existing meshes are skipped unless overwrite. A failing item is reported and skipped.
    Returns {"done": n, "skipped": n, "failed": [(item, message)], "seconds": [per object],
    "empty": [items whose mesh is empty: the predicted occupancy never crossed the threshold]}.
    """
    if len(dataset) == 0:
        raise ShapeLabError(f"no objects to generate: the '{dataset.split}' split of {dataset.root} is empty")
    gen_dir = os.path.join(out_dir, "generation")
    summary = {"done": 0, "skipped": 0, "failed": [], "seconds": [], "empty": []}
    for i in tqdm(range(len(dataset)), desc="generate", disable=not progress):
        synset, sid = dataset.items[i]
        obj_dir = os.path.join(gen_dir, synset, sid)
        mesh_path = os.path.join(obj_dir, "surface_reconstruction.off")
        if os.path.exists(mesh_path) and not overwrite:
            summary["skipped"] += 1
            continue
        try:
            points = dataset.input_points(i, np.random.RandomState(seed + i))
            vertices, faces, seconds = reconstruct(model, points, method, mise_res, mise_steps, mcubes_res,
                                                   threshold, batch_points, device)
            if len(faces) == 0:
                summary["empty"].append(f"{synset}/{sid}")
            save_point_cloud(os.path.join(obj_dir, "input_points.ply"), points)
            save_mesh(mesh_path, vertices, faces)
            if pictures:
                save_picture(os.path.join(obj_dir, "reconstruction.png"), points, vertices, faces,
                             _ground_truth_mesh(dataset, i), f"{SYNSET_TO_NAME.get(synset, synset)} {synset}/{sid}")
            summary["done"] += 1
            summary["seconds"].append(seconds)
        except ShapeLabError as err:
            log(f"error: {synset}/{sid}: {err} (skipped)")
            summary["failed"].append((f"{synset}/{sid}", str(err)))
    return summary


INPUT_FILES = {"onet": "pointcloud.npz", "ifnet": "surface_30000_samples.npy"}
SPLIT_FILES = {"onet": "<synset>/{split}.lst", "ifnet": "split.npz"}


class InputClouds:
    """The input clouds of a split: only what generation needs (ONet: pointcloud.npz; IF-Net:
    surface_30000_samples.npy), so a folder without points.npz / boundary samples works; without split
    files (.lst / split.npz) every <synset>/<id>/ folder holding the input file is taken, and `note` says so.
    Inputs are drawn as OccupancyDataset.input_points draws them (same seeds, same points)."""

    def __init__(self, fmt, root, split, categories=(), pc_samples=300, noise=0.0, max_items=0, max_per_class=0):
        if fmt not in INPUT_FILES:
            raise ShapeLabError(f"data.format '{fmt}': expected ifnet or onet")
        if not os.path.isdir(root):
            raise ShapeLabError(f"data.root {root}: folder not found (-data_root)")
        self.fmt, self.root, self.split, self.pc_samples, self.noise = fmt, root, split, pc_samples, noise
        self.note = None
        if self._has_split_files():
            self.items = list_split(fmt, root, split, categories)
        else:
            self.items = self._all_folders(categories)
            self.note = (f"{root} has no {SPLIT_FILES[fmt].format(split=split)} split file: using all "
                         f"{len(self.items)} shapes with a {INPUT_FILES[fmt]}")
        self.items = subset(self.items, max_per_class, max_items)

    def categories_present(self):
        """Sorted synsets of the items (compared with the checkpoint's train_categories by generate.py)."""
        return sorted({synset for synset, _ in self.items})

    def _has_split_files(self):
        if self.fmt == "ifnet":
            return os.path.isfile(os.path.join(self.root, "split.npz"))
        return any(os.path.isfile(os.path.join(self.root, d, f"{self.split}.lst")) for d in os.listdir(self.root))

    def _all_folders(self, categories):
        keep = {SYNSETS.get(str(c).lower(), str(c)) for c in categories or ()}
        items = []
        for synset in sorted(os.listdir(self.root)):
            if keep and synset not in keep or not os.path.isdir(os.path.join(self.root, synset)):
                continue
            for sid in sorted(os.listdir(os.path.join(self.root, synset))):
                if os.path.isfile(os.path.join(self.root, synset, sid, INPUT_FILES[self.fmt])):
                    items.append((synset, sid))
        return items

    def __len__(self):
        return len(self.items)

    def object_dir(self, i):
        synset, sid = self.items[i]
        return os.path.join(self.root, synset, sid)

    def input_points(self, i, rng=np.random):
        """(pc_samples,3) float32 input cloud of item i (noise added when data.noise > 0)."""
        path = os.path.join(self.object_dir(i), INPUT_FILES[self.fmt])
        surface = read_surface_samples(path) if self.fmt == "ifnet" else read_pointcloud_npz(path)[0]
        surface = np.asarray(surface, np.float32)
        if len(surface) < self.pc_samples:
            raise ShapeLabError(f"{path}: has {len(surface)} points, fewer than data.pc_samples={self.pc_samples}")
        return draw_input_points(surface, self.pc_samples, self.noise, rng)


def _ground_truth_mesh(dataset, i):
    d = dataset.object_dir(i)
    for name in ("isosurf_scaled.off", "model.off"):
        path = os.path.join(d, name)
        if os.path.isfile(path):
            return path
    return None


def save_picture(path, points, vertices, faces, gt_mesh_path=None, name=""):
    """Input points | reconstruction | ground truth, side by side (PNG); `name` (class, object id) titles it."""
    panels = [{"points": points, "title": f"input, {len(points)} points\n{name}" if name else "input"}]
    if len(faces):
        panels.append({"vertices": vertices, "faces": faces, "title": "reconstruction"})
    else:
        panels.append({"points": np.zeros((0, 3)), "title": "reconstruction\nEMPTY: never above the threshold"})
    if gt_mesh_path:
        gt = read_ground_truth_mesh(gt_mesh_path)   # canonical axes, as the reconstruction
        panels.append({"vertices": np.asarray(gt.vertices), "faces": np.asarray(gt.faces), "title": "ground truth"})
    save_panels_png(path, panels)


class OccupancyGenerator:
    """generate.py for task `occupancy`: options method, mise_res, mise_steps, mcubes_res, threshold,
    batch_points, seed, pictures, overwrite (generate.py's flags)."""

    def __init__(self, section):
        self.cfg = section["config"]      # the checkpoint's config

    def build_inputs(self, section, split):
        """What generate.py iterates over: the split's input clouds (see InputClouds)."""
        return InputClouds(section["format"], section["root"], split, section.get("categories") or (),
                           section["pc_samples"], section["noise"], section.get("max_items") or 0,
                           section.get("max_per_class") or 0)

    def spec(self, opts):
        return spec_string(opts["method"], opts["mise_res"], opts["mise_steps"], opts["mcubes_res"])

    def run(self, model, dataset, out_dir, opts, device):
        if not isinstance(model, OccupancyNetwork):
            raise ShapeLabError(f"the occupancy generator needs an occupancy network, got {type(model).__name__}")
        threshold = model.threshold if opts["threshold"] is None else opts["threshold"]
        with torch.no_grad():
            summary = generate(model, dataset, out_dir, opts["method"], opts["mise_res"], opts["mise_steps"],
                               opts["mcubes_res"], threshold, opts["batch_points"], device, opts["seed"],
                               opts["pictures"], opts["overwrite"])
        summary["info"] = {"threshold": float(threshold), "method": opts["method"], "batch_points": opts["batch_points"]}
        return summary
