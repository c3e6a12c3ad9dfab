"""Coordinate frames: the project's canonical frame, the frames of the real datasets, and the rotations
between them (the one place that knows them).

A frame is given by two axis names, its UP and its FRONT (the direction the front of an object faces),
each one of x, y, z, -x, -y, -z. The third axis, up x front, follows (right-handed; these are rotations,
never mirrors).

CANONICAL = up +y, front +z (NOT ShapeNetCore v2's front -z: a half turn about y from it): the frame of the embedded procedural data (`modules.data.shapes`: chairs'
backs at -z, airplanes' noses at +z, tables long along x) and of every shipped weight in
pretrained_models/. Every reader returns this frame by default; every writer of the embedded data writes
the frame of the real dataset its layout imitates (`DATASET_FRAMES`).

Named dataset frames (facts and inferences: README "Frames and cameras of each dataset"):
    shapenet_v1  up y, front +x   ShapeNetCore v1 model.obj, the ONet release (built from v1 by translation
                                  and scale only), R2N2 renderings' meshes and ShapeNetVox32 (binvox axes =
                                  v1 axes after the xzy->xyz fix), ShapeNet-Part .pts, IF-Net/DISN meshes
    shapenet_v2  up y, front -z   ShapeNetCore v2 models/model_normalized.obj (v1 -> v2 = +90 deg about y)
    modelnet     up z, front -y   ModelNet10/40 .off (z-up; four chairs measured face -y)
    dfaust       up y, front +z   DFAUST / FAUST registrations (y-up metres; front from the Neural Parts
                                  render camera at +z, not confirmed)
    canonical    up y, front +z

`frame_rotation(up, front)` -> R (3,3) with R @ up = +y, R @ front = +z: canonical = R @ source.
"""
import numpy as np

from modules.geometry.io import load_mesh
from modules.utils import ShapeLabError

AXES = ("x", "y", "z", "-x", "-y", "-z")
CANONICAL = ("y", "z")
DATASET_FRAMES = {
    "canonical": CANONICAL,
    "shapenet_v1": ("y", "x"),
    "shapenet_v2": ("y", "-z"),
    "modelnet": ("z", "-y"),
    "dfaust": ("y", "z"),
}


def axis_vector(name, flag="axis"):
    """(3,) float64 unit vector of an axis name 'x', '-y', ... (also '+z'); anything else is a one-line
    ShapeLabError naming `flag`."""
    text = str(name).strip().lower()
    if text.startswith("+"):
        text = text[1:]
    if text not in AXES:
        raise ShapeLabError(f"{flag} {name!r}: expected one of {', '.join(AXES)}")
    v = np.zeros(3)
    v["xyz".index(text[-1])] = -1.0 if text.startswith("-") else 1.0
    return v


def frame_axes(frame, flag="frame"):
    """(up, front) axis names of a frame: a name of DATASET_FRAMES, an (up, front) pair, or None (canonical)."""
    if frame is None:
        return CANONICAL
    if isinstance(frame, str):
        if frame not in DATASET_FRAMES:
            raise ShapeLabError(f"{flag} {frame!r}: expected one of {', '.join(DATASET_FRAMES)} "
                                f"or an (up, front) pair of axes")
        return DATASET_FRAMES[frame]
    try:
        up, front = frame
    except (TypeError, ValueError):
        raise ShapeLabError(f"{flag} {frame!r}: expected a frame name or an (up, front) pair of axes") from None
    return str(up), str(front)


def _basis(up, front, flags=("--up", "--front")):
    """Rows (right = up x front, up, front) of a frame, in that frame's coordinates."""
    u, f = axis_vector(up, flags[0]), axis_vector(front, flags[1])
    if abs(float(u @ f)) > 0.5:
        raise ShapeLabError(f"{flags[0]} {up} {flags[1]} {front}: the front axis must be perpendicular to the up axis")
    return np.stack([np.cross(u, f), u, f])


def frame_rotation(up, front, to=CANONICAL):
    """(3,3) float64 rotation taking coordinates in the frame (up, front) to the frame `to` (default the
    canonical one): x_to = R @ x_source, so R @ up = to's up and R @ front = to's front. Orthonormal, det +1."""
    to_up, to_front = frame_axes(to, "to")
    return _basis(to_up, to_front, ("to up", "to front")).T @ _basis(up, front)


def rotation_between(source, target=None):
    """Rotation from frame `source` to frame `target` (names, (up, front) pairs, or None = canonical)."""
    up, front = frame_axes(source, "source frame")
    return frame_rotation(up, front, frame_axes(target, "target frame"))


def to_canonical_rotation(frame):
    """R with canonical = R @ x for coordinates x in `frame` (None / 'canonical': the identity)."""
    return rotation_between(frame, None)


def from_canonical_rotation(frame):
    """R with x = R @ canonical for coordinates x in `frame`."""
    return rotation_between(None, frame)


def is_identity(R):
    return bool(np.allclose(R, np.eye(3)))


def rotate_points(points, R):
    """(..., 3) points or directions (normals) -> R @ each, same dtype (exact for axis permutations)."""
    a = np.asarray(points)
    if is_identity(R):
        return a
    out = a.astype(np.float64) @ np.asarray(R, np.float64).T
    return out.astype(a.dtype) if np.issubdtype(a.dtype, np.floating) else out


def load_mesh_in_frame(path, frame, allow_empty=False):
    """`load_mesh(path)` (a trimesh.Trimesh) with its vertices turned from `frame` into the canonical frame."""
    mesh = load_mesh(path, allow_empty=allow_empty)
    R = to_canonical_rotation(frame)
    if not is_identity(R):
        mesh.vertices = rotate_points(np.asarray(mesh.vertices, np.float64), R)
    return mesh


def rotate_world_mat(world_mat, R):
    """A camera [R_cam | t] (3,4) over coordinates x -> the same camera over y = R @ x: [R_cam R^T | t]
    (x_cam = R_cam x + t = R_cam R^T y + t). The image is unchanged; float64."""
    w = np.array(world_mat, np.float64)
    w[:3, :3] = w[:3, :3] @ np.asarray(R, np.float64).T
    return w


def rotate_camera(camera, R):
    """A `modules.geometry.cameras.Camera` over coordinates x -> the same camera over y = R @ x (same image)."""
    if is_identity(R):
        return camera
    Rt = camera.R.new_tensor(np.asarray(R, np.float64).T)
    return type(camera)(K=camera.K, R=camera.R @ Rt, t=camera.t, width=camera.width, height=camera.height,
                        near=camera.near, far=camera.far)


def _signed_permutation(R, what):
    R = np.asarray(R, np.float64)
    P = np.rint(R)
    if not np.allclose(R, P, atol=1e-9) or not np.array_equal(np.abs(P).sum(0), np.ones(3)) \
            or not np.array_equal(np.abs(P).sum(1), np.ones(3)):
        raise ShapeLabError(f"{what}: needs an axis permutation with signs, got rotation {R.tolist()}")
    return P.astype(int)


def rotate_grid(grid, R):
    """A voxel grid (X,Y,Z,...) indexed [x,y,z] over a cube -> the grid of the same voxels in coordinates
    y = R @ x (R an axis permutation with signs: a transpose plus flips; the cube maps onto a cube)."""
    P = _signed_permutation(R, "rotate_grid")
    g = np.asarray(grid)
    src = [int(np.flatnonzero(P[a])[0]) for a in range(3)]          # new axis a reads old axis src[a]
    out = np.transpose(g, src + list(range(3, g.ndim)))
    for a in range(3):
        if P[a, src[a]] < 0:
            out = np.flip(out, axis=a)
    return np.ascontiguousarray(out)


def rotate_cube(lo, side, R):
    """Minimum corner (3,) of the cube lo + [0, side]^3 after y = R @ x (R a signed axis permutation)."""
    P = _signed_permutation(R, "rotate_cube")
    lo = np.asarray(lo, np.float64).reshape(3)
    return np.minimum(P @ lo, P @ (lo + float(side)))


def rotate_binvox(grid, translate, scale, R):
    """A binvox grid placed by its header (grid [x,y,z], translate = the cube's minimum corner, scale = its
    side) -> the same voxels in coordinates y = R @ x: (grid, translate, scale)."""
    return rotate_grid(grid, R), rotate_cube(translate, scale, R), float(scale)


def rotation_about_axis(angle, axis="y"):
    """(3,3) float64 rotation by `angle` radians about an axis ('y' = the canonical up; right-handed)."""
    a = axis_vector(axis, "rotation axis")
    c, s = np.cos(angle), np.sin(angle)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + s * K + (1 - c) * K @ K


# ------------------------------------------------------------------ command-line options

AXIS_METAVAR = "{x,y,z,-x,-y,-z}"


def add_axis_arguments(parser, what="the input", default_text="the format's frame"):
    """--up / --front options (validated by `frame_from_options`, so a bad value is a one-line error)."""
    parser.add_argument("--up", default=None, metavar=AXIS_METAVAR,
                        help=f"up axis of {what} (default: {default_text}); with --front, the input is turned "
                             f"into the canonical frame (y up, front +z)")
    parser.add_argument("--front", default=None, metavar=AXIS_METAVAR,
                        help=f"axis {what}'s objects face (default: {default_text})")


def frame_from_options(up, front, default, flags=("--up", "--front")):
    """(up, front) from options that may be None (each then taken from the frame `default`), checked."""
    d_up, d_front = frame_axes(default, "default frame")
    up = d_up if up in (None, "") else str(up)
    front = d_front if front in (None, "") else str(front)
    _basis(up, front, flags)
    return up, front


def check_axis_options(up, front, flags=("--up", "--front")):
    """Check --up / --front values that may be None (one-line ShapeLabError naming the flag)."""
    if up not in (None, ""):
        axis_vector(up, flags[0])
    if front not in (None, ""):
        axis_vector(front, flags[1])
    if up not in (None, "") and front not in (None, ""):
        _basis(up, front, flags)


def frame_name(frame):
    """A short text for reports: 'shapenet_v1 (up y, front x)' or 'up z, front -y'."""
    up, front = frame_axes(frame)
    names = [n for n, v in DATASET_FRAMES.items() if v == (up, front)]
    text = f"up {up}, front {front}"
    return f"{frame} ({text})" if isinstance(frame, str) else (f"{names[0]} ({text})" if names else text)
