"""Writing one shape into every requested real layout, and the resumable, parallel batch driver shared
by `preprocess.py synth` and `preprocess.py mesh`.

A shape's per-shape folders (onet/<synset>/<id>/, ...) are written as temporary siblings and renamed
into place in one step; single files (.pts, .seg, .pt, frame files) are written to a temporary name
and renamed. Only then is its marker OUT/.done/<synset>/<id>.json written. A shape with a marker is
finished; an interrupted one has no marker and is redone (its folders are replaced whole). Split files are rebuilt from all markers at the end of every run, so shards
of a job array can run in any order.
"""
import contextlib
import json
import multiprocessing
import os
import shutil
import sys
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from modules.data import genren, humans, ifnet, onet, r2n2, shapenet_part
from modules.data.categories import ALL_CATEGORIES, SYNSET_TO_NAME
from modules.geometry.binvox import write_binvox
from modules.geometry.cameras import look_at_camera, r2n2_camera
from modules.geometry.frames import from_canonical_rotation, rotate_binvox, rotate_points
from modules.geometry.io import save_mesh
from modules.utils import ShapeLabError, atomic_write

FORMATS = ("shapenet_part", "onet", "ifnet", "r2n2", "genren", "humans")
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (("train", 0.7), ("val", 0.1), ("test", 0.2))
# R2N2 (chrischoy/3D-R2N2 tools/render_models.py): azimuth U[0,360), elevation U[25,30), distance ratio
# U[0.65,0.95), in-plane 0, and a metadata fov of 25 that its Blender script ignores (the lens is 35 mm on
# a 32 mm sensor: f = 149.84 px at 137 px, 49.1 degrees); cameras as PyTorch3D computes them.
R2N2_ELEVATION, R2N2_RATIO, R2N2_METADATA_FOV = (25.0, 30.0), (0.65, 0.95), 25.0
# Neural Parts' DFAUST renders (simple-3dviz): camera (1,1.5,3) -> (0,0.5,0), up y, 45 degrees, light at the
# camera, grey 0.3 mesh on white. Our stored human frame is mapped to a DFAUST-like metric frame for the
# render (x_dfaust = 2 p + (0, 0.55, 0): a ~1.7 m body centred on the target); camera.npz holds the
# equivalent camera of the STORED frame.
DFAUST_EYE, DFAUST_TARGET, DFAUST_FOV, DFAUST_GREY = (1.0, 1.5, 3.0), (0.0, 0.5, 0.0), 45.0, 0.3
DFAUST_FROM_STORED = (2.0, (0.0, 0.55, 0.0))
RENDER_STYLES = ("material", "parts")


@dataclass
class WriteConfig:
    out: str = "data/synth"
    seed: int = 0
    formats: tuple = FORMATS
    views: int = 24
    n_ifnet_surface: int = 30_000
    n_part_points: int = 2500      # ShapeNet-Part .pts
    n_genren: int = 10_000
    sigmas: tuple = ifnet.SIGMAS
    image_size: int = 137
    human_image_size: int = 224
    render_style: str = "material"  # "material": one palette colour per shape (as real renders); "parts": part colours
    supersample: int = 2            # anti-aliasing: render at 2x and box-filter (fractional alpha at edges)


@dataclass
class ShapeRecord:
    """Everything the writers need for one shape. samples: surface (N,3), normals, labels (global part
    ids or None), uniform (M,3), uniform_occ (M,), boundary_<sigma>: (points, occupancies)."""
    synset: str
    shape_id: str
    group: str                   # genren folder name (category)
    vertices: np.ndarray
    faces: np.ndarray
    samples: dict
    colors: np.ndarray = None    # per-vertex part colours in [0,1] for render_style "parts" (None: grey)
    voxels: np.ndarray = None    # (32,32,32) bool, indexed [x,y,z], over the cube voxel_box
    render_mesh: tuple = None    # (vertices, faces, colors) to render instead of the full mesh
    extra: dict = field(default_factory=dict)
    voxel_box: tuple = None      # (min corner (3,), side) of the voxels' cube in the normalised frame;
                                 # None = [-0.5,0.5]^3. Written as the binvox header (placed by readers).

    def mesh_for_render(self):
        return self.render_mesh if self.render_mesh is not None else (self.vertices, self.faces, self.colors)


def split_from_uniform(u):
    acc = 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if u < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


# ------------------------------------------------------------------ rendering

def r2n2_view_params(rng, n):
    """R2N2 rendering_metadata rows (as 3D-R2N2's render script draws them): azimuth, elevation,
    in-plane 0, distance ratio, fov 25 (recorded, not used)."""
    return np.stack([rng.uniform(0, 360, n), rng.uniform(*R2N2_ELEVATION, n), np.zeros(n),
                     rng.uniform(*R2N2_RATIO, n), np.full(n, R2N2_METADATA_FOV)], 1)


def view_frame_scale(vertices):
    """s with view-frame = s * normalised: bounding-box diagonal 1, as ShapeNet v1 models (the frame the R2N2
    cameras and ShapeNetCore.v1 meshes live in)."""
    v = np.asarray(vertices, np.float64)
    return 1.0 / float(np.linalg.norm(v.max(0) - v.min(0)))


def r2n2_cameras(view_rows, size):
    """Cameras of metadata rows in the view frame (PyTorch3D's R2N2 convention)."""
    import torch  # deferred with the next import: torch only when rendering (the workers may run without views)
    return [r2n2_camera(az, el, ratio, size=size, dtype=torch.float64) for az, el, _, ratio, _ in view_rows]


def dfaust_camera(size):
    """The Neural Parts DFAUST render camera, as a camera of the stored human frame (see DFAUST_FROM_STORED)."""
    import torch  # deferred: see r2n2_cameras
    cam = look_at_camera(DFAUST_EYE, DFAUST_TARGET, fov_deg=DFAUST_FOV, width=size, height=size, dtype=torch.float64)
    return cam.transformed(*DFAUST_FROM_STORED)


def to_uint8(rgba):
    return np.round(np.asarray(rgba, np.float64) * 255).clip(0, 255).astype(np.uint8)


def on_white(rgba):
    """(H,W,4) uint8 RGBA -> (H,W,3) uint8 over white (ONet's img_choy2016, the DFAUST renders)."""
    from modules.vis.render import composite  # deferred: modules.vis.render imports torch
    return composite(rgba, (1.0, 1.0, 1.0))


def render_shape(rec, cameras, cfg, rng, want):
    """{"material"|"texture"|"parts": [uint8 (S,S,4) RGBA per camera]} for the shadings in `want`
    (one rasterization per view, see modules.vis.render.render_views)."""
    from modules.vis.render import material_color, procedural_texture, render_views  # deferred: torch
    v, f, c = rec.mesh_for_render()
    shadings, names = [], []
    if "material" in want:
        rgb, spec, _ = material_color(rng)
        shadings.append(dict(color=rgb, specular=spec))
        names.append("material")
    if "texture" in want:
        shadings.append(dict(vertex_colors=procedural_texture(v, rng), specular=0.1))
        names.append("texture")
    if "parts" in want:
        shadings.append(dict(color=(0.7, 0.7, 0.7)) if c is None else dict(vertex_colors=c))
        names.append("parts")
    views = render_views(v, f, cameras, shadings, supersample=cfg.supersample)
    return {n: [to_uint8(view[k]) for view in views] for k, n in enumerate(names)}


# ------------------------------------------------------------------ one shape, every format

@contextlib.contextmanager
def shape_dir(final):
    """Yield a temporary sibling of the per-shape folder `final`; on success it replaces `final` by one
    rename, so a reader never sees a half-written shape folder."""
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        yield tmp
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_mesh_once(path, rec, frame):
    """Mesh text is the slowest and largest file: format it once per frame (the vertices turned into
    `frame`), then hard-link it (atomic either way)."""
    key = f"mesh_file:{from_canonical_rotation(frame).tolist()}"
    first = rec.extra.get(key)
    if first is None or not os.path.exists(first):
        save_mesh(path, rotate_points(rec.vertices, from_canonical_rotation(frame)), rec.faces)
        rec.extra[key] = path
    else:
        with atomic_write(path) as tmp:
            os.remove(tmp)
            try:
                os.link(first, tmp)          # same bytes, no extra disk
            except OSError:                  # file systems without hard links
                shutil.copyfile(first, tmp)


def write_formats(rec, cfg, formats, out, rng):
    """Write `rec` in each of `formats` under the dataset root `out`; `rng` draws the camera views and the
    render colours. Per-shape folders appear by one rename (`shape_dir`); single files are written atomically.

    Frames: rec.vertices, the samples and the views' cameras are in the CANONICAL frame (y up, front +z) and
    normalised (ONet: centred, longest edge 1); original = scale * p + loc (samples["loc_scale"], written to
    the ONet npz files; ONet's cameras.npz and model.binvox live in that frame). The R2N2 layout is written in
    the view frame, view = p / diagonal (ShapeNet v1-like, bbox diagonal 1), where the metadata cameras are
    defined. Each layout is written in the axes of the real dataset it imitates (`<module>.FRAME`:
    ShapeNet v1 for onet, ifnet, r2n2, shapenet_part; DFAUST = canonical axes for humans; genren as given):
    points, normals, meshes, voxels (axis permutation of the grid) and cameras turn together, the images
    stay as rendered."""
    s, synset, sid = rec.samples, rec.synset, rec.shape_id
    if cfg.render_style not in RENDER_STYLES:
        raise ShapeLabError(f"render_style must be one of {', '.join(RENDER_STYLES)}, got {cfg.render_style!r}")
    for key in [k for k in rec.extra if k.startswith("mesh_file")]:
        rec.extra.pop(key)
    loc, scale = s.get("loc_scale", ((0, 0, 0), 1.0))
    loc, scale = np.asarray(loc, np.float64).reshape(3), float(scale)
    sv = view_frame_scale(rec.vertices)
    vox_lo, vox_side = rec.voxel_box if rec.voxel_box is not None else ((-0.5, -0.5, -0.5), 1.0)
    vox_lo = np.asarray(vox_lo, np.float64)
    renders, view_rows, norm_cams = {}, None, []
    if cfg.views > 0 and any(f in formats for f in ("r2n2", "genren", "onet")):
        view_rows = r2n2_view_params(rng, cfg.views)
        norm_cams = [c.transformed(sv) for c in r2n2_cameras(view_rows, cfg.image_size)]
        want = set()
        if "r2n2" in formats or "onet" in formats:
            want.add(cfg.render_style)
        if "genren" in formats:
            want.add("texture" if cfg.render_style == "material" else "parts")
        renders = render_shape(rec, norm_cams, cfg, rng, want)
    views = renders.get(cfg.render_style, [])
    if "onet" in formats:
        os.makedirs(os.path.join(out, "onet", synset), exist_ok=True)
        with shape_dir(os.path.join(out, "onet", synset, sid)) as d:
            R = from_canonical_rotation(onet.FRAME)
            onet.write_pointcloud_npz(os.path.join(d, "pointcloud.npz"), s["surface"], s["normals"], loc, scale)
            onet.write_points_npz(os.path.join(d, "points.npz"), s["uniform"], s["uniform_occ"], loc, scale)
            _save_mesh_once(os.path.join(d, "model.off"), rec, onet.FRAME)
            if rec.voxels is not None:
                grid, lo, side = rotate_binvox(rec.voxels, vox_lo, vox_side, R)
                write_binvox(os.path.join(d, "model.binvox"), grid, translate=lo * scale + R @ loc, scale=side * scale)
            if views:
                for i, rgba in enumerate(views):
                    r2n2.write_image(os.path.join(d, "img_choy2016", f"{i:03d}.jpg"), on_white(rgba), quality=95)
                onet.write_cameras(os.path.join(d, "img_choy2016", "cameras.npz"),
                                   [c.transformed(1.0 / scale, -loc / scale) for c in norm_cams])
        _moved(rec, d, os.path.join(out, "onet", synset, sid))
    if "ifnet" in formats:
        os.makedirs(os.path.join(out, "ifnet", synset), exist_ok=True)
        with shape_dir(os.path.join(out, "ifnet", synset, sid)) as d:
            _save_mesh_once(os.path.join(d, "isosurf_scaled.off"), rec, ifnet.FRAME)
            ifnet.write_surface_samples(os.path.join(d, "surface_30000_samples.npy"), s["surface"][:cfg.n_ifnet_surface])
            for sigma in cfg.sigmas:
                pts, occ = s[f"boundary_{sigma}"]
                ifnet.write_boundary_samples(os.path.join(d, ifnet.boundary_name(sigma)), pts, occ)
        _moved(rec, d, os.path.join(out, "ifnet", synset, sid))
    if "humans" in formats:
        seq, frame = sid.split("/")
        paths = humans.frame_paths(os.path.join(out, "humans"), seq, int(frame))
        _save_mesh_once(paths["mesh"], rec, humans.FRAME)
        humans.write_surface_points(paths["surface"], s["surface"], s["normals"], s["labels"])
        humans.write_points_npz(paths["points"], s["uniform"], s["uniform_occ"])
        if cfg.views > 0:
            from modules.vis.render import render_views  # deferred: torch, only when rendering
            cam = dfaust_camera(cfg.human_image_size)
            v, f, c = rec.mesh_for_render()
            parts = cfg.render_style == "parts" and c is not None
            shading = dict(vertex_colors=c) if parts else dict(color=[DFAUST_GREY] * 3)
            (rgba,), = render_views(v, f, [cam], [shading], supersample=cfg.supersample, lighting="simple3dviz")
            r2n2.write_image(paths["render"], on_white(to_uint8(rgba)))
            humans.write_camera(paths["camera"], cam)
    if "shapenet_part" in formats:
        if s.get("labels") is None:
            raise ShapeLabError(f"{synset}/{sid}: the shapenet_part format needs part labels")
        k = cfg.n_part_points
        shapenet_part.write_shape(os.path.join(out, "shapenet_part"), synset, sid, s["surface"][:k], s["labels"][:k])
    if "r2n2" in formats:
        root = os.path.join(out, "r2n2")
        vox_dir = os.path.dirname(r2n2.binvox_path(root, synset, sid))
        os.makedirs(os.path.dirname(vox_dir), exist_ok=True)
        R = from_canonical_rotation(r2n2.FRAME)
        with shape_dir(vox_dir) as d:   # binvox-tool header: the voxels' cube in the mesh's (view) frame
            grid, lo, side = rotate_binvox(rec.voxels, vox_lo, vox_side, R)
            write_binvox(os.path.join(d, "model.binvox"), grid, translate=lo * sv, scale=side * sv)
        mesh_dir = os.path.dirname(r2n2.mesh_path(root, synset, sid))
        os.makedirs(os.path.dirname(mesh_dir), exist_ok=True)
        with shape_dir(mesh_dir) as d:
            save_mesh(os.path.join(d, "model.off"), rotate_points(np.asarray(rec.vertices, np.float64) * sv, R),
                      rec.faces)
        if views:
            d_final = os.path.dirname(r2n2.rendering_dir(root, synset, sid))
            os.makedirs(os.path.dirname(d_final), exist_ok=True)
            with shape_dir(d_final) as top:
                d = os.path.join(top, "rendering")
                names = [f"{i:02d}.png" for i in range(len(views))]
                for name, rgba in zip(names, views):
                    r2n2.write_image(os.path.join(d, name), rgba)
                r2n2.write_rendering_metadata(os.path.join(d, "rendering_metadata.txt"),
                                              r2n2.metadata_rows_in_frame(view_rows, r2n2.FRAME))
                with atomic_write(os.path.join(d, "renderings.txt")) as tmp, open(tmp, "w") as f:
                    f.write("\n".join(names) + "\n")
    if "genren" in formats:
        root = os.path.join(out, "genren", rec.group)
        k = cfg.n_genren
        name = sid.replace("/", "_")
        genren.write_shape(os.path.join(root, "shapes"), name, s["surface"][:k], s["normals"][:k])
        for i, rgba in enumerate(renders.get("texture", renders.get("parts", []))):
            r2n2.write_image(os.path.join(root, "images", f"{name}_{i:02d}.png"), rgba)


def _moved(rec, tmp_dir, final_dir):
    """After shape_dir renamed tmp_dir to final_dir: point the mesh-once cache at the final paths."""
    for key, path in list(rec.extra.items()):
        if key.startswith("mesh_file") and isinstance(path, str) and path.startswith(tmp_dir + os.sep):
            rec.extra[key] = os.path.join(final_dir, os.path.relpath(path, tmp_dir))


# ------------------------------------------------------------------ staging, markers, indexes

def marker_path(out, synset, sid):
    return os.path.join(out, ".done", synset, sid.replace("/", "_") + ".json")


def read_marker(out, synset, sid):
    try:
        with open(marker_path(out, synset, sid)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# Markers record the frame convention their files were written in: shapes written before the layouts took
# their real datasets' axes (no "frames" key) are redone by a rerun, not mixed with the new ones.
FRAMES_CONVENTION = "real-dataset-axes"


def is_done(cfg, synset, sid, formats):
    m = read_marker(cfg.out, synset, sid)
    return (m is not None and set(formats) <= set(m["formats"]) and m["views"] == cfg.views
            and m["seed"] == cfg.seed and m.get("frames") == FRAMES_CONVENTION)


def commit_shape(cfg, rec, formats, writer, info):
    """Write all files of one shape (`writer(out)`), then its marker (see the module docstring)."""
    writer(cfg.out)
    old = read_marker(cfg.out, rec.synset, rec.shape_id)
    keep = old["formats"] if (old and old["seed"] == cfg.seed and old["views"] == cfg.views
                              and old.get("frames") == FRAMES_CONVENTION) else []
    marker = dict(info, synset=rec.synset, id=rec.shape_id, group=rec.group, formats=sorted(set(formats) | set(keep)),
                  views=cfg.views, seed=cfg.seed, frames=FRAMES_CONVENTION)
    with atomic_write(marker_path(cfg.out, rec.synset, rec.shape_id)) as tmp, open(tmp, "w") as f:
        json.dump(marker, f, sort_keys=True)


def all_markers(out, seed):
    root = os.path.join(out, ".done")
    found = []
    for synset in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        for name in sorted(os.listdir(os.path.join(root, synset))):
            try:
                with open(os.path.join(root, synset, name)) as f:
                    m = json.load(f)
            except (OSError, ValueError):
                continue
            if m.get("seed") == seed:
                found.append(m)
    return found


def write_indexes(out, seed, views):
    """Split files / lists of every format from all finished shapes (rewritten after every run)."""
    by_fmt = {}
    for m in all_markers(out, seed):
        for fmt in m["formats"]:
            by_fmt.setdefault(fmt, []).append(m)
    if "shapenet_part" in by_fmt:
        root = os.path.join(out, "shapenet_part")
        ms = by_fmt["shapenet_part"]
        names = {SYNSET_TO_NAME[m["synset"]] for m in ms}
        shapenet_part.write_synsetoffset2category(root, [n for n in ALL_CATEGORIES if n in names])
        for s in SPLITS:
            shapenet_part.write_split(root, s, [(m["synset"], m["id"]) for m in ms if m["split"] == s])
    if "onet" in by_fmt:
        root = os.path.join(out, "onet")
        ms = by_fmt["onet"]
        onet.write_metadata(root, {m["synset"]: m["group"] for m in ms})
        for synset in sorted({m["synset"] for m in ms}):
            for s in SPLITS:
                onet.write_lst(os.path.join(root, synset, f"{s}.lst"),
                               [m["id"] for m in ms if m["synset"] == synset and m["split"] == s])
    if "ifnet" in by_fmt:
        ifnet.write_split_npz(os.path.join(out, "ifnet", "split.npz"),
                              {s: [f"{m['synset']}/{m['id']}" for m in by_fmt["ifnet"] if m["split"] == s] for s in SPLITS})
    if "r2n2" in by_fmt:
        r2n2.write_split(os.path.join(out, "r2n2", "split.json"),
                         {s: [(m["synset"], m["id"], list(range(m["views"]))) for m in by_fmt["r2n2"] if m["split"] == s]
                          for s in SPLITS})
    if "humans" in by_fmt:
        rows = sorted((m["id"].split("/")[0], int(m["id"].split("/")[1]), m["split"]) for m in by_fmt["humans"])
        humans.write_splits_csv(os.path.join(out, "humans", "d-faust_splits.csv"), rows)


# ------------------------------------------------------------------ the batch driver

def parse_shard(text):
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ShapeLabError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise ShapeLabError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4")
    return i, n


def check_formats(formats, views):
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ShapeLabError(f"--formats: unknown format(s) {', '.join(bad)}; valid: {', '.join(FORMATS)}")
    if views < 0:
        raise ShapeLabError(f"--views must be >= 0, got {views}")


def _init_worker():
    import torch
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle: no worker tracebacks


def _guarded(job):
    fn, item = job
    t0 = time.time()
    try:
        return ("ok", item, fn(item), time.time() - t0)
    except Exception as err:  # one broken item is reported in the summary; the run goes on
        msg = str(err) if isinstance(err, ShapeLabError) else f"{type(err).__name__}: {err}"
        return ("failed", item, msg, time.time() - t0)


def run_batch(fn, items, jobs=1, desc="shapes", progress=True, describe=str):
    """Run fn(item) for every item (in worker processes when jobs > 1) with a progress bar.
    Returns dict(written, failed [(item, message)], results [(item, result)], seconds)."""
    from tqdm import tqdm
    summary = dict(written=0, failed=[], results=[], seconds=0.0)
    t0 = time.time()
    bar = tqdm(total=len(items), desc=desc, unit="shape", disable=not progress, file=sys.stderr)
    jobs_list = [(fn, it) for it in items]

    def collect(res):
        status, item, payload, _ = res
        if status == "ok":
            summary["written"] += 1
            summary["results"].append((item, payload))
        else:
            summary["failed"].append((item, payload))
            bar.write(f"skipped {describe(item)}: {payload}")
        bar.update(1)

    if jobs > 1 and len(items) > 1:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(items)), initializer=_init_worker) as pool:
            for res in pool.imap_unordered(_guarded, jobs_list, chunksize=1):
                collect(res)
    else:
        for job in jobs_list:
            collect(_guarded(job))
    bar.close()
    summary["seconds"] = time.time() - t0
    return summary
