"""The procedural, part-labelled ShapeNet-like dataset (`python preprocess.py synth`).

One shape = primitives from a category grammar (`modules.data.shapes`) -> centred, longest bbox
edge 1 -> analytic SDF -> watertight mesh by marching cubes -> surface samples (area-weighted on
the mesh, labelled by the nearest primitive) and volume samples (occupancy = SDF < 0, exact) ->
files in every requested real layout (`modules.data.writers`).

Same seed -> same bytes: every shape draws from its own generator seeded by (seed, category, index),
so -j, --shard and resuming do not change any file.
"""
import json
import os
from dataclasses import dataclass

import numpy as np

from modules.data import categories, r2n2
from modules.data.primitives import grid_sdf, shape_aabb, union_sdf
from modules.data.shapes import FRAMES_PER_SEQUENCE, MAKERS, human_sequence_params, make_human
from modules.data.writers import (FORMATS, ShapeRecord, WriteConfig, check_formats, commit_shape, is_done,
                                  run_batch, split_from_uniform, view_frame_scale, write_formats, write_indexes)
from modules.geometry.frames import from_canonical_rotation, rotate_cube, rotate_points
from modules.geometry.mise import marching_cubes
from modules.utils import ShapeLabError

BOX_PADDING = 0.1                       # points.npz: uniform in [-0.55, 0.55]^3 as ONet
HUMAN_SCALE, HUMAN_FEET_Y = 0.7, -0.45  # one fixed transform for all frames (bodies do not jitter)
LABEL_FAR = 0.02                        # surface points lie within a marching-cubes cell (< 0.01) of their primitive
HUMAN = categories.HUMAN[0]


@dataclass
class SynthConfig(WriteConfig):
    resolution: int = 128          # marching-cubes grid over [-0.52, 0.52]^3 (step 0.0082: parts >= 0.016 thick survive)
    render_resolution: int = 64    # the renders use a coarser mesh of the same SDF: 4x fewer faces, same 137 px image
    n_surface: int = 100_000       # pointcloud.npz, boundary samples, human surface points
    n_uniform: int = 100_000       # points.npz
    variety: str = "basic"         # shape grammars: "basic" (frozen: the shipped weights' data) or "rich" (modules.data.shapes)


@dataclass
class SynthShape:
    category: str
    index: int
    shape_id: str
    variant: str
    prims: list
    vertices: np.ndarray
    faces: np.ndarray


# ------------------------------------------------------------------ ids, seeds, splits

def shape_id(category, index):
    """'synth_00042'; for humans 'seq_002/00002' (sequence / frame)."""
    if category == HUMAN:
        return f"seq_{index // FRAMES_PER_SEQUENCE:03d}/{index % FRAMES_PER_SEQUENCE:05d}"
    return f"synth_{index:05d}"


def shape_rng(seed, category, index, stream=0):
    return np.random.default_rng([seed, categories.SYNTH_CATEGORIES.index(category), index, stream])


def split_of(seed, category, index):
    """Deterministic 70/10/20 split; humans are split by whole sequence so no body is in two splits."""
    if category == HUMAN:
        index = index // FRAMES_PER_SEQUENCE
    return split_from_uniform(shape_rng(seed, category, index, stream=99).random())


def shape_formats(category, formats):
    """The requested formats that apply to a category (the human has its own sequence layout)."""
    if category == HUMAN:
        return [f for f in formats if f == "humans"]
    if not categories.is_shapenet_part(category):   # the ONet-only classes have no ShapeNet-Part labels
        return [f for f in formats if f not in ("humans", "shapenet_part")]
    return [f for f in formats if f != "humans"]


# ------------------------------------------------------------------ geometry

def _normalise(prims, scale, shift):
    return [p.transformed(scale, np.asarray(shift, float)) for p in prims]


def build_shape(category, index, seed, resolution=128, variety="basic"):
    """Primitives -> normalised primitives + watertight marching-cubes mesh (longest bbox edge 1, centred)."""
    if category == HUMAN:
        seq_params = human_sequence_params(shape_rng(seed, category, index // FRAMES_PER_SEQUENCE))
        prims, variant = make_human(seq_params, index % FRAMES_PER_SEQUENCE)
        prims = _normalise(prims, HUMAN_SCALE, (0, HUMAN_FEET_Y, 0))
    else:
        prims, variant = MAKERS[category](shape_rng(seed, category, index), variety)
        lo, hi = shape_aabb(prims)   # union of the primitives' boxes: contains the shape
        scale = 1.0 / (hi - lo).max()
        prims = _normalise(prims, scale, -(lo + hi) / 2 * scale)
    vertices, faces = mesh_of(prims, resolution)
    if len(faces) == 0:
        raise ShapeLabError(f"{category} #{index}: empty shape (no surface at resolution {resolution})")
    if category != HUMAN:
        # rotated/clipped primitives have loose boxes: rescale exactly to the mesh's bounding box
        lo, hi = vertices.min(0).astype(np.float64), vertices.max(0).astype(np.float64)
        scale = 1.0 / (hi - lo).max()
        shift = -(lo + hi) / 2 * scale
        prims = _normalise(prims, scale, shift)
        vertices = (vertices * scale + shift).astype(np.float32)
    return SynthShape(category, index, shape_id(category, index), variant, prims, vertices, faces)


def mesh_of(prims, resolution, half=0.52):
    """Marching cubes of the union's SDF on a resolution^3 grid over [-half, half]^3."""
    return marching_cubes(-grid_sdf(prims, resolution, -half, half), 0.0, -half, half)


def sample_surface(vertices, faces, n, rng):
    """Area-weighted uniform samples on a triangle mesh: (points (n,3), normals (n,3)) float64.

    Normals interpolate the area-weighted vertex normals with the barycentric coordinates, which is
    smoother than the faceted marching-cubes face normals. (numpy, not the torch
    `sample_points_from_meshes`, because the generator runs in torch-free worker processes and needs
    the barycentrics.)
    """
    v = np.asarray(vertices, np.float64)
    faces = np.asarray(faces)
    tri = v[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    face = rng.choice(len(faces), size=n, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(n)), rng.random(n)
    bary = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], 1)
    points = np.einsum("nk,nkd->nd", bary, tri[face])
    vn = np.zeros_like(v)
    for k in range(3):
        for a in range(3):
            vn[:, a] += np.bincount(faces[:, k], weights=cross[:, a], minlength=len(v))
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    normals = np.einsum("nk,nkd->nd", bary, vn[faces[face]])
    bad = np.linalg.norm(normals, axis=1) < 1e-8
    normals[bad] = cross[face[bad]]
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    return points, normals


def occupancy(prims, points):
    """Exact inside test: SDF of the union < 0 (a point inside a primitive is inside its bounding box)."""
    return union_sdf(prims, points, far=0.0)[0] < 0


def sample_volume(surface, n_uniform, sigmas, rng, inside):
    """Uniform points in the padded box and IF-Net boundary points (surface + N(0, sigma^2)) with
    occupancies from `inside(points) -> bool`."""
    half = 0.5 + BOX_PADDING / 2
    uni = rng.uniform(-half, half, (n_uniform, 3))
    out = dict(uniform=uni, uniform_occ=inside(uni))
    for sigma in sigmas:
        b = surface + rng.normal(0, sigma, surface.shape)
        out[f"boundary_{sigma}"] = (b, inside(b))
    return out


def sample_shape(shape, cfg, rng):
    """All point samples of a shape (float64; the writers choose the stored precision)."""
    pts, nrm = sample_surface(shape.vertices, shape.faces, cfg.n_surface, rng)
    labels = union_sdf(shape.prims, pts, far=LABEL_FAR)[1]
    out = dict(surface=pts, normals=nrm, labels=labels)
    out.update(sample_volume(pts, cfg.n_uniform, cfg.sigmas, rng, lambda p: occupancy(shape.prims, p)))
    return out


def voxelize(prims, res=32, lo=(-0.5, -0.5, -0.5), side=1.0):
    """(res,res,res) bool over the cube lo + [0, side]^3 (default [-0.5,0.5]^3; indexed [x,y,z]): a voxel is
    full when the shape reaches into the ball around its centre that encloses the voxel (so thin parts keep
    their voxels)."""
    h = side / res
    axes = [lo[a] + (np.arange(res) + 0.5) * h for a in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    sdf, _ = union_sdf(prims, pts, far=h)
    return (sdf < np.sqrt(3) / 2 * h).reshape(res, res, res)


def binvox_cube(vertices, frame="canonical"):
    """(min corner, side) in canonical coordinates of the cube the binvox tool voxelises when the mesh is in
    `frame`: that frame's bounding-box minimum corner and largest side (ShapeNetVox32 headers are of this
    kind, not the unit box). The cube of a rotated mesh is not the rotated cube where an axis flips, so
    it is taken in the file's frame and turned back."""
    R = from_canonical_rotation(frame)
    v = rotate_points(np.asarray(vertices, np.float64), R)
    side = float((v.max(0) - v.min(0)).max())
    return rotate_cube(v.min(0), side, R.T), side


def vertex_labels(shape):
    return union_sdf(shape.prims, shape.vertices, far=LABEL_FAR)[1]


# ------------------------------------------------------------------ the run

def generate_one(cfg, category, index):
    """Build, sample and write one shape (all requested formats); returns its variant name."""
    shape = build_shape(category, index, cfg.seed, cfg.resolution, cfg.variety)
    formats = shape_formats(category, cfg.formats)
    samples = sample_shape(shape, cfg, shape_rng(cfg.seed, category, index, stream=1))
    # the "original" frame of the ONet files = ShapeNet v1-like (bbox-centred, diagonal 1), where the R2N2
    # cameras, meshes and voxels live: original = normalised * scale + 0
    samples["loc_scale"] = ((0.0, 0.0, 0.0), view_frame_scale(shape.vertices))
    cube = binvox_cube(shape.vertices, r2n2.FRAME)   # ShapeNetVox32's frame; ONet's model.binvox is that file
    voxels = voxelize(shape.prims, 32, *cube) if {"r2n2", "onet"} & set(formats) else None
    rec = ShapeRecord(categories.SYNSETS[category], shape.shape_id, category, shape.vertices, shape.faces,
                      samples, voxels=voxels, voxel_box=cube)
    if cfg.views > 0:
        v, f = mesh_of(shape.prims, cfg.render_resolution)
        colors = None
        if cfg.render_style == "parts":
            from modules.vis.colors import part_colors  # deferred: only the part-coloured option needs it
            colors = part_colors(union_sdf(shape.prims, v, far=LABEL_FAR)[1])
        rec.render_mesh = (v, f, colors)
    view_rng = shape_rng(cfg.seed, category, index, stream=2)
    commit_shape(cfg, rec, formats, lambda stage: write_formats(rec, cfg, formats, stage, view_rng),
                 dict(category=category, index=index, variant=shape.variant, split=split_of(cfg.seed, category, index),
                      resolution=cfg.resolution))
    return shape.variant


def _generate_item(args):
    cfg, category, index = args
    return generate_one(cfg, category, index)


def generate(cfg, category_names, per_category, jobs=1, shard=(0, 1), progress=True):
    """Generate (or resume) the dataset and rewrite the split files. Returns the batch summary
    (plus requested / skipped counts)."""
    names = [categories.category_name(c) for c in category_names]
    check_formats(cfg.formats, cfg.views)
    if per_category < 1:
        raise ShapeLabError(f"--per-category must be >= 1, got {per_category}")
    unused = [c for c in names if not shape_formats(c, cfg.formats)]
    if unused:
        raise ShapeLabError(f"--formats {','.join(cfg.formats)} has nothing for {', '.join(unused)} "
                            f"(the human is written only as 'humans', the other categories never as 'humans', "
                            f"the ONet-only classes never as 'shapenet_part')")
    items = [(c, i) for c in names for i in range(per_category)][shard[0]::shard[1]]
    todo = [(cfg, c, i) for c, i in items
            if not is_done(cfg, categories.SYNSETS[c], shape_id(c, i), shape_formats(c, cfg.formats))]
    summary = run_batch(_generate_item, todo, jobs=jobs, desc="synth", progress=progress,
                        describe=lambda a: f"{a[1]} #{a[2]}")
    summary["failed"] = [((c, i), msg) for (_, c, i), msg in summary["failed"]]
    summary.update(requested=len(items), skipped=len(items) - len(todo))
    write_indexes(cfg.out, cfg.seed, cfg.views)
    return summary


def variant_counts(out, category):
    """{variant: count} from the markers of a category."""
    counts = {}
    root = os.path.join(out, ".done", categories.SYNSETS[category])
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        with open(os.path.join(root, name)) as f:
            v = json.load(f)["variant"]
        counts[v] = counts.get(v, 0) + 1
    return counts


__all__ = ["FORMATS", "SynthConfig", "build_shape", "sample_shape", "sample_surface", "generate", "generate_one",
           "variant_counts", "voxelize", "occupancy", "shape_id", "split_of"]
