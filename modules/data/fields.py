"""Composable dataset fields over the real on-disk layouts (in the style of ConvONet's `src/data/fields.py`).

A sample is composed from the fields a model asks for; each field knows its files in every layout:

    ds = FieldsDataset("data/synth/r2n2", "r2n2", "train",
                       [ImagesField(), VoxelsField(), PointCloudField(n=2048), MeshField()])
    sample = ds[0]    # {"image": (3,137,137), "image.K": (3,3), "image.R", "image.t", "image.view",
                      #  "voxels": (32,32,32), "pointcloud": (2048,3), "pointcloud.normals", "mesh.vertices", ...}
    loader = DataLoader(ds, batch_size=32, collate_fn=collate_fields)

field            r2n2                          onet                        humans (DFAUST-style)       genren
ImagesField      rendering/NN.png (RGBA)       img_choy2016/NNN.jpg        renderings-downsampled/     images/*.png (RGBA,
                 + metadata camera             + cameras.npz (+loc/scale)  NNNNN.png + camera.npz      no camera)
VoxelsField      ShapeNetVox32 model.binvox    model.binvox                -                           -
PointCloudField  sampled on the mesh           pointcloud.npz              surface_points_seq/*.npz    shapes/X.PC.pt
PointsField      -                             points.npz                  points_seq/*.npz            -
MeshField        ShapeNetCore.v1 model.off     model.off                   mesh_seq/*.off              -
PartLabelsField  -                             -                           surface_points_seq labels   -
                                                                             (optional)

Frames: every geometric field of a sample and its camera share one frame, with CANONICAL axes (y up,
front +z; `modules.geometry.frames`): the files of each layout are in the axes of the real dataset
(LAYOUT_FRAMES: ShapeNet v1 for r2n2 and onet, DFAUST = canonical for humans, genren as stored) and are
turned into the canonical axes on reading -- points, normals, meshes, voxels and cameras together, images
unchanged. `frame=` (FieldsDataset) names the files' frame when a folder is in another one. Origin and
scale: the ShapeNet v1 mesh frame for r2n2 (voxels placed by their binvox header), the NORMALISED frame of
the npz files for onet (cameras and voxels mapped through loc/scale), the stored frame for humans. Splits: r2n2 `split.json` (PyTorch3D's
{split: {synset: {id: [views]}}}), onet `<synset>/<split>.lst`, humans `d-faust_splits.csv`; genren has
no splits (split=None takes every file; its images and shapes are unpaired, so one dataset reads one kind).

Views: training draws one random view per item; evaluation takes the fixed view `eval_view` (an index into
the item's views). Randomness (view, subsampling) comes from a per-sample generator seeded by
(seed, epoch, index) when `seed` is given (call `set_epoch`), else from NumPy's global state (which
PyTorch re-seeds per worker); evaluation is always seeded, so it is reproducible.
"""
import glob
import os

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data._utils.collate import default_collate

from modules.data import genren, humans, onet, r2n2
from modules.data.synth import sample_surface
from modules.geometry.binvox import place_binvox, read_binvox
from modules.geometry.cameras import Camera
from modules.geometry.frames import (load_mesh_in_frame, rotate_binvox, rotate_camera, rotate_points,
                                     to_canonical_rotation)
from modules.utils import ShapeLabError, require_file

LAYOUTS = ("r2n2", "onet", "humans", "genren")
LAYOUT_FRAMES = {"r2n2": r2n2.FRAME, "onet": onet.FRAME, "humans": humans.FRAME, "genren": "canonical"}
SPLITS = ("train", "val", "test")


class Item:
    """One model (or genren image) of a layout: group = synset / sequence / genren category; name = model id /
    frame number / genren file stem; views = allowed R2N2 view indices (empty: all)."""
    __slots__ = ("layout", "root", "group", "name", "views")

    def __init__(self, layout, root, group, name, views=()):
        self.layout, self.root, self.group, self.name, self.views = layout, root, group, name, tuple(views)

    def dir(self):
        if self.layout == "onet":
            return os.path.join(self.root, self.group, self.name)
        if self.layout == "genren":
            return os.path.join(self.root, self.group)
        raise ShapeLabError(f"layout {self.layout} has no single item folder")

    def __repr__(self):
        return f"{self.layout}:{self.group}/{self.name}"


class Context:
    """What the fields of one sample share: the item, the chosen view, the generator, the files' frame (turned
    into the canonical one by `to_canonical`), a small cache."""

    def __init__(self, item, view, rng, train, frame=None):
        self.item, self.view, self.rng, self.train, self.cache = item, view, rng, train, {}
        self.frame = LAYOUT_FRAMES[item.layout] if frame is None else frame
        self.to_canonical = to_canonical_rotation(self.frame)

    def cached(self, key, fn):
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]


def _t(x, dtype=torch.float32):
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def _onet_loc_scale(ctx):
    """(loc, scale) of an ONet item, from pointcloud.npz (else points.npz)."""
    def load():
        d = ctx.item.dir()
        path = os.path.join(d, "pointcloud.npz")
        if not os.path.exists(path):
            path = os.path.join(d, "points.npz")
        return onet.read_loc_scale(path, ctx.frame)
    return ctx.cached("loc_scale", load)


def _subsample(n_total, n, rng, path):
    if n is None or n == n_total:
        return np.arange(n_total) if n is None else rng.permutation(n_total)
    if n > n_total:
        raise ShapeLabError(f"{path}: has {n_total} points, {n} asked for")
    return rng.choice(n_total, n, replace=False)


class Field:
    """A part of a sample. `layouts`: where it has files; `load(ctx)` -> {key: tensor} (key "" = the field name)."""
    name = "field"
    layouts = ()
    order = 0          # fields with a higher order load later (they may use what earlier ones cached)

    def check_layout(self, layout):
        if layout not in self.layouts:
            raise ShapeLabError(f"field '{self.name}' has no files in layout '{layout}' "
                                f"(layouts with it: {', '.join(self.layouts)})")

    def load(self, ctx):
        raise NotImplementedError


class ImagesField(Field):
    """One view: "image" float32 (C,H,W) in [0,1], and its camera "image.K" (3,3) pixels, "image.R", "image.t"
    (world->camera, OpenCV convention, in the frame of the sample's geometric fields), "image.view" int.

    channels: "RGB" (RGBA renders are composited on `background`) or "RGBA" (R2N2 and genren PNGs; an
    image without alpha is refused, unless allow_no_alpha=True makes it opaque). Grey images are converted
    to RGB. size: resize to size x size (antialiased; the camera is rescaled with it). with_camera=False
    skips the camera (genren has none).
    """
    name = "image"
    layouts = LAYOUTS

    def __init__(self, channels="RGB", size=None, background=(1.0, 1.0, 1.0), with_camera=True, allow_no_alpha=False):
        if channels not in ("RGB", "RGBA"):
            raise ShapeLabError(f"ImagesField channels must be 'RGB' or 'RGBA', got {channels!r}")
        self.channels, self.size, self.background = channels, size, background
        self.with_camera, self.allow_no_alpha = with_camera, allow_no_alpha

    def check_layout(self, layout):
        super().check_layout(layout)
        if layout in ("onet", "humans") and self.channels == "RGBA":
            raise ShapeLabError(f"layout '{layout}' stores images without alpha (JPEG / RGB on white); "
                                f"use ImagesField(channels='RGB')")

    def path_and_camera(self, ctx):
        it, v = ctx.item, ctx.view
        if it.layout == "r2n2":
            return r2n2.image_path(it.root, it.group, it.name, v), lambda: self._r2n2_camera(ctx)
        if it.layout == "onet":
            d = os.path.join(it.dir(), "img_choy2016")
            return os.path.join(d, f"{v:03d}.jpg"), lambda: self._onet_camera(ctx, os.path.join(d, "cameras.npz"))
        if it.layout == "humans":
            p = humans.frame_paths(it.root, it.group, int(it.name))
            return p["render"], lambda: rotate_camera(humans.read_camera(p["camera"], *ctx.cache["image_size"]),
                                                      ctx.to_canonical)
        return os.path.join(it.root, it.group, "images", it.name + ".png"), None

    @staticmethod
    def _r2n2_camera(ctx):
        it = ctx.item
        path = os.path.join(r2n2.rendering_dir(it.root, it.group, it.name), "rendering_metadata.txt")
        meta = r2n2.read_rendering_metadata(path)
        if ctx.view >= len(meta):
            raise ShapeLabError(f"{path}: has {len(meta)} views, view {ctx.view} asked for")
        w, h = ctx.cache["image_size"]
        return r2n2.view_camera(meta[ctx.view], size=w, frame=ctx.frame)

    @staticmethod
    def _onet_camera(ctx, path):
        world_mat, camera_mat = onet.read_camera_npz(path, ctx.view, ctx.frame)
        loc, scale = _onet_loc_scale(ctx)
        w, h = ctx.cache["image_size"]
        return Camera.from_onet(world_mat, camera_mat, w, h, loc=loc, scale=scale)

    def load(self, ctx):
        path, camera_fn = self.path_and_camera(ctx)
        mode = "RGBA" if ctx.item.layout in ("r2n2", "genren") else "RGB"
        img = r2n2.read_image(path, mode, allow_no_alpha=self.allow_no_alpha)
        # NumPy until the end: small torch ops wake the intra-op thread pool (slow in a busy main process)
        x = np.asarray(img, np.float32) * np.float32(1 / 255)
        h, w = x.shape[:2]
        ctx.cache["image_size"] = (w, h)
        if self.channels == "RGB" and x.shape[2] == 4:
            a = x[..., 3:]
            x = x[..., :3] * a + np.asarray(self.background, np.float32) * (1 - a)
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
        if self.size is not None and (h, w) != (self.size, self.size):
            x = torch.nn.functional.interpolate(x[None], size=(self.size, self.size), mode="bilinear",
                                                antialias=True, align_corners=False)[0].clamp(0, 1)
        out = {"": x, "view": torch.tensor(ctx.view)}
        if self.with_camera and camera_fn is not None:
            cam = camera_fn()
            if self.size is not None:
                cam = cam.resized(self.size, self.size)
            out.update(K=cam.K.float(), R=cam.R.float(), t=cam.t.float())
        return out


class VoxelsField(Field):
    """"voxels" float32 (R,R,R) indexed [x,y,z] over `box`^3 of the sample's frame, the binvox grid placed by
    its header's translate/scale (placement="header", default), or the file's grid (placement="file", as
    ONet's loader does) with "voxels.translate" (3,) and "voxels.scale" (). Either way the grid's axes are
    turned into the canonical frame (a permutation and flips of the grid, the header with it).
    expected_dims: the grid size the files must have (ShapeNetVox32: 32^3)."""
    name = "voxels"
    layouts = ("r2n2", "onet")

    def __init__(self, resolution=32, box=(-0.5, 0.5), placement="header", expected_dims=(32, 32, 32)):
        if placement not in ("header", "file"):
            raise ShapeLabError(f"VoxelsField placement must be 'header' or 'file', got {placement!r}")
        self.resolution, self.box, self.placement, self.expected_dims = resolution, box, placement, expected_dims

    def load(self, ctx):
        it = ctx.item
        path = r2n2.binvox_path(it.root, it.group, it.name) if it.layout == "r2n2" else \
            os.path.join(it.dir(), "model.binvox")
        grid, translate, scale = rotate_binvox(*read_binvox(path, expected_dims=self.expected_dims), ctx.to_canonical)
        if self.placement == "file":
            return {"": _t(grid), "translate": _t(translate), "scale": torch.tensor(float(scale))}
        lo, hi = np.broadcast_to(np.asarray(self.box[0], np.float64), (3,)), np.broadcast_to(
            np.asarray(self.box[1], np.float64), (3,))
        if it.layout == "onet":     # the binvox lives in the original frame: map the normalised box there
            loc, s = _onet_loc_scale(ctx)
            lo, hi = lo * s + loc, hi * s + loc
        return {"": _t(place_binvox(grid, translate, scale, self.resolution, (lo, hi)))}


class PointCloudField(Field):
    """"pointcloud" float32 (n,3) surface points and "pointcloud.normals" (n,3) (with_normals).
    n=None keeps all points of the file (r2n2: n_mesh_samples points sampled on the mesh, area-weighted).
    genren: normalize=True centres the bounding box and divides by its largest side (genren's norm_mesh)."""
    name = "pointcloud"
    layouts = LAYOUTS

    def __init__(self, n=None, with_normals=True, n_mesh_samples=10_000, normalize=False):
        self.n, self.with_normals, self.n_mesh_samples, self.normalize = n, with_normals, n_mesh_samples, normalize

    def surface(self, ctx):
        it = ctx.item
        if it.layout == "onet":
            path = os.path.join(it.dir(), "pointcloud.npz")
            pts, nrm = onet.read_pointcloud_npz(path, ctx.frame)
            return path, pts, nrm, None
        if it.layout == "humans":
            path = humans.frame_paths(it.root, it.group, int(it.name))["surface"]
            pts, nrm, labels = humans.read_surface_points(path)
            return path, rotate_points(pts, ctx.to_canonical), rotate_points(nrm, ctx.to_canonical), labels
        if it.layout == "genren":
            d = os.path.join(it.root, it.group, "shapes")
            pts, nrm = genren.read_shape(d, it.name)
            pts, nrm = rotate_points(pts.numpy(), ctx.to_canonical), rotate_points(nrm.numpy(), ctx.to_canonical)
            return os.path.join(d, it.name + ".PC.pt"), pts, nrm, None
        path = r2n2.mesh_path(it.root, it.group, it.name)
        v, f = ctx.cached("mesh", lambda: _load_mesh(path, ctx.frame))
        n = self.n or self.n_mesh_samples
        pts, nrm = sample_surface(v, f, n, ctx.rng)
        return path, pts.astype(np.float32), nrm.astype(np.float32), None

    def load(self, ctx):
        path, pts, nrm, labels = ctx.cached("surface", lambda: self.surface(ctx))
        idx = _subsample(len(pts), self.n if ctx.item.layout != "r2n2" else None, ctx.rng, path)
        ctx.cache["surface_idx"] = idx
        pts, nrm = pts[idx], nrm[idx]
        if self.normalize:
            lo, hi = pts.min(0), pts.max(0)
            pts = (pts - (lo + hi) / 2) / max(float((hi - lo).max()), 1e-12)
        out = {"": _t(pts)}
        if self.with_normals:
            out["normals"] = _t(nrm)
        return out


class PartLabelsField(Field):
    """"labels" int64 (n,) global part ids of the surface points, aligned with PointCloudField's subsample
    when both are requested (else all points, or a subsample of n). Labels are optional in the humans
    layout (real bodies have none): a frame without them is a one-line error naming its file."""
    name = "labels"
    layouts = ("humans",)
    order = 1

    def __init__(self, n=None):
        self.n = n

    def load(self, ctx):
        path, pts, _, labels = ctx.cached("surface", lambda: PointCloudField().surface(ctx))
        if labels is None:
            raise ShapeLabError(f"{path}: no part 'labels' in this surface-points file (an unlabelled frame, e.g. "
                                f"from `preprocess.py mesh --formats humans`); drop PartLabelsField to use it")
        idx = ctx.cache.get("surface_idx")
        if idx is None:
            idx = _subsample(len(pts), self.n, ctx.rng, path)
        return {"": torch.as_tensor(labels[idx], dtype=torch.long)}


class PointsField(Field):
    """"points" float32 (n,3) volume points and "points.occ" float32 (n,) occupancies (points.npz). Points
    stored as float16 get N(0, 1e-4) noise, as ONet's loader adds (ties on the float16 grid)."""
    name = "points"
    layouts = ("onet", "humans")

    def __init__(self, n=None, float16_noise=1e-4):
        self.n, self.float16_noise = n, float16_noise

    def load(self, ctx):
        it = ctx.item
        path = os.path.join(it.dir(), "points.npz") if it.layout == "onet" else \
            humans.frame_paths(it.root, it.group, int(it.name))["points"]
        pts, occ = onet.read_points_npz(path, ctx.frame, select=lambda n: _subsample(n, self.n, ctx.rng, path))
        if self.float16_noise:
            pts = pts + self.float16_noise * ctx.rng.standard_normal(pts.shape).astype(np.float32)
        return {"": _t(pts), "occ": _t(occ)}


def _load_mesh(path, frame):
    """(vertices float32 (V,3) turned from `frame` into the canonical frame, faces int64 (F,3))."""
    m = load_mesh_in_frame(path, frame)
    return np.asarray(m.vertices, np.float32), np.asarray(m.faces, np.int64)


class MeshField(Field):
    """"mesh.vertices" float32 (V,3) and "mesh.faces" int64 (F,3) (sizes vary: `collate_fields` lists them)."""
    name = "mesh"
    layouts = ("r2n2", "onet", "humans")

    def load(self, ctx):
        it = ctx.item
        path = {"r2n2": lambda: r2n2.mesh_path(it.root, it.group, it.name),
                "onet": lambda: os.path.join(it.dir(), "model.off"),
                "humans": lambda: humans.frame_paths(it.root, it.group, int(it.name))["mesh"]}[it.layout]()
        v, f = ctx.cached("mesh", lambda: _load_mesh(path, ctx.frame))
        return {"vertices": _t(v), "faces": torch.as_tensor(f, dtype=torch.long)}


# ------------------------------------------------------------------ items of a layout

def list_items(root, layout, split, categories=None, split_file=None, genren_kind="images"):
    """[Item] of a split. categories: synsets (r2n2, onet) or genren category folders; None = all."""
    if layout not in LAYOUTS:
        raise ShapeLabError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    require_file(root, f"{layout} dataset folder")
    keep = None if categories is None else {str(c) for c in categories}
    if layout == "genren":
        if split not in (None, "all"):
            raise ShapeLabError(f"genren data has no splits (a folder of shapes, a folder of images); "
                                f"use split=None, got {split!r}")
        groups = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        items = []
        for g in groups:
            if keep is not None and g not in keep:
                continue
            if genren_kind == "images":
                names = [os.path.basename(p)[:-4] for p in genren.list_images(os.path.join(root, g, "images"))]
            else:
                names = genren.list_shapes(os.path.join(root, g, "shapes"))
            items += [Item(layout, root, g, n) for n in names]
    elif split not in SPLITS:
        raise ShapeLabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    elif layout == "r2n2":
        entries = r2n2.read_split(split_file or os.path.join(root, "split.json"), split)
        items = [Item(layout, root, s, i, v) for s, i, v in entries if keep is None or s in keep]
    elif layout == "onet":
        synsets = None if keep is None else sorted(keep)
        items = [Item(layout, root, s, i) for s, i in onet.read_split(root, split, synsets)]
    else:
        rows = humans.read_splits_csv(split_file or os.path.join(root, "d-faust_splits.csv")).get(split, [])
        items = [Item(layout, root, seq, f"{frame:05d}") for seq, frame in rows]
    if not items:
        raise ShapeLabError(f"{root}: no {layout} items in split {split!r}"
                            + (f" for categories {sorted(keep)}" if keep else ""))
    return items


def _views(item):
    """Allowed view indices of an item (R2N2: the split's list; ONet: the JPEGs present; else one view)."""
    if item.layout == "r2n2":
        if item.views:
            return item.views
        path = os.path.join(r2n2.rendering_dir(item.root, item.group, item.name), "rendering_metadata.txt")
        return tuple(range(len(r2n2.read_rendering_metadata(path))))
    if item.layout == "onet":
        d = os.path.join(item.dir(), "img_choy2016")
        n = len(glob.glob(os.path.join(d, "*.jpg")))
        if n == 0:
            raise ShapeLabError(f"{d}: no NNN.jpg views (ONet img_choy2016)")
        return tuple(range(n))
    return (0,)


class FieldsDataset(Dataset):
    """One dataset for every combination of fields over a real layout (see the module docstring).

    root: the layout's folder (e.g. data/synth/r2n2, data/synth/onet, .../humans, .../genren);
    layout: "r2n2" | "onet" | "humans" | "genren"; split: "train" | "val" | "test" (None for genren);
    fields: list of Field instances (each name once); train: random view per item (default: split == "train");
    seed: per-sample generators (see module docstring); categories: synsets / genren categories to keep;
    eval_view: the fixed view index (into the item's views) when not training; split_file: another split file;
    frame: the frame the files are in (a name of `modules.geometry.frames.DATASET_FRAMES` or an (up, front)
    pair; None = the layout's real dataset, LAYOUT_FRAMES); samples are always in the canonical frame.
    """

    def __init__(self, root, layout, split, fields, train=None, seed=None, categories=None, eval_view=0,
                 split_file=None, frame=None):
        if not fields:
            raise ShapeLabError("FieldsDataset: give at least one field")
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ShapeLabError(f"FieldsDataset: each field once, got {names}")
        for f in fields:
            f.check_layout(layout)
        kind = "images"
        if layout == "genren":
            has_img = any(isinstance(f, ImagesField) for f in fields)
            if has_img and len(fields) > 1:
                raise ShapeLabError("genren images and shapes are unpaired: use one FieldsDataset for ImagesField "
                                    "and another for PointCloudField")
            kind = "images" if has_img else "shapes"
        self.root, self.layout, self.split = os.fspath(root), layout, split
        self.fields = sorted(fields, key=lambda f: f.order)
        self.train = (split == "train") if train is None else bool(train)
        self.seed, self.eval_view, self.epoch = seed, int(eval_view), 0
        self.items = list_items(self.root, layout, split, categories, split_file, kind)
        self.frame = LAYOUT_FRAMES.get(layout) if frame is None else frame
        to_canonical_rotation(self.frame)       # a bad frame fails here, not in a worker
        self._views = {}

    def __len__(self):
        return len(self.items)

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def rng(self, idx):
        if not self.train:
            return np.random.default_rng([0 if self.seed is None else int(self.seed), 1 << 20, idx])
        if self.seed is None:
            return np.random.default_rng(np.random.randint(0, 2 ** 31 - 1))
        return np.random.default_rng([int(self.seed), self.epoch, idx])

    def views(self, item):
        key = (item.group, item.name)
        if key not in self._views:
            self._views[key] = _views(item)
        return self._views[key]

    def __getitem__(self, idx):
        item = self.items[idx]
        rng = self.rng(idx)
        views = self.views(item) if any(isinstance(f, ImagesField) for f in self.fields) else (0,)
        view = views[int(rng.integers(len(views)))] if self.train else views[self.eval_view % len(views)]
        ctx = Context(item, int(view), rng, self.train, self.frame)
        sample = {"idx": idx, "category": item.group, "model": item.name}
        for f in self.fields:
            for key, value in f.load(ctx).items():
                sample[f"{f.name}.{key}" if key else f.name] = value
        return sample


def collate_fields(batch):
    """Stack what has one shape across the batch (default_collate); keep lists for the rest (meshes)."""
    out = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if torch.is_tensor(values[0]) and any(v.shape != values[0].shape for v in values):
            out[key] = values
        else:
            out[key] = default_collate(values)
    return out


__all__ = ["FieldsDataset", "ImagesField", "VoxelsField", "PointCloudField", "PointsField", "MeshField",
           "PartLabelsField", "collate_fields", "list_items", "LAYOUTS", "LAYOUT_FRAMES"]
