"""The single-view family's data and training task: images (R2N2 renders or ONet's img_choy2016) with the ground
truth each decoder needs, and one Task whose loss follows the model's decoder type (the seed's train_model.py).

Batches (dicts; `collate_fields` keeps meshes as lists):
  image (B,3,S,S) in [0,1] (S = data.image_size), voxels (B,32,32,32), pointcloud (B,n_points,3)
  (+ pointcloud.normals), points (B,Q,3) + points.occ (B,Q), mesh.vertices / mesh.faces (lists), category, model.
"""
import os
import re

import numpy as np
import torch
from PIL import Image

from modules.data import categories as cats
from modules.data import r2n2
from modules.data.fields import (FieldsDataset, ImagesField, MeshField, PointCloudField, PointsField, VoxelsField,
                                 collate_fields)
from modules.engine.task import Task
from modules.families.svr.generation import picture_panels, voxel_mesh
from modules.geometry.voxels import points_to_cells
from modules.losses.svr import chamfer_loss, implicit_loss, mesh_fit_loss, voxel_loss
from modules.metrics import eval_pointcloud, occupancy_iou, sample_mesh_surface
from modules.utils import ShapeLabError
from modules.vis import save_panels_png

TARGETS = ("voxels", "pointcloud", "points", "mesh")
QUERY_BOX = 0.55          # ONet's points.npz box [-0.55, 0.55]^3 (padding 0.1)
NEEDS = {"vox": "voxels", "point": "pointcloud", "mesh": "pointcloud", "parametric": "pointcloud",
         "implicit": "points"}


def synset_of(category):
    """A category name ('chair') or a synset ('03001627', also ones outside ShapeNet-Part) -> synset."""
    text = str(category).strip()
    if re.fullmatch(r"\d{8}", text):
        return text
    return cats.SYNSETS[cats.category_name(text)]


class SingleViewDataset(torch.utils.data.Dataset):
    """A FieldsDataset (modules.data.fields) of one image per item plus the requested targets.

    format "r2n2": ShapeNetRendering/<synset>/<id>/rendering/NN.png, ShapeNetVox32, ShapeNetCore.v1 meshes,
    split.json; "onet": <synset>/<id>/img_choy2016/NNN.jpg, pointcloud.npz, points.npz, model.binvox, model.off.
    The R2N2 layout has no points.npz: target "points" there is `n_queries` uniform points in ONet's box
    [-0.55,0.55]^3 labelled by the 32^3 voxel grid (cell lookup; outside [-0.5,0.5]^3 is empty), documented
    as the coarser stand-in. Images: RGBA renders are composited on white, grey is made RGB, and every image is
    resized to image_size x image_size (antialiased), so a view of another size or channel count is converted,
    not refused.
    """

    def __init__(self, fmt, root, split, categories=(), targets=("pointcloud",), image_size=137, n_points=1000,
                 n_queries=2048, eval_view=0, max_items=0, max_per_class=0, train=None, seed=None):
        if fmt not in ("r2n2", "onet"):
            raise ShapeLabError(f"data.format {fmt!r}: expected r2n2 or onet")
        targets = list(targets)
        bad = [t for t in targets if t not in TARGETS]
        if bad:
            raise ShapeLabError(f"data.targets {bad}: expected any of {', '.join(TARGETS)}")
        for key, value in (("n_points", n_points), ("n_queries", n_queries), ("image_size", image_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ShapeLabError(f"data.{key}={value!r}: expected a positive integer")
        if image_size < 32:
            raise ShapeLabError(f"data.image_size={image_size}: expected >= 32 (the ResNet downsamples 32x)")
        if not os.path.isdir(root):
            raise ShapeLabError(f"data.root {root}: no such folder (make it with `preprocess.py synth --out ...`)")
        self.format, self.root, self.split, self.targets = fmt, root, split, targets
        self.n_queries = n_queries
        fields = [ImagesField(channels="RGB", size=image_size, with_camera=False)]
        self.voxels_from_grid = "points" in targets and fmt == "r2n2"
        if "voxels" in targets or self.voxels_from_grid:
            fields.append(VoxelsField())
        if "pointcloud" in targets:
            fields.append(PointCloudField(n=n_points, n_mesh_samples=n_points))
        if "points" in targets and fmt == "onet":
            fields.append(PointsField(n=n_queries))
        if "mesh" in targets:
            fields.append(MeshField())
        synsets = [synset_of(c) for c in categories] if categories else None
        self.fields = FieldsDataset(root, fmt, split, fields, train=train, seed=seed, categories=synsets,
                                    eval_view=eval_view)
        items = self.fields.items
        if max_per_class:
            kept, count = [], {}
            for it in items:
                count[it.group] = count.get(it.group, 0) + 1
                if count[it.group] <= max_per_class:
                    kept.append(it)
            items = kept
        if max_items:
            items = items[:max_items]
        self.fields.items = items
        self.train = self.fields.train
        self.check_views()

    def check_views(self):
        """Refuse (before anything is written) an item whose allowed views are not all on disk."""
        missing = []
        for it in self.fields.items:
            for v in self.fields.views(it):
                path = r2n2.image_path(it.root, it.group, it.name, v) if it.layout == "r2n2" else \
                    os.path.join(it.dir(), "img_choy2016", f"{v:03d}.jpg")
                if not os.path.isfile(path):
                    missing.append(path)
        if missing:
            raise ShapeLabError(f"{self.root}: {len(missing)} view image(s) of the '{self.split}' split are missing, "
                                f"e.g. {missing[0]} (re-render the item or drop the view from the split file)")

    @property
    def items(self):
        return self.fields.items

    def __len__(self):
        return len(self.fields)

    def __getitem__(self, idx):
        try:
            sample = self.fields[idx]
        except FileNotFoundError as err:
            item = self.fields.items[idx]
            raise ShapeLabError(f"{item}: missing file {err.filename}") from None
        if self.voxels_from_grid:
            grid = sample["voxels"] if "voxels" in self.targets else sample.pop("voxels")
            rng = np.random if self.train else np.random.default_rng(idx)
            pts = rng.uniform(-QUERY_BOX, QUERY_BOX, size=(self.n_queries, 3)).astype(np.float32)
            cells, inside = points_to_cells(pts, grid.shape[0])
            cells = np.clip(cells, 0, grid.shape[0] - 1)
            occ = grid.numpy()[cells[:, 0], cells[:, 1], cells[:, 2]] * inside
            sample["points"] = torch.from_numpy(pts)
            sample["points.occ"] = torch.from_numpy(occ.astype(np.float32))
        return sample

    collate = staticmethod(collate_fields)

    def object_key(self, idx):
        it = self.fields.items[idx]
        return it.group, it.name


def build_dataset(cfg, split):
    """DATASETS builder `svr` (cfg: the data section, see config.DATA)."""
    return SingleViewDataset(cfg["format"], cfg["root"], split, cfg.get("categories") or (),
                             cfg.get("targets") or ["pointcloud"], cfg["image_size"], cfg["n_points"],
                             cfg["n_queries"], cfg["eval_view"], cfg.get("max_items") or 0,
                             cfg.get("max_per_class") or 0)


def _need(batch, key, model_type):
    if key not in batch:
        raise ShapeLabError(f"a '{model_type}' model trains on '{key}': add it to data.targets "
                            f"(got {', '.join(k for k in batch if '.' not in k)})")
    return batch[key]


def prediction_points(model, output, n_points, generator=None):
    """Surface points of one prediction for metrics -> (points (n,3) float64, normals (n,3) or None).

    output: the model's output for ONE sample (vox: (R,R,R) logits; point/parametric: (N,3); mesh: (V,3)
    vertices). Voxels are meshed by marching cubes of the probabilities at the model's threshold over the cell
    centres (cell i at -0.5 + (i+0.5)/R), then sampled; an empty prediction gives (0,3).
    """
    t = model.type
    if t in ("point", "parametric"):
        return output.detach().cpu().double().numpy(), None
    if t == "mesh":
        v, f = output.detach().cpu().numpy(), model.faces.cpu().numpy()
    elif t == "vox":
        v, f = voxel_mesh(torch.sigmoid(output).detach().cpu().numpy(), model.threshold)
    else:
        raise ShapeLabError(f"prediction_points: a '{t}' output is not a surface (mesh it first)")
    if len(f) == 0:
        return np.zeros((0, 3)), None
    pts, nrm = sample_mesh_surface(v, f, n_points, seed=0 if generator is None else generator)
    return pts, nrm


class SingleViewTask(Task):
    """The seed's losses by decoder type: vox BCE on logits; point / parametric Chamfer against the sampled
    ground-truth cloud; mesh w_chamfer Chamfer(samples of the predicted mesh, gt) + w_smooth uniform Laplacian
    (+ w_edge, w_normal); implicit BCE at the query points (ONet).

    Validation: loss, `f1@0.05` (the seed's definition, modules.metrics.eval_pointcloud; vox via marching cubes;
    not for implicit, whose meshes need MISE: see evaluate), `iou` for vox (32^3 grid) and implicit (query
    points). log_visuals writes input | prediction | ground truth of the first validation batch to
    <exp>/visuals/ and TensorBoard (every training.val_every steps: the seed's --vis_freq).
    """

    def loss(self, model, batch):
        images = batch["image"]
        t = model.type
        if t == "vox":
            return voxel_loss(model(images), _need(batch, "voxels", t)), {}
        if t in ("point", "parametric"):
            gt = _need(batch, "pointcloud", t)
            return chamfer_loss(model(images), gt), {}
        if t == "mesh":
            gt = _need(batch, "pointcloud", t)
            c = self.cfg
            loss, terms = mesh_fit_loss(model(images), model.faces, gt, c["mesh_samples"] or gt.shape[1],
                                        c["w_chamfer"], c["w_smooth"], c["w_edge"], c["w_normal"])
            return loss, {k: float(v) for k, v in terms.items()}
        if t == "implicit":
            queries = _need(batch, "points", t)
            return implicit_loss(model(images, queries=queries), batch["points.occ"]), {}
        raise ShapeLabError(f"unknown model type {t!r}")

    def validate(self, model, batch):
        loss, _ = self.loss(model, batch)
        out = {"loss": float(loss)}
        t = model.type
        images = batch["image"]
        if t == "implicit":
            logits = model(images, queries=batch["points"])
            occ = batch["points.occ"] > 0.5
            out["iou"] = float(occupancy_iou(logits > model.logit_threshold, occ).mean())
            return out
        pred = model(images)
        if t == "vox":
            occ = batch["voxels"] > 0.5
            out["iou"] = float(occupancy_iou((pred > model.logit_threshold).flatten(1), occ.flatten(1)).mean())
        gt = batch["pointcloud"]
        n = self.cfg["val_f1_points"] or gt.shape[1]
        f1 = []
        for b in range(gt.shape[0]):
            pts, _ = prediction_points(model, pred[b], n)
            f1.append(eval_pointcloud(pts, gt[b].cpu().double().numpy())["f1@0.05"] if len(pts) else 0.0)
        out["f1@0.05"] = float(np.mean(f1))
        return out

    def log_visuals(self, writer, model, batch, step):
        with torch.no_grad():
            sample = {k: (v[0] if torch.is_tensor(v) or isinstance(v, list) else v) for k, v in batch.items()}
            panels = picture_panels(model, sample, n_points=2000)
        path = os.path.join(os.path.dirname(writer.log_dir.rstrip(os.sep)), "visuals", f"step_{step:07d}.png")
        save_panels_png(path, panels, panel_size=2.5)
        with Image.open(path) as im:
            writer.add_image("val/reconstruction", np.asarray(im.convert("RGB")), step, dataformats="HWC")
