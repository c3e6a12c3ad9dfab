"""Single-view 3D reconstruction decoders (CMU 16-889 assignment 2) and the parameterisations used to fit
one target shape (the assignment's `fit_data.py`).

Every decoder maps an image feature (B, F) -- F = 512 from a ResNet-18 trunk; the encoder is built
elsewhere and composed with a decoder by the single-view family -- to one 3-D representation:

- `VoxelDecoder`      -> (B, R, R, R) occupancy logits, 3-D transposed convolutions (R = 32)
- `PointDecoder`      -> (B, n_points, 3) points, MLP
- `MeshDecoder`       -> (B, V, 3) vertices of an offset ico-sphere (level 4: V = 2562) + shared faces
- `ImplicitDecoder`   -> (B, Q) occupancy logits at query points, ONet's conditional-BatchNorm decoder
- `ParametricDecoder` -> (B, n, 3) points from K learned 2-D patches (AtlasNet), or a mesh of their UV grids
- `SingleViewModel`   ResNet image encoder (`modules.models.image_encoders`) + one of the above: image -> 3-D

Coordinates live in the data box [-0.5, 0.5]^3 (ShapeNet / R2N2 / ONet normalisation). Voxel grids are
indexed [x, y, z] with cell (i, j, k) centred at -0.5 + (index + 0.5) / R, the layout of
`modules.geometry.voxelize_mesh` and of `read_binvox` with translate -0.5, scale 1 (`cell_centers`).
(The assignment's evaluation maps index i to i/32 - 0.5, half a cell off; we use cell centres.)
"""
import math

import torch
import torch.nn as nn

from modules.geometry.ico_sphere import ico_sphere
from modules.geometry.meshes import Meshes
from modules.geometry.voxels import voxel_centers
from modules.models.image_encoders import ImageEncoder
from modules.models.onet import DecoderCBatchNorm
from modules.utils import ShapeLabError

FEATURE_DIM = 512  # ResNet-18 trunk (children[:-1], avgpool kept) -> 512-d vector, as the assignment
BOX_HALF = 0.5     # the data box is [-0.5, 0.5]^3


def check_features(features, feature_dim, who):
    """Raise ShapeLabError unless `features` is a finite (B, feature_dim) tensor with B >= 1."""
    if not torch.is_tensor(features) or features.ndim != 2 or features.shape[1] != feature_dim \
            or features.shape[0] < 1:
        shape = tuple(features.shape) if torch.is_tensor(features) else type(features).__name__
        raise ShapeLabError(f"{who}: image features must have shape (B, {feature_dim}), got {shape}")


def _positive_int(value, name, who, minimum=1):
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise ShapeLabError(f"{who}: {name}={value!r}, expected an integer >= {minimum}")
    return int(value)


def _mlp(sizes):
    """Linear + ReLU stack (no ReLU after the last layer). No BatchNorm, so a batch of 1 trains too."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- voxels

class VoxelDecoder(nn.Module):
    """512-d feature -> (B, R, R, R) occupancy logits, indexed [b, x, y, z] (see the module docstring).

    Linear 512 -> C*2^3, ReLU, reshape to (C, 2, 2, 2); then log2(R/2) stages of
    ConvTranspose3d(kernel 4, stride 2, padding 1) + BatchNorm3d + ReLU, each doubling the side and
    halving the channels (min 8): 2 -> 4 -> 8 -> 16 -> 32 with C = 256 -> 128 -> 64 -> 32 -> 16; a 1x1x1
    Conv3d gives the logit (3.84M parameters at the defaults). This is Pix2Vox's decoder shape (k4 s2 p1
    transposed convolutions), started from a linear map of the global feature instead of a 2^3 volume.
    """

    def __init__(self, feature_dim=FEATURE_DIM, resolution=32, channels=256):
        super().__init__()
        who = "VoxelDecoder"
        self.feature_dim = _positive_int(feature_dim, "feature_dim", who)
        self.resolution = _positive_int(resolution, "resolution", who, minimum=4)
        stages = math.log2(self.resolution / 2)
        if stages != int(stages):
            raise ShapeLabError(f"{who}: resolution={resolution}, expected a power of two >= 4 (e.g. 32)")
        self.channels = _positive_int(channels, "channels", who)
        self.fc = nn.Linear(self.feature_dim, self.channels * 8)
        blocks, c_in = [], self.channels
        for _ in range(int(stages)):
            c_out = max(c_in // 2, 8)
            blocks += [nn.ConvTranspose3d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv3d(c_in, 1, 1)

    def forward(self, features):
        """features (B, F) -> logits (B, R, R, R)."""
        check_features(features, self.feature_dim, "VoxelDecoder")
        net = torch.relu(self.fc(features)).view(-1, self.channels, 2, 2, 2)
        return self.out(self.blocks(net)).squeeze(1)

    def cell_centers(self, box=(-BOX_HALF, BOX_HALF)):
        """(R, R, R, 3) float32 tensor: world position of the centre of logit cell [x, y, z]."""
        return torch.from_numpy(voxel_centers(self.resolution, box))


# ---------------------------------------------------------------- points

class PointDecoder(nn.Module):
    """512-d feature -> (B, n_points, 3) points: MLP 512 -> 1024 -> 1024 -> 3 n_points.

    The output is `bound * tanh(.)` (bound 0.5: the data box), so every point starts and stays inside
    the box the targets live in; a point cannot leave the box and be lost to the Chamfer loss's
    nearest-neighbour assignment. `bound=None` gives the unbounded linear output.
    Parameters: 1.6M + 1025 * 3 n_points (4.6M at n_points 1000, 17.0M at 5000).
    """

    def __init__(self, feature_dim=FEATURE_DIM, n_points=1000, hidden=(1024, 1024), bound=BOX_HALF):
        super().__init__()
        who = "PointDecoder"
        self.feature_dim = _positive_int(feature_dim, "feature_dim", who)
        self.n_points = _positive_int(n_points, "n_points", who)
        hidden = [_positive_int(h, "hidden", who) for h in hidden]
        self.bound = None if bound is None else float(bound)
        if self.bound is not None and not self.bound > 0:
            raise ShapeLabError(f"{who}: bound={bound}, expected a positive number or None")
        self.mlp = _mlp([self.feature_dim, *hidden, 3 * self.n_points])

    def forward(self, features):
        """features (B, F) -> points (B, n_points, 3)."""
        check_features(features, self.feature_dim, "PointDecoder")
        out = self.mlp(features).view(-1, self.n_points, 3)
        return out if self.bound is None else self.bound * torch.tanh(out)


# ---------------------------------------------------------------- mesh

class MeshDecoder(nn.Module):
    """512-d feature -> per-vertex offsets of an ico-sphere template: MLP 512 -> 1024 -> 1024 -> 3V.

    The template is `ico_sphere(level)` (level 4: V = 2562, F = 5120) scaled to `radius` 0.5, the sphere
    inscribed in the data box. The last layer starts at zero, so an untrained decoder returns the
    template (no folded surface at step 0). Template and faces are non-persistent buffers: rebuilt from
    `level` / `radius`, they follow `.to(device)` and stay out of checkpoints.
    Parameters at level 4: 1.6M + 1025 * 7686 = 9.5M.
    """

    def __init__(self, feature_dim=FEATURE_DIM, level=4, radius=BOX_HALF, hidden=(1024, 1024)):
        super().__init__()
        who = "MeshDecoder"
        self.feature_dim = _positive_int(feature_dim, "feature_dim", who)
        self.level = _positive_int(level, "level", who, minimum=0)
        if not float(radius) > 0:
            raise ShapeLabError(f"{who}: radius={radius}, expected a positive number")
        self.radius = float(radius)
        hidden = [_positive_int(h, "hidden", who) for h in hidden]
        sphere = ico_sphere(self.level)
        self.register_buffer("template", sphere.verts_packed() * self.radius, persistent=False)
        self.register_buffer("faces", sphere.faces_packed(), persistent=False)
        self.mlp = _mlp([self.feature_dim, *hidden, 3 * self.template.shape[0]])
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    @property
    def num_verts(self):
        return self.template.shape[0]

    def forward(self, features):
        """features (B, F) -> (vertices (B, V, 3), faces (F_, 3) int64 shared by the batch)."""
        check_features(features, self.feature_dim, "MeshDecoder")
        offsets = self.mlp(features).view(-1, self.num_verts, 3)
        return self.template + offsets, self.faces

    def meshes(self, features):
        """The predicted meshes as a `Meshes` batch of B meshes (for sampling and the regularisers)."""
        verts, faces = self(features)
        return Meshes(list(verts), [faces] * verts.shape[0])


# ---------------------------------------------------------------- implicit

class ImplicitDecoder(nn.Module):
    """Occupancy decoder conditioned on the image feature as in Occupancy Networks' single-view model:
    `DecoderCBatchNorm` (5 ResNet blocks of width 256 whose BatchNorms take gamma, beta = linear maps of
    the feature), reused from `modules.models.onet` with c_dim = 512. This replaces the seed's additive
    fusion (MLP(feature) + MLP(point)): conditional BatchNorm modulates every block by the feature.

    As in ONet, the conditioning maps start at zero (gamma = 1, beta = 0), so an untrained decoder gives
    the same output for every feature; the first optimiser step makes it depend on the feature.
    Parameters at the default size: 3.5M (3,548,417).
    """

    def __init__(self, feature_dim=FEATURE_DIM, hidden_dim=256, n_blocks=5):
        super().__init__()
        who = "ImplicitDecoder"
        self.feature_dim = _positive_int(feature_dim, "feature_dim", who)
        self.decoder = DecoderCBatchNorm(c_dim=self.feature_dim,
                                         hidden_dim=_positive_int(hidden_dim, "hidden_dim", who),
                                         nblocks=_positive_int(n_blocks, "n_blocks", who))

    def forward(self, features, queries):
        """features (B, F), queries (B, Q, 3) -> occupancy logits (B, Q)."""
        check_features(features, self.feature_dim, "ImplicitDecoder")
        if not torch.is_tensor(queries) or queries.ndim != 3 or queries.shape[-1] != 3 \
                or queries.shape[0] != features.shape[0]:
            shape = tuple(queries.shape) if torch.is_tensor(queries) else type(queries).__name__
            raise ShapeLabError(f"ImplicitDecoder: query points must have shape ({features.shape[0]}, Q, 3), "
                                f"got {shape}")
        return self.decoder(queries, features)


# ---------------------------------------------------------------- parametric (AtlasNet)

class PatchMLP(nn.Module):
    """One AtlasNet patch: [feature ; uv] (F + 2) -> F -> F/2 -> F/4 -> 3, 1x1 Conv1d + BatchNorm + ReLU,
    then `bound * tanh` (AtlasNet's Tanh output, scaled to the data box). Input (B, F+2, N) -> (B, 3, N)."""

    def __init__(self, feature_dim, bound):
        super().__init__()
        sizes = [feature_dim + 2, feature_dim, feature_dim // 2, feature_dim // 4]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Conv1d(a, b, 1), nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        layers.append(nn.Conv1d(sizes[-1], 3, 1))
        self.net = nn.Sequential(*layers)
        self.bound = bound

    def forward(self, x):
        return self.bound * torch.tanh(self.net(x))


class ParametricDecoder(nn.Module):
    """AtlasNet (Groueix et al., CVPR 2018): K learned parameterisations of the unit square [0,1]^2, each
    a `PatchMLP` on [feature ; uv]. The default K = 25 is AtlasNet's. The per-patch widths follow the
    brief (F+2 -> F -> F/2 -> F/4 -> 3; AtlasNet v1 uses (F+2) -> (F+2) -> (F+2)/2 -> (F+2)/4).
    Parameters at F = 512, K = 25: 25 x 430,083 = 10.75M.

    `sample(features, n_points)`: random uv (uniform on the square) -> (B, n_points, 3); the points are
    split over the patches as evenly as possible (the first n_points % K patches get one more), in patch
    order. `mesh(features, grid_res)`: each patch's regular grid_res x grid_res UV grid, triangulated
    (two triangles per grid cell) -> vertices (B, K grid_res^2, 3), faces (K 2 (grid_res-1)^2, 3).
    """

    def __init__(self, feature_dim=FEATURE_DIM, n_patches=25, bound=BOX_HALF):
        super().__init__()
        who = "ParametricDecoder"
        self.feature_dim = _positive_int(feature_dim, "feature_dim", who, minimum=4)
        self.n_patches = _positive_int(n_patches, "n_patches", who)
        if not float(bound) > 0:
            raise ShapeLabError(f"{who}: bound={bound}, expected a positive number")
        self.patches = nn.ModuleList(PatchMLP(self.feature_dim, float(bound)) for _ in range(self.n_patches))

    def forward(self, features, n_points):
        return self.sample(features, n_points)

    def decode_uv(self, features, uv):
        """features (B, F), uv list of K tensors (B, N_k, 2) -> list of K point tensors (B, N_k, 3)."""
        check_features(features, self.feature_dim, "ParametricDecoder")
        if len(uv) != self.n_patches:
            raise ShapeLabError(f"ParametricDecoder: got uv for {len(uv)} patches, expected {self.n_patches}")
        out = []
        for patch, uv_k in zip(self.patches, uv):
            if self.training and uv_k.shape[0] * uv_k.shape[1] == 1:
                raise ShapeLabError("ParametricDecoder: a patch got a single point in training mode (its BatchNorm "
                                    "needs >= 2); use n_points >= 2 x n_patches or a batch of >= 2")
            if uv_k.shape[1] == 0:
                out.append(features.new_zeros(features.shape[0], 0, 3))
                continue
            feat = features[:, :, None].expand(-1, -1, uv_k.shape[1])
            x = torch.cat([feat, uv_k.transpose(1, 2).to(features.dtype)], dim=1)
            out.append(patch(x).transpose(1, 2))
        return out

    def points_per_patch(self, n_points):
        n = _positive_int(n_points, "n_points", "ParametricDecoder")
        base, extra = divmod(n, self.n_patches)
        return [base + (1 if k < extra else 0) for k in range(self.n_patches)]

    def sample(self, features, n_points, generator=None):
        """features (B, F) -> (B, n_points, 3) points at uniformly random uv on every patch."""
        check_features(features, self.feature_dim, "ParametricDecoder")
        B = features.shape[0]
        uv = [torch.rand(B, n, 2, generator=generator, device=features.device)
              for n in self.points_per_patch(n_points)]
        return torch.cat(self.decode_uv(features, uv), dim=1)

    def mesh(self, features, grid_res=10):
        """features (B, F) -> (vertices (B, K R^2, 3), faces (K 2 (R-1)^2, 3) int64), R = grid_res.
        Call in eval mode: in training mode the BatchNorms would use the grid points' own statistics."""
        check_features(features, self.feature_dim, "ParametricDecoder")
        R = _positive_int(grid_res, "grid_res", "ParametricDecoder", minimum=2)
        grid_uv, grid_faces = uv_grid(R, device=features.device)
        B = features.shape[0]
        uv = [grid_uv[None].expand(B, -1, -1)] * self.n_patches
        verts = torch.cat(self.decode_uv(features, uv), dim=1)
        offsets = torch.arange(self.n_patches, device=features.device)[:, None, None] * (R * R)
        return verts, (grid_faces[None] + offsets).reshape(-1, 3)


def uv_grid(grid_res, device=None):
    """Regular grid on [0,1]^2 and its triangulation -> (uv (R^2, 2) float32 with vertex r*R + c at
    (u, v) = (c, r) / (R-1), faces (2 (R-1)^2, 3) int64, counter-clockwise in the uv plane)."""
    R = int(grid_res)
    t = torch.linspace(0.0, 1.0, R, device=device)
    v, u = torch.meshgrid(t, t, indexing="ij")
    uv = torch.stack([u.reshape(-1), v.reshape(-1)], dim=1)
    idx = torch.arange(R * R, device=device).view(R, R)
    a, b = idx[:-1, :-1].reshape(-1), idx[:-1, 1:].reshape(-1)      # (r, c), (r, c+1)
    c, d = idx[1:, :-1].reshape(-1), idx[1:, 1:].reshape(-1)        # (r+1, c), (r+1, c+1)
    faces = torch.cat([torch.stack([a, b, d], 1), torch.stack([a, d, c], 1)], dim=0)
    return uv, faces


# the assignment's `--type` names of the decoders (the family builds one from its config)
DECODERS = {"vox": VoxelDecoder, "point": PointDecoder, "mesh": MeshDecoder, "implicit": ImplicitDecoder,
            "parametric": ParametricDecoder}


# ---------------------------------------------------------------- fitting one target (fit_data.py)

class VoxelFit(nn.Module):
    """Free (1, R, R, R) occupancy logits, initialised as the seed's `voxels_src = torch.rand(shape)`
    (values in [0, 1) used directly as logits of BCEWithLogits). forward() -> logits (1, R, R, R)."""

    def __init__(self, resolution=32, generator=None):
        super().__init__()
        R = _positive_int(resolution, "resolution", "VoxelFit")
        self.logits = nn.Parameter(torch.rand(1, R, R, R, generator=generator))

    def forward(self):
        return self.logits


class PointFit(nn.Module):
    """Free (1, n_points, 3) points, initialised as the seed's `torch.randn(1, n_points, 3)` (std `scale`,
    1 as the seed). forward() -> points (1, n_points, 3)."""

    def __init__(self, n_points=5000, scale=1.0, generator=None):
        super().__init__()
        n = _positive_int(n_points, "n_points", "PointFit")
        self.points = nn.Parameter(float(scale) * torch.randn(1, n, 3, generator=generator))

    def forward(self):
        return self.points


class MeshFit(nn.Module):
    """`ico_sphere(level)` scaled by `radius` plus free per-vertex offsets initialised to zero, as the seed
    (level 4, unit radius: `ico_sphere(4)` unscaled). forward() -> (vertices (1, V, 3), faces (F, 3))."""

    def __init__(self, level=4, radius=1.0):
        super().__init__()
        level = _positive_int(level, "level", "MeshFit", minimum=0)
        if not float(radius) > 0:
            raise ShapeLabError(f"MeshFit: radius={radius}, expected a positive number")
        sphere = ico_sphere(level)
        self.register_buffer("template", sphere.verts_packed() * float(radius), persistent=False)
        self.register_buffer("faces", sphere.faces_packed(), persistent=False)
        self.offsets = nn.Parameter(torch.zeros_like(self.template))

    def forward(self):
        return (self.template + self.offsets)[None], self.faces

    def meshes(self):
        verts, faces = self()
        return Meshes([verts[0]], [faces])


# ---------------------------------------------------------------- image -> 3-D (the assignment's SingleViewto3D)

class SingleViewModel(nn.Module):
    """ResNet image encoder + one decoder: the assignment's `SingleViewto3D` for every `--type`.

    The encoder is `ImageEncoder(arch)` without `fc` (avgpool kept: a (B, 512) feature for resnet18), with
    ImageNet normalisation inside, trained end to end (all parameters go to the optimiser, as the seed);
    random initialisation unless `encoder_weights` names a torchvision weight file ("imagenet": torchvision's
    cache), never downloaded. Images are (B, 3, H, W) floats in [0, 1]; any H, W >= 32 (137 x 137 for R2N2
    renders; the seed does not resize and neither do we by default).

    forward(images, queries=None, n_points=None, generator=None) returns ONE tensor (so attribution methods
    can take it as the model output):
      vox        (B, R, R, R) occupancy logits, indexed [b, x, y, z]
      point      (B, n_points, 3)
      mesh       (B, V, 3) vertices of the offset ico-sphere; faces: `self.faces` (F, 3)
      implicit   (B, Q) occupancy logits at `queries` (B, Q, 3)
      parametric (B, n, 3) points at random uv (n = n_points or self.n_points; `generator` fixes the uv)
    `threshold`: the occupancy probability at the surface (vox, implicit meshes and IoU).
    """

    def __init__(self, decoder_type, decoder, encoder_arch="resnet18", encoder_weights=None, n_points=None,
                 threshold=0.5):
        super().__init__()
        if decoder_type not in DECODERS or not isinstance(decoder, DECODERS[decoder_type]):
            raise ShapeLabError(f"SingleViewModel: decoder type {decoder_type!r} with a {type(decoder).__name__}; "
                                f"expected one of {', '.join(DECODERS)} with its decoder class")
        self.type = decoder_type
        self.encoder = ImageEncoder(encoder_arch, weights=encoder_weights)
        if self.encoder.out_dim != decoder.feature_dim:
            raise ShapeLabError(f"SingleViewModel: {encoder_arch} gives {self.encoder.out_dim}-d features, the "
                                f"decoder expects feature_dim={decoder.feature_dim}")
        self.decoder = decoder
        self.n_points = None if n_points is None else _positive_int(n_points, "n_points", "SingleViewModel")
        if not 0.0 < float(threshold) < 1.0:
            raise ShapeLabError(f"SingleViewModel: threshold={threshold}, expected a probability in (0, 1)")
        self.threshold = float(threshold)   # occupancy probability of the surface (vox, implicit)

    @property
    def logit_threshold(self):
        return math.log(self.threshold / (1.0 - self.threshold))

    @property
    def faces(self):
        """(F, 3) int64 faces of the mesh decoder's template (mesh type only)."""
        if self.type != "mesh":
            raise ShapeLabError(f"SingleViewModel: a '{self.type}' model has no fixed faces")
        return self.decoder.faces

    def encode(self, images):
        """(B, 3, H, W) images in [0, 1] -> (B, F) features."""
        if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3 or min(images.shape[2:]) < 32 \
                or not images.is_floating_point():
            shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
            raise ShapeLabError(f"SingleViewModel: expected float images (B, 3, H>=32, W>=32) in [0, 1], got {shape}")
        return self.encoder(images)

    def decode(self, features, queries=None, n_points=None, generator=None):
        """(B, F) features -> the decoder's output tensor (see the class docstring)."""
        if self.type == "implicit":
            if queries is None:
                raise ShapeLabError("SingleViewModel: the implicit decoder needs query points (B, Q, 3)")
            return self.decoder(features, queries)
        if self.type == "parametric":
            n = n_points if n_points is not None else self.n_points
            if n is None:
                raise ShapeLabError("SingleViewModel: the parametric decoder needs n_points")
            return self.decoder.sample(features, n, generator=generator)
        if self.type == "mesh":
            return self.decoder(features)[0]
        return self.decoder(features)

    def forward(self, images, queries=None, n_points=None, generator=None):
        return self.decode(self.encode(images), queries, n_points, generator)
