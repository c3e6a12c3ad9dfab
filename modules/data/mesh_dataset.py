"""Real meshes (.obj/.off/.ply: ShapeNetCore, ModelNet, scans) -> the same files as the synthetic data
(`preprocess.py mesh`), and the NST seed's vertex export (`preprocess.py xyz`).

Per mesh: centre the bounding box and scale its longest edge to 1 (ONet's `loc`/`scale` are stored so
that original = normalised * scale + loc), sample the surface (area-weighted, 100k points + normals),
label occupancy with `modules.geometry.mesh_contains` (ray casting when watertight, generalised winding
number otherwise), voxelise, render. A mesh that cannot be read or is empty is listed in the summary
and skipped; the others are processed. Parallel (-j), shardable (--shard i/n), resumable (markers).
"""
import os
import zlib
from dataclasses import dataclass

import numpy as np

from modules.data.synth import BOX_PADDING, sample_surface, sample_volume
from modules.data.writers import (ShapeRecord, WriteConfig, check_formats, commit_shape, is_done,
                                  parse_shard, run_batch, split_from_uniform, write_formats, write_indexes)
from modules.geometry.io import MESH_EXTENSIONS, load_mesh, save_point_cloud
from modules.utils import ShapeLabError

MESH_FORMATS = ("onet", "ifnet", "r2n2", "genren")   # formats that need no part labels
__all__ = ["find_meshes", "mesh_items", "process_mesh", "preprocess_meshes", "mesh_to_xyz", "BOX_PADDING"]


@dataclass
class MeshConfig(WriteConfig):
    formats: tuple = MESH_FORMATS
    n_surface: int = 100_000
    n_uniform: int = 100_000


def find_meshes(inputs):
    """Mesh files (.obj .off .ply) among `inputs` (files, or folders searched recursively), sorted."""
    found = []
    for path in inputs:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                found += [os.path.join(root, f) for f in files if os.path.splitext(f)[1].lower() in MESH_EXTENSIONS]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise ShapeLabError(f"--in {path}: no such file or folder")
    return sorted(set(found))


def _is_synset(name):
    return len(name) == 8 and name.isdigit()


def mesh_items(paths, category=None):
    """[(path, synset folder, id)]: ShapeNet paths <synset>/<id>/[models/]model*.ext keep their synset and
    id; other files go under `category` (default 'mesh') named by their file name (plus folders when
    two files share a name)."""
    items = []
    for p in paths:
        parts = os.path.normpath(os.path.abspath(p)).split(os.sep)
        stem = os.path.splitext(parts[-1])[0]
        up = parts[-3:-1] if parts[-2] != "models" else parts[-4:-2]
        if category is None and len(up) == 2 and _is_synset(up[0]):
            items.append([p, up[0], up[1]])
        else:
            items.append([p, category or "mesh", stem])
    seen = {}
    for it in items:
        seen.setdefault((it[1], it[2]), []).append(it)
    for group in seen.values():
        if len(group) > 1:
            for it in group:
                rel = os.path.splitext(os.path.relpath(it[0]))[0]
                it[2] = rel.replace(os.sep, "_").replace("..", "up").lstrip("_.")
    return [tuple(it) for it in items]


def _item_rng(seed, synset, sid, stream):
    return np.random.default_rng([seed, zlib.crc32(f"{synset}/{sid}".encode()), stream])


def normalise_mesh(vertices):
    """(vertices centred with longest bbox edge 1, loc (3,), scale) with original = v * scale + loc."""
    v = np.asarray(vertices, np.float64)
    lo, hi = v.min(0), v.max(0)
    scale = float((hi - lo).max())
    if not scale > 0:
        raise ShapeLabError("mesh has zero extent (all vertices at one point)")
    loc = (lo + hi) / 2
    return (v - loc) / scale, loc, scale


def process_mesh(cfg, item):
    """Load, normalise, sample, label and write one mesh. Raises ShapeLabError for unusable meshes."""
    from modules.geometry.mesh_contains import mesh_contains
    from modules.geometry.voxels import voxelize_mesh
    path, synset, sid = item
    mesh = load_mesh(path)
    vertices, loc, scale = normalise_mesh(mesh.vertices)
    faces = np.asarray(mesh.faces, np.int64)
    tri = vertices[faces]
    if not np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum() > 0:
        raise ShapeLabError(f"{path}: mesh has zero surface area")
    vertices = vertices.astype(np.float32)
    rng = _item_rng(cfg.seed, synset, sid, 1)

    def inside(p):
        return mesh_contains(vertices, faces, p)

    pts, nrm = sample_surface(vertices, faces, cfg.n_surface, rng)
    samples = dict(surface=pts, normals=nrm, labels=None, loc_scale=(loc, scale))
    samples.update(sample_volume(pts, cfg.n_uniform, cfg.sigmas, rng, inside))
    formats = [f for f in cfg.formats if f in MESH_FORMATS]
    voxels = voxelize_mesh(vertices, faces, 32) if "r2n2" in formats else None
    rec = ShapeRecord(synset, sid, synset, vertices, faces, samples, None, voxels)
    split = split_from_uniform(_item_rng(cfg.seed, synset, sid, 99).random())
    view_rng = _item_rng(cfg.seed, synset, sid, 2)
    commit_shape(cfg, rec, formats, lambda stage: write_formats(rec, cfg, formats, stage, view_rng),
                 dict(source=os.path.abspath(path), variant="mesh", split=split, loc=list(map(float, loc)),
                      scale=scale))
    return sid


def _process_item(args):
    cfg, item = args
    return process_mesh(cfg, item)


def preprocess_meshes(cfg, inputs, jobs=1, shard=(0, 1), category=None, progress=True):
    """Process every mesh found in `inputs`; returns the batch summary (failed = [(path, message)])."""
    check_formats(cfg.formats, cfg.views)
    bad = [f for f in cfg.formats if f not in MESH_FORMATS]
    if bad:
        raise ShapeLabError(f"--formats {','.join(bad)}: real meshes carry no part labels; "
                            f"use {', '.join(MESH_FORMATS)}")
    paths = find_meshes(inputs)
    if not paths:
        raise ShapeLabError(f"no .obj/.off/.ply meshes found in {', '.join(inputs)}")
    items = mesh_items(paths, category)[shard[0]::shard[1]]
    todo = [(cfg, it) for it in items if not is_done(cfg, it[1], it[2], cfg.formats)]
    summary = run_batch(_process_item, todo, jobs=jobs, desc="meshes", progress=progress, describe=lambda a: a[1][0])
    summary["failed"] = [(it[0], msg) for (_, it), msg in summary["failed"]]
    summary.update(requested=len(items), skipped=len(items) - len(todo))
    write_indexes(cfg.out, cfg.seed, cfg.views)
    return summary


def run_mesh(args):
    fmts = tuple(f.strip() for f in args.formats.split(",")) if args.formats else MESH_FORMATS
    cfg = MeshConfig(out=args.out, seed=args.seed, formats=fmts, views=args.views)
    summary = preprocess_meshes(cfg, args.inputs, jobs=args.jobs, shard=parse_shard(args.shard),
                                category=args.category, progress=not args.no_progress)
    n = summary["written"]
    print(f"mesh: {summary['requested']} meshes, {n} written, {summary['skipped']} already done, "
          f"{len(summary['failed'])} skipped as unusable, {summary['seconds']:.1f} s -> {cfg.out}")
    for path, msg in summary["failed"]:
        print(f"  SKIPPED {path}: {msg}")
    return summary


# ------------------------------------------------------------------ NST seed: preprocess.py xyz

def mesh_to_xyz(path, out_path, iters=0, normals=None):
    """Vertices of the mesh after `iters` Loop subdivisions -> .xyz ('x y z') or .xyzn (+ vertex normals).

    As the NST seed's preprocess.py (open3d `subdivide_loop`), except: `iters` subdivisions are applied
    whenever iters >= 1 (the seed skipped iters == 1), the output path is a file, and no viewer opens.
    """
    import open3d as o3d
    mesh = load_mesh(path)
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.asarray(mesh.vertices, np.float64)),
                                  o3d.utility.Vector3iVector(np.asarray(mesh.faces, np.int32)))
    if iters < 0:
        raise ShapeLabError(f"--subdiv_iters must be >= 0, got {iters}")
    if iters > 0:
        m = m.subdivide_loop(number_of_iterations=int(iters))
    m.compute_vertex_normals()
    ext = os.path.splitext(out_path)[1].lower()
    if ext not in (".xyz", ".xyzn"):
        raise ShapeLabError(f"{out_path}: output must end in .xyz or .xyzn")
    with_normals = ext == ".xyzn" if normals is None else normals
    save_point_cloud(out_path, np.asarray(m.vertices, np.float32),
                     normals=np.asarray(m.vertex_normals, np.float32) if with_normals else None)
    return len(m.vertices)


def run_xyz(args):
    paths = find_meshes(args.inputs)
    if not paths:
        raise ShapeLabError(f"no .obj/.off/.ply meshes found in {', '.join(args.inputs)}")
    ext = "." + args.format
    if args.out is None:
        name = f"{args.exp_name}___sbd{args.iters}" if len(paths) == 1 else None
        outs = [os.path.join("preprocessed_meshes", (name or os.path.splitext(os.path.basename(p))[0]) + ext)
                for p in paths]
    elif len(paths) == 1 and os.path.splitext(args.out)[1].lower() in (".xyz", ".xyzn"):
        outs = [args.out]
    else:
        outs = [os.path.join(args.out, os.path.splitext(os.path.basename(p))[0] + ext) for p in paths]
    failed = []
    for p, o in zip(paths, outs):
        try:
            n = mesh_to_xyz(p, o, args.iters)
            print(f"{p} -> {o} ({n} points)")
            if args.visualize:
                from modules.vis.pointclouds import save_point_cloud_png
                from modules.geometry.io import load_point_cloud
                png = os.path.splitext(o)[0] + ".png"
                save_point_cloud_png(png, load_point_cloud(o)["points"])
                print(f"  picture: {png}")
        except ShapeLabError as err:
            failed.append((p, str(err)))
            print(f"  SKIPPED {p}: {err}")
    if failed and len(failed) == len(paths):
        raise ShapeLabError(f"no mesh could be converted ({len(failed)} failed)")
    return failed
