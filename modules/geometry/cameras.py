"""Pinhole cameras for the rasterizer: intrinsics K, world->camera extrinsics (R, t), image size.

Conventions (OpenCV style, stated once here and relied on everywhere):
  * world space is y-up (ShapeNet, DFAUST);
  * camera space: x right, y down, z forward (points in front of the camera have z > 0);
  * pixels: u to the right, v down; pixel (row i, column j) has its centre at (u, v) = (j+0.5, i+0.5),
    so the image spans u in [0, W], v in [0, H];
  * x_cam = R @ x_world + t; [u*z, v*z, z] = K @ x_cam; "depth" is the camera-space z.

ONet / Choy et al. `img_choy2016/cameras.npz` stores, per view, `world_mat_i` = [R | t] (3x4) and
`camera_mat_i` (3x3). Measured on the real release: `camera_mat` is a PIXEL intrinsic matrix (f = 35/32*137
= 149.84375, c = 68.5 for the 137x137 images: the R2N2 Blender camera) and `world_mat` maps the shape's
ORIGINAL (ShapeNet v1) frame, not the normalised frame of `pointcloud.npz`/`points.npz`; a normalised
point p is first un-normalised, x = scale * p + loc, with the `loc`/`scale` stored in those npz files.
`from_onet(..., loc, scale)` folds that into the camera (see `Camera.transformed`); ONet's own
`fix_K_camera` maps K to [-1, 1] image coordinates (`ndc_matrix`), `units="ndc"` reads such matrices.

R2N2 `rendering_metadata.txt` rows (azimuth, elevation, in-plane, distance ratio, fov) give cameras as
PyTorch3D's R2N2 dataset computes them (`r2n2_camera`): distance = 1.75 * ratio, in-plane and fov are
ignored, fixed intrinsics 2.1875 in NDC = 149.84375 px at 137 px (a 49.1 degree field of view); in the
v1 frame (y up) azimuth 0 puts the camera on +x, azimuth 90 on +z, elevation raises it along +y.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from modules.utils import ShapeLabError


def _tensor(x, shape, name, dtype=torch.float32):
    # Floating tensors are kept as given (dtype, device, autograd); anything else becomes float32.
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    if tuple(t.shape) != tuple(shape):
        raise ShapeLabError(f"camera field '{name}': expected shape {tuple(shape)}, got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ShapeLabError(f"camera field '{name}': contains NaN or inf")
    return t if isinstance(x, torch.Tensor) and t.is_floating_point() else t.to(dtype)


def ndc_matrix(width, height, dtype=torch.float64):
    """S mapping pixel coordinates (u, v, 1) to ONet's normalised [-1, 1] image coordinates."""
    return torch.tensor([[2.0 / width, 0, -1], [0, 2.0 / height, -1], [0, 0, 1]], dtype=dtype)


@dataclass
class Camera:
    """One pinhole camera. K (3,3) pixel intrinsics, R (3,3) and t (3,) world->camera.

    K, R and t are torch tensors; they may require grad (camera optimisation) and everything
    below is written with differentiable torch ops.
    """
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    width: int
    height: int
    near: float = 1e-2
    far: float = 100.0

    def __post_init__(self):
        self.width, self.height = int(self.width), int(self.height)
        if self.width <= 0 or self.height <= 0:
            raise ShapeLabError(f"camera: width and height must be positive, got {self.width}x{self.height}")
        if not (0 < self.near < self.far):
            raise ShapeLabError(f"camera: need 0 < near < far, got near={self.near}, far={self.far}")
        self.K = _tensor(self.K, (3, 3), "K")
        self.R = _tensor(self.R, (3, 3), "R")
        self.t = _tensor(self.t, (3,), "t")

    # --- geometry -------------------------------------------------------------------------------
    @property
    def center(self):
        """Camera centre in world coordinates, -R^T t."""
        return -(self.R.transpose(0, 1) @ self.t)

    @property
    def forward(self):
        """Unit viewing direction in world coordinates (camera +z axis)."""
        return self.R[2]

    def world_to_camera(self, points):
        """(..., 3) world points -> (..., 3) camera-space points (x right, y down, z forward)."""
        points = torch.as_tensor(points, dtype=self.R.dtype)
        return points @ self.R.transpose(0, 1) + self.t

    def camera_to_pixels(self, p_cam):
        """(..., 3) camera-space points -> (..., 2) pixel coordinates (u, v). No near-plane check."""
        uvw = p_cam @ self.K.to(p_cam.dtype).transpose(0, 1)
        return uvw[..., :2] / uvw[..., 2:3]

    def project(self, points, return_depth=False):
        """(..., 3) world points -> (..., 2) pixel coordinates (u, v); with return_depth also (...,) z."""
        p_cam = self.world_to_camera(points)
        uv = self.camera_to_pixels(p_cam)
        return (uv, p_cam[..., 2]) if return_depth else uv

    def unproject(self, uv, depth):
        """Inverse of project: (..., 2) pixels and (...,) camera z -> (..., 3) world points."""
        uv = torch.as_tensor(uv, dtype=self.K.dtype)
        depth = torch.as_tensor(depth, dtype=self.K.dtype)
        homo = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)
        p_cam = (homo @ torch.linalg.inv(self.K).transpose(0, 1)) * depth[..., None]
        return (p_cam - self.t) @ self.R

    def resized(self, width, height):
        """The same camera for another image size (e.g. supersampling): pixel coordinates scale with the
        image because pixel (i, j) covers [j, j+1] x [i, i+1]."""
        S = torch.diag(torch.tensor([width / self.width, height / self.height, 1.0], dtype=self.K.dtype))
        return Camera(K=S @ self.K, R=self.R, t=self.t, width=width, height=height, near=self.near, far=self.far)

    # --- saving ---------------------------------------------------------------------------------
    def to_dict(self):
        """Plain dict of numpy arrays / numbers (np.savez(**cam.to_dict()) or json with .tolist())."""
        return {"K": self.K.detach().cpu().double().numpy(), "R": self.R.detach().cpu().double().numpy(),
                "t": self.t.detach().cpu().double().numpy(), "width": int(self.width),
                "height": int(self.height), "near": float(self.near), "far": float(self.far)}

    @classmethod
    def from_dict(cls, d, source="camera dict"):
        missing = [k for k in ("K", "R", "t", "width", "height") if k not in d]
        if missing:
            raise ShapeLabError(f"{source}: missing camera field(s) {missing}")
        extra = {k: float(np.asarray(d[k])) for k in ("near", "far") if k in d}
        return cls(K=np.asarray(d["K"], np.float64), R=np.asarray(d["R"], np.float64),
                   t=np.asarray(d["t"], np.float64), width=int(np.asarray(d["width"])),
                   height=int(np.asarray(d["height"])), **extra)

    def transformed(self, scale, loc=(0.0, 0.0, 0.0)):
        """The same camera for coordinates p related to this camera's world by x = scale * p + loc.

        x_cam = R (scale p + loc) + t = scale * (R p + (R loc + t) / scale), and a pinhole projection
        ignores a uniform scale of camera space, so the result is a rigid camera with t' = (R loc + t)/scale
        (depths, near and far in p's units). Used for ONet's normalised files (loc/scale of
        pointcloud.npz) and for renders made in another frame than the stored one."""
        scale = float(scale)
        if not scale > 0:
            raise ShapeLabError(f"camera transform: scale must be positive, got {scale}")
        loc = torch.as_tensor(np.asarray(loc, np.float64), dtype=self.R.dtype)
        if loc.shape != (3,):
            raise ShapeLabError(f"camera transform: loc must have 3 values, got shape {tuple(loc.shape)}")
        return Camera(K=self.K, R=self.R, t=(self.R @ loc + self.t) / scale, width=self.width, height=self.height,
                      near=self.near / scale, far=self.far / scale)

    def to_onet(self):
        """(world_mat (3,4), camera_mat (3,3)) numpy float32 in the real ONet cameras.npz convention:
        camera_mat in pixel units, world_mat = [R | t] of this camera's world (write cameras of the frame
        the loc/scale of pointcloud.npz un-normalise to; see `transformed`)."""
        world_mat = torch.cat([self.R.detach().double(), self.t.detach().double()[:, None]], dim=1)
        return world_mat.cpu().numpy().astype(np.float32), self.K.detach().double().cpu().numpy().astype(np.float32)

    @classmethod
    def from_onet(cls, world_mat, camera_mat, width, height, loc=None, scale=None, units="pixels", **kwargs):
        """Camera from ONet's `world_mat_i` (3,4) and `camera_mat_i` (3,3) and the image size.

        units: "pixels" (the real release, and what `to_onet` writes) or "ndc" (K already mapped to
        [-1, 1] by ONet's `fix_K_camera`, as DVR-style files store it). With loc (3,) and scale from
        `pointcloud.npz`/`points.npz` the camera projects the NORMALISED points of those files;
        without them it projects original-frame (ShapeNet v1) coordinates."""
        world_mat = np.asarray(world_mat, np.float64)
        camera_mat = np.asarray(camera_mat, np.float64)
        if world_mat.shape not in ((3, 4), (4, 4)):
            raise ShapeLabError(f"world_mat: expected shape (3,4), got {world_mat.shape}")
        if camera_mat.shape not in ((3, 3), (4, 4)):
            raise ShapeLabError(f"camera_mat: expected shape (3,3), got {camera_mat.shape}")
        if units == "pixels":
            K = torch.as_tensor(camera_mat[:3, :3])
        elif units == "ndc":
            K = torch.linalg.inv(ndc_matrix(width, height)) @ torch.as_tensor(camera_mat[:3, :3])
        else:
            raise ShapeLabError(f"camera_mat units must be 'pixels' or 'ndc', got {units!r}")
        cam = cls(K=K, R=world_mat[:3, :3], t=world_mat[:3, 3], width=width, height=height, **kwargs)
        if (loc is None) != (scale is None):
            raise ShapeLabError("from_onet: give both loc and scale (from pointcloud.npz) or neither")
        return cam if loc is None else cam.transformed(float(np.asarray(scale)), np.asarray(loc, np.float64).reshape(3))


def onet_camera_arrays(cameras):
    """{'world_mat_i': (3,4), 'camera_mat_i': (3,3)} float32 of ONet's cameras.npz for a list of cameras
    (the one definition of that file's keys; `modules.data.onet` reads and writes the file)."""
    arrays = {}
    for i, cam in enumerate(cameras):
        arrays[f"world_mat_{i}"], arrays[f"camera_mat_{i}"] = cam.to_onet()
    return arrays


R2N2_SIZE = 137                      # rendered 127 px + a 10 px margin
R2N2_FOCAL_NDC = 35.0 / 16.0         # Blender 35 mm lens on a 32 mm sensor, in [-1, 1] units (PyTorch3D 2.1875)
R2N2_MAX_DISTANCE = 1.75             # PyTorch3D MAX_CAMERA_DISTANCE: distance = ratio * 1.75


def r2n2_intrinsics(size=R2N2_SIZE, dtype=torch.float32):
    """(3,3) pixel K of the R2N2 renders: f = 2.1875 * size / 2 (149.84375 at 137 px), c = size / 2."""
    f = R2N2_FOCAL_NDC * size / 2.0
    return torch.tensor([[f, 0, size / 2.0], [0, f, size / 2.0], [0, 0, 1]], dtype=dtype)


def r2n2_eye(azimuth_deg, elevation_deg, distance_ratio):
    """Camera centre (3,) in the ShapeNet v1 frame (y up) of an R2N2 metadata row (PyTorch3D's
    `compute_extrinsic_matrix` composed with Blender's y-up -> z-up import rotation)."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    d = R2N2_MAX_DISTANCE * float(distance_ratio)
    return np.array([d * math.cos(el) * math.cos(az), d * math.sin(el), d * math.cos(el) * math.sin(az)])


def r2n2_camera(azimuth_deg, elevation_deg, distance_ratio, size=R2N2_SIZE, dtype=torch.float32, **kwargs):
    """The camera of one R2N2 view, as PyTorch3D's R2N2 dataset computes it (in-plane rotation and the
    metadata's fov are ignored, as there), in OpenCV convention over the v1 frame; tested against
    PyTorch3D's formula (`BLENDER_INTRINSIC @ RT`)."""
    eye = r2n2_eye(azimuth_deg, elevation_deg, distance_ratio)
    R = look_at_rotation(eye.tolist(), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), dtype)
    return Camera(K=r2n2_intrinsics(size, dtype), R=R, t=-(R @ torch.as_tensor(eye, dtype=dtype)),
                  width=size, height=size, **kwargs)


def intrinsics_from_fov(fov_deg, width, height, dtype=torch.float32):
    """K for a vertical field of view `fov_deg`, square pixels, principal point at the image centre."""
    if not 0 < fov_deg < 180:
        raise ShapeLabError(f"fov_deg must lie in (0, 180), got {fov_deg}")
    f = 0.5 * height / math.tan(math.radians(fov_deg) / 2)
    return torch.tensor([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1]], dtype=dtype)


def look_at_rotation(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), dtype=torch.float32):
    """World->camera rotation (rows: right, down, forward) for a camera at `eye` looking at `target`.

    Differentiable in eye/target when they are tensors that require grad.
    """
    eye = torch.as_tensor(eye, dtype=dtype)
    target = torch.as_tensor(target, dtype=eye.dtype)
    up = torch.as_tensor(up, dtype=eye.dtype)
    forward = target - eye
    if forward.norm() < 1e-12:
        raise ShapeLabError("look_at: eye and target coincide")
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, up)
    if right.norm() < 1e-6:
        raise ShapeLabError(f"look_at: up {up.tolist()} is parallel to the viewing direction")
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    return torch.stack([right, down, forward], dim=0)


def look_at_camera(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0), fov_deg=45.0, width=224, height=224,
                   near=1e-2, far=100.0, dtype=torch.float32):
    """Perspective camera at `eye` looking at `target` with world `up`, vertical FOV `fov_deg`.

    dtype: of K, R, t (float64 for gradcheck or exact comparisons).
    Defaults (45 degrees, 224x224) match the Neural Parts input renders (simple-3dviz FOV, 224²);
    genren/SoftRas uses fov_deg=30, 64x64 (rendered at 128 and pooled).
    """
    R = look_at_rotation(eye, target, up, dtype)
    eye_t = torch.as_tensor(eye, dtype=R.dtype)
    return Camera(K=intrinsics_from_fov(fov_deg, width, height, R.dtype), R=R, t=-(R @ eye_t),
                  width=width, height=height, near=near, far=far)


def spherical_camera(azimuth_deg, elevation_deg, distance, target=(0.0, 0.0, 0.0), **camera_kwargs):
    """Look-at camera on a sphere around `target` in a y-up world.

    Azimuth 0 puts the camera on +z (looking towards -z); azimuth grows counter-clockwise seen from
    above (90 = on +x); elevation is the angle above the xz-plane. (R2N2's metadata uses Blender's
    z-up frame; convert before using its azimuth/elevation here.)
    """
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    eye = np.asarray(target, np.float64) + distance * np.array(
        [math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    return look_at_camera(eye.tolist(), target, **camera_kwargs)


def orbit_cameras(n_views, distance=2.5, elevation_deg=20.0, target=(0.0, 0.0, 0.0), start_azimuth_deg=0.0,
                  **camera_kwargs):
    """`n_views` spherical cameras evenly spaced in azimuth (turntable renders / GIFs)."""
    return [spherical_camera(start_azimuth_deg + 360.0 * k / n_views, elevation_deg, distance, target,
                             **camera_kwargs) for k in range(n_views)]
