"""Mesh and point-cloud files: .obj .off .ply meshes; .xyz/.xyzn .pts .ply .npz clouds; .seg labels.

Conventions (every reader returns these, every writer takes them):
- vertices / points: float32 (N,3); faces: int64 (F,3).
- normals: float32 (N,3) or None; colors: float32 (N,3) in [0,1] or None; labels: int64 (N,) or None.
- Writers are atomic (temporary file + rename, `modules.utils.atomic_write`).
- Bad files raise `ShapeLabError` naming the file and what was wrong.
"""
import os
import warnings

import numpy as np
import trimesh

from modules.utils import ShapeLabError, atomic_write, require_file

MESH_EXTENSIONS = (".obj", ".off", ".ply")
POINT_CLOUD_EXTENSIONS = (".xyz", ".xyzn", ".pts", ".ply", ".npz")


def _ext(path):
    return os.path.splitext(os.fspath(path))[1].lower()


def check_mesh_arrays(vertices, faces, name="mesh"):
    """Validate (V,3) finite vertices and (F,3) faces indexing inside them; return (float32, int64) arrays."""
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ShapeLabError(f"{name}: vertices must have shape (V,3), got {vertices.shape}")
    if faces.size == 0:
        faces = faces.reshape(0, 3)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ShapeLabError(f"{name}: faces must have shape (F,3) triangles, got {faces.shape}")
    if not np.all(np.isfinite(vertices)):
        raise ShapeLabError(f"{name}: vertices contain NaN or inf")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ShapeLabError(f"{name}: faces index vertex {int(faces.max())} (min {int(faces.min())}) "
                            f"but there are only {len(vertices)} vertices")
    return vertices.astype(np.float32, copy=False), faces.astype(np.int64, copy=False)


def load_mesh(path, allow_empty=False):
    """Read a triangle mesh (.obj .off .ply) as a `trimesh.Trimesh` with process=False (vertex order kept).

    Raises ShapeLabError when the file is missing, is not a mesh, has no faces (unless allow_empty:
    then a readable file with no faces, e.g. "OFF 0 0 0" from an empty reconstruction, gives an empty
    Trimesh), or has faces indexing past the vertices.
    """
    path = os.fspath(path)
    require_file(path, "mesh file")
    ext = _ext(path)
    if ext not in MESH_EXTENSIONS:
        raise ShapeLabError(f"{path}: mesh extension {ext!r} not supported (expected one of {MESH_EXTENSIONS})")
    if ext == ".off":
        fast = _load_plain_off(path)
        if fast is not None:
            vertices, faces = fast
            if len(faces) == 0 and allow_empty:
                return trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=np.int64), process=False)
            if len(vertices) == 0 or len(faces) == 0:
                raise ShapeLabError(f"{path}: not a mesh (no vertices or no triangle faces)")
            check_mesh_arrays(vertices, faces, name=path)
            return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)  # float64, as trimesh reads
    try:
        mesh = trimesh.load(path, process=False)  # not force="mesh": that drops the stored vertex normals
        if isinstance(mesh, trimesh.Scene):  # an OBJ with several objects / groups
            geoms = [g for g in mesh.geometry.values() if isinstance(g, trimesh.Trimesh)]
            mesh = trimesh.util.concatenate(geoms) if geoms else None
    except Exception as err:  # trimesh raises many kinds (ValueError, IndexError, KeyError, ...)
        raise ShapeLabError(f"{path}: not a readable {ext} mesh ({type(err).__name__}: {err})") from err
    if allow_empty and isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) == 0:
        return trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=np.int64), process=False)
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.vertices) == 0 or len(mesh.faces) == 0:
        raise ShapeLabError(f"{path}: not a mesh (no vertices or no triangle faces)")
    check_mesh_arrays(mesh.vertices, mesh.faces, name=path)
    return mesh


def _load_plain_off(path):
    """Fast reader for the common OFF: line 1 'OFF', line 2 'V F E', V lines 'x y z', F lines '3 a b c'.

    Returns (vertices, faces), or None for anything else (trimesh's reader then handles it). NumPy's C
    `loadtxt` parses a 200k-face marching-cubes mesh in ~0.08 s; trimesh's pure-Python reader takes seconds.
    """
    with open(path, "rb") as f:
        first, second = f.readline().strip(), f.readline().split()
    if first != b"OFF" or len(second) != 3:
        return None
    try:
        n_vertices, n_faces = int(second[0]), int(second[1])
        if n_vertices < 0 or n_faces < 0:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data" for an empty mesh
            vertices = np.loadtxt(path, dtype=np.float64, skiprows=2, max_rows=n_vertices, ndmin=2,
                                  comments=None) if n_vertices else np.zeros((0, 3))
            faces = np.loadtxt(path, dtype=np.int64, skiprows=2 + n_vertices, ndmin=2,
                               comments=None) if n_faces else np.zeros((0, 4), dtype=np.int64)
    except ValueError:
        return None
    if vertices.shape != (n_vertices, 3) or faces.shape != (n_faces, 4) or (n_faces and np.any(faces[:, 0] != 3)):
        return None
    return vertices, faces[:, 1:]


def save_mesh(path, vertices, faces, vertex_colors=None, vertex_normals=None):
    """Write a triangle mesh; the format (.obj .off .ply) comes from the extension. Atomic."""
    path = os.fspath(path)
    ext = _ext(path)
    if ext not in MESH_EXTENSIONS:
        raise ShapeLabError(f"{path}: mesh extension {ext!r} not supported (expected one of {MESH_EXTENSIONS})")
    vertices, faces = check_mesh_arrays(_to_numpy(vertices), _to_numpy(faces), name=path)
    kwargs = {}
    if vertex_colors is not None:
        kwargs["vertex_colors"] = _colors_to_uint8(_to_numpy(vertex_colors), len(vertices), path)
    if vertex_normals is not None:
        kwargs["vertex_normals"] = _check_per_point(_to_numpy(vertex_normals), len(vertices), "vertex_normals", path)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, **kwargs)
    export_kwargs = {}
    if ext == ".obj":
        export_kwargs["include_normals"] = vertex_normals is not None
        export_kwargs["include_color"] = vertex_colors is not None
    elif ext == ".ply" and vertex_normals is not None:
        export_kwargs["vertex_normal"] = True
    with atomic_write(path) as tmp:
        mesh.export(tmp, file_type=ext[1:], **export_kwargs)


def load_point_cloud(path):
    """Read a point cloud: dict(points (N,3) float32, normals, colors, labels), absent fields None.

    .xyz / .xyzn: whitespace columns "x y z [nx ny nz]"; .pts: ShapeNet-Part "x y z" lines;
    .ply: vertices (+ nx ny nz, red green blue, label if present); .npz: keys points
    [normals colors labels]. A mesh .ply gives its vertices.
    """
    path = os.fspath(path)
    require_file(path, "point cloud file")
    ext = _ext(path)
    out = dict(points=None, normals=None, colors=None, labels=None)
    if ext in (".xyz", ".xyzn", ".pts"):
        table = _load_table(path)
        if table.shape[1] not in (3, 6):
            raise ShapeLabError(f"{path}: expected 3 (x y z) or 6 (x y z nx ny nz) columns, got {table.shape[1]}")
        out["points"] = table[:, :3]
        if table.shape[1] == 6:
            out["normals"] = table[:, 3:6]
    elif ext == ".ply":
        try:
            geom = trimesh.load(path, process=False)
        except Exception as err:
            raise ShapeLabError(f"{path}: not a readable .ply ({type(err).__name__}: {err})") from err
        raw = getattr(geom, "metadata", {}).get("_ply_raw", {}).get("vertex", {}).get("data")
        if raw is None or not hasattr(raw, "dtype") or raw.dtype.names is None:
            raise ShapeLabError(f"{path}: .ply has no vertex element")
        names = raw.dtype.names
        for field in ("x", "y", "z"):
            if field not in names:
                raise ShapeLabError(f"{path}: .ply vertex element lacks property {field!r}")
        out["points"] = np.stack([raw["x"], raw["y"], raw["z"]], 1)
        if all(n in names for n in ("nx", "ny", "nz")):
            out["normals"] = np.stack([raw["nx"], raw["ny"], raw["nz"]], 1)
        if all(n in names for n in ("red", "green", "blue")):
            rgb = np.stack([raw["red"], raw["green"], raw["blue"]], 1)
            out["colors"] = rgb / 255.0 if rgb.dtype == np.uint8 else rgb
        if "label" in names:
            out["labels"] = np.asarray(raw["label"])
    elif ext == ".npz":
        try:
            with np.load(path) as data:
                if "points" not in data:
                    raise ShapeLabError(f"{path}: .npz lacks the key 'points' (has {sorted(data.keys())})")
                for key in out:
                    if key in data:
                        out[key] = np.asarray(data[key])
        except ShapeLabError:
            raise
        except Exception as err:
            raise ShapeLabError(f"{path}: not a readable .npz ({type(err).__name__}: {err})") from err
    else:
        raise ShapeLabError(f"{path}: point cloud extension {ext!r} not supported "
                            f"(expected one of {POINT_CLOUD_EXTENSIONS})")
    return _check_cloud(out, path)


def save_point_cloud(path, points, normals=None, colors=None, labels=None):
    """Write a point cloud (.xyz/.xyzn/.pts text, .ply binary, .npz). Atomic.

    Text formats hold points (+ normals for .xyz/.xyzn); colors/labels there raise, use .ply or .npz.
    """
    path = os.fspath(path)
    ext = _ext(path)
    cloud = _check_cloud(dict(points=_to_numpy(points), normals=_to_numpy(normals),
                              colors=_to_numpy(colors), labels=_to_numpy(labels)), path)
    if cloud["points"] is None or len(cloud["points"]) == 0:
        raise ShapeLabError(f"{path}: refusing to write an empty point cloud")
    if ext in (".xyz", ".xyzn", ".pts"):
        if cloud["colors"] is not None or cloud["labels"] is not None:
            raise ShapeLabError(f"{path}: {ext} holds only points and normals; use .ply or .npz for colors/labels")
        if ext == ".pts" and cloud["normals"] is not None:
            raise ShapeLabError(f"{path}: .pts holds only x y z; use .xyzn, .ply or .npz for normals")
        if ext == ".xyzn" and cloud["normals"] is None:
            raise ShapeLabError(f"{path}: .xyzn needs normals")
        cols = [cloud["points"]] + ([cloud["normals"]] if cloud["normals"] is not None else [])
        with atomic_write(path) as tmp:
            np.savetxt(tmp, np.concatenate(cols, 1), fmt="%.6f")
    elif ext == ".ply":
        _write_ply_points(path, cloud)
    elif ext == ".npz":
        with atomic_write(path) as tmp:
            np.savez(tmp, **{k: v for k, v in cloud.items() if v is not None})
    else:
        raise ShapeLabError(f"{path}: point cloud extension {ext!r} not supported "
                            f"(expected one of {POINT_CLOUD_EXTENSIONS})")


def load_seg(path):
    """Read a ShapeNet-Part .seg file: one integer label per line -> int64 (N,)."""
    path = os.fspath(path)
    require_file(path, "label file")
    try:
        labels = np.loadtxt(path, dtype=np.int64, ndmin=1)
    except ValueError as err:
        raise ShapeLabError(f"{path}: expected one integer label per line ({err})") from err
    if labels.ndim != 1:
        raise ShapeLabError(f"{path}: expected one integer label per line, got {labels.shape[1]} columns")
    return labels


def save_seg(path, labels):
    labels = np.asarray(_to_numpy(labels))
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ShapeLabError(f"{path}: labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    with atomic_write(path) as tmp:
        np.savetxt(tmp, labels, fmt="%d")


# ---------------------------------------------------------------- helpers

def _to_numpy(x):
    if x is None:
        return None
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _load_table(path):
    try:
        with warnings.catch_warnings():  # an empty file is reported below as an error, not a warning
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ShapeLabError(f"{path}: expected whitespace-separated numbers ({err})") from err
    if table.size == 0:
        raise ShapeLabError(f"{path}: empty point cloud")
    return table


def _check_per_point(arr, n, field, path):
    arr = np.asarray(arr, dtype=np.float32)
    if arr.shape != (n, 3):
        raise ShapeLabError(f"{path}: {field} must have shape ({n},3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ShapeLabError(f"{path}: {field} contain NaN or inf")
    return arr


def _colors_to_uint8(colors, n, path):
    colors = np.asarray(colors)
    if colors.ndim != 2 or colors.shape[0] != n or colors.shape[1] not in (3, 4):
        raise ShapeLabError(f"{path}: colors must have shape ({n},3), got {colors.shape}")
    if np.issubdtype(colors.dtype, np.floating):
        return np.clip(np.round(colors * 255.0), 0, 255).astype(np.uint8)
    return colors.astype(np.uint8)


def _check_cloud(cloud, path):
    points = cloud["points"]
    if points is None:
        raise ShapeLabError(f"{path}: no points")
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ShapeLabError(f"{path}: points must have shape (N,3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ShapeLabError(f"{path}: points contain NaN or inf")
    n = len(points)
    cloud["points"] = points.astype(np.float32)
    if cloud["normals"] is not None:
        cloud["normals"] = _check_per_point(cloud["normals"], n, "normals", path)
    if cloud["colors"] is not None:
        colors = np.asarray(cloud["colors"])
        if np.issubdtype(colors.dtype, np.integer):
            colors = colors / 255.0
        cloud["colors"] = _check_per_point(colors[:, :3] if colors.ndim == 2 else colors, n, "colors", path)
    if cloud["labels"] is not None:
        labels = np.asarray(cloud["labels"])
        if labels.shape != (n,):
            raise ShapeLabError(f"{path}: labels must have shape ({n},), got {labels.shape}")
        cloud["labels"] = labels.astype(np.int64)
    return cloud


def _write_ply_points(path, cloud):
    """Binary little-endian PLY with x y z [nx ny nz] [red green blue] [label] vertex properties."""
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if cloud["normals"] is not None:
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
    if cloud["colors"] is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if cloud["labels"] is not None:
        fields += [("label", "<i4")]
    n = len(cloud["points"])
    data = np.empty(n, dtype=fields)
    for i, axis in enumerate("xyz"):
        data[axis] = cloud["points"][:, i]
        if cloud["normals"] is not None:
            data["n" + axis] = cloud["normals"][:, i]
    if cloud["colors"] is not None:
        rgb = _colors_to_uint8(cloud["colors"], n, path)
        data["red"], data["green"], data["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    if cloud["labels"] is not None:
        data["label"] = cloud["labels"]
    ply_types = {"<f4": "float", "u1": "uchar", "<i4": "int"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {ply_types[t]} {name}" for name, t in fields]
    header += ["end_header"]
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            f.write(data.tobytes())
