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
        plain = _load_off(path)   # checks the header's counts against the file, names what is missing
        if plain is not None:
            vertices, faces = plain
            if len(faces) == 0 and allow_empty:
                return trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=np.int64), process=False)
            if len(vertices) == 0 or len(faces) == 0:
                raise ShapeLabError(f"{path}: not a mesh (no vertices or no triangle faces)")
            check_mesh_arrays(vertices, faces, name=path)
            return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)  # float64, as trimesh reads
    elif ext == ".ply":
        _check_ply_header(path)
    else:
        _check_obj_tail(path)
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


def _load_off(path):
    """Read an ASCII OFF ([C][N]OFF keyword, 'V F E' counts, V vertex rows, F face rows 'n i1 .. in').

    Every count the header promises is checked: fewer or more data rows than V + F, or a row with too
    few numbers (a file cut mid-row), is a ShapeLabError naming the file, the line and both counts.
    Returns (vertices float64 (V,3), faces int64 (F,3)) when every face is a triangle, None for a valid
    file with polygons or a binary OFF (trimesh's reader then triangulates it). NumPy's C parser reads
    a 200k-face marching-cubes mesh in ~0.1 s; trimesh's pure-Python reader takes seconds.
    """
    with open(path, "rb") as f:
        data = f.read()
    lines = data.splitlines()
    rows = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith(b"#")]
    if not rows:
        raise ShapeLabError(f"{path}: empty file, expected an OFF header")
    first = rows[0][1].split()
    keyword = first[0]
    if not keyword.upper().endswith(b"OFF") and b"OFF" in keyword.upper():  # ModelNet's 'OFF490 518 0'
        cut = keyword.upper().index(b"OFF") + 3
        first = [keyword[:cut], keyword[cut:]] + first[1:]
        keyword = first[0]
    if not keyword.upper().endswith(b"OFF"):
        raise ShapeLabError(f"{path}: line {rows[0][0]}: expected the OFF keyword, got {keyword[:20]!r}")
    if any(t.upper() == b"BINARY" for t in first[1:]):
        return None
    counts, body = first[1:], rows[1:]
    if len(counts) < 2:
        if not body:
            raise ShapeLabError(f"{path}: the OFF header has no 'vertices faces edges' line")
        counts, body = body[0][1].split(), body[1:]
    try:
        n_vertices, n_faces = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        raise ShapeLabError(f"{path}: OFF header counts {b' '.join(counts[:3]).decode(errors='replace')!r} "
                            f"are not 'vertices faces edges'") from None
    if n_vertices < 0 or n_faces < 0:
        raise ShapeLabError(f"{path}: OFF header counts must be >= 0, got {n_vertices} vertices, {n_faces} faces")
    if len(body) != n_vertices + n_faces:
        have_v = min(len(body), n_vertices)
        raise ShapeLabError(f"{path}: header promises {n_vertices} vertices and {n_faces} faces, the file has "
                            f"{have_v} vertex rows and {len(body) - have_v} face rows (truncated or wrong header)")
    width = [len(ln.split()) for _, ln in body]
    vdim = width[0] if n_vertices else 3
    for k in range(n_vertices):
        if width[k] != vdim or width[k] < 3:
            raise ShapeLabError(f"{path}: line {body[k][0]}: vertex row has {width[k]} numbers, expected "
                                f"{max(vdim, 3)} like the first vertex row (truncated?)")
    try:
        vertices = (np.loadtxt([ln for _, ln in body[:n_vertices]], dtype=np.float64, ndmin=2, comments=None)[:, :3]
                    if n_vertices else np.zeros((0, 3)))
        face_rows = body[n_vertices:]
        sizes = np.array([int(ln.split(None, 1)[0]) for _, ln in face_rows], dtype=np.int64)
    except ValueError as err:
        raise ShapeLabError(f"{path}: OFF rows must hold numbers ({err})") from err
    short = np.flatnonzero(np.asarray(width[n_vertices:], dtype=np.int64) < sizes + 1) if n_faces else []
    if len(short) or (n_faces and sizes.min() < 3):
        k = int(short[0]) if len(short) else int(np.argmin(sizes))
        raise ShapeLabError(f"{path}: line {face_rows[k][0]}: face row '{face_rows[k][1].decode(errors='replace')[:40]}' "
                            f"does not hold n >= 3 then n vertex indices (truncated?)")
    if n_faces and np.any(sizes != 3):
        return None  # polygons: trimesh triangulates them
    try:
        faces = (np.loadtxt([ln for _, ln in face_rows], dtype=np.int64, ndmin=2, comments=None, usecols=(1, 2, 3))
                 if n_faces else np.zeros((0, 3), dtype=np.int64))
    except ValueError as err:
        raise ShapeLabError(f"{path}: face rows must hold integer vertex indices ({err})") from err
    return vertices, faces


_PLY_SIZES = {"char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2, "uint16": 2,
              "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}


def _check_ply_header(path):
    """Check that a .ply holds at least what its header promises (trimesh reads a cut ASCII file silently).

    ASCII: one non-empty line per element row. Binary: at least the bytes of every row, counting each
    list property (a face) as a triangle. A shortfall is a ShapeLabError naming the file and the counts.
    """
    with open(path, "rb") as f:
        head = f.read(65536)
        if not head.startswith(b"ply"):
            raise ShapeLabError(f"{path}: not a PLY file (it does not start with 'ply')")
        end = head.find(b"end_header")
        if end < 0:
            raise ShapeLabError(f"{path}: PLY header has no end_header line")
        body_start = head.index(b"\n", end) + 1 if b"\n" in head[end:] else len(head)
        header = head[:end].decode("ascii", errors="replace").splitlines()
        f.seek(0, os.SEEK_END)
        body_bytes = f.tell() - body_start
    fmt, elements = None, []
    for line in header:
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "format" and len(tok) > 1:
            fmt = tok[1]
        elif tok[0] == "element" and len(tok) == 3:
            try:
                elements.append([tok[1], int(tok[2]), 0, []])
            except ValueError:
                raise ShapeLabError(f"{path}: PLY header line {line!r}: the count is not an integer") from None
        elif tok[0] == "property" and elements:
            is_list = len(tok) >= 5 and tok[1] == "list"
            if is_list:
                size = _PLY_SIZES.get(tok[2], 1) + 3 * _PLY_SIZES.get(tok[3], 4)
            else:
                size = _PLY_SIZES.get(tok[1] if len(tok) > 1 else "", 4)
            elements[-1][2] += size
            elements[-1][3].append(is_list)
    promised = ", ".join(f"{n} {name}" for name, n, _, _ in elements)
    if fmt == "ascii":
        with open(path, "rb") as f:
            f.seek(body_start)
            have, last_row = 0, None
            for ln in f:
                if ln.strip():
                    have, last_row = have + 1, ln
        need = sum(n for _, n, _, _ in elements)
        if have < need:
            raise ShapeLabError(f"{path}: header promises {promised} ({need} rows), the file has {have} rows (truncated)")
        last = next((e for e in reversed(elements) if e[1] > 0), None)
        if last is not None and last_row is not None:   # a file cut inside its last row
            props, tok = last[3], last_row.split()
            want = len(props) if not any(props) else None
            if props and props[0] and len(props) == 1 and tok and tok[0].isdigit():
                want = 1 + int(tok[0])              # a face row: n, then n indices
            if want is not None and len(tok) < want:
                raise ShapeLabError(f"{path}: the last {last[0]} row has {len(tok)} values, expected {want} (truncated)")
    elif fmt in ("binary_little_endian", "binary_big_endian"):
        need = sum(n * size for _, n, size, _ in elements)
        if body_bytes < need:
            raise ShapeLabError(f"{path}: header promises {promised} (>= {need} bytes), the file has "
                                f"{body_bytes} bytes after the header (truncated)")


def _check_obj_tail(path):
    """An .obj has no counts to check; a file cut mid-row shows in its last row: 'v' with fewer than three
    numbers or 'f' with fewer than three vertices is a ShapeLabError naming the line."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 4096))
        tail = f.read()
    lines = tail.splitlines()
    for back, line in enumerate(reversed(lines)):
        tok = line.split()
        if not tok:
            continue
        if (tok[0] == b"v" and len(tok) < 4) or (tok[0] == b"f" and len(tok) < 4):
            with open(path, "rb") as f:
                number = sum(1 for _ in f) - back
            raise ShapeLabError(f"{path}: line {number}: '{line.decode(errors='replace')[:40]}' has too few "
                                f"values for a {tok[0].decode()} row (truncated?)")
        break


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
    """Whitespace columns of numbers; every row must have as many as the first (a row cut mid-number is an
    error naming the line, not a point read from half a row)."""
    try:
        with warnings.catch_warnings():  # an empty file is reported below as an error, not a warning
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        _raise_bad_row(path)
        raise ShapeLabError(f"{path}: expected whitespace-separated numbers ({err})") from err
    if table.size == 0:
        raise ShapeLabError(f"{path}: empty point cloud")
    return table


def _raise_bad_row(path):
    """Find the first row whose column count differs from the first row's (or that is not numbers)."""
    width = None
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            tok = line.split(b"#", 1)[0].split()
            if not tok:
                continue
            try:
                [float(t) for t in tok]
            except ValueError:
                raise ShapeLabError(f"{path}: line {number}: not a row of numbers: "
                                    f"'{line.decode(errors='replace').strip()[:40]}'") from None
            if width is None:
                width = len(tok)
            elif len(tok) != width:
                raise ShapeLabError(f"{path}: line {number}: {len(tok)} numbers where line 1 has {width} "
                                    f"(a truncated or malformed row)")


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
