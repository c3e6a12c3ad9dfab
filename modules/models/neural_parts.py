"""Neural Parts (Paschalidou et al., CVPR 2021): a shape as a union of M primitives, each the image
of a sphere under one conditional invertible network (INN).

Follows the original code (paschalidoud/neural_parts, `models/simple_nvp.py`,
`models/flexible_primitives.py`, `config/dfaust_6.yaml`):

- per-primitive feature F_m = [f(I) ; e_m] with a learned `primitive_embedding` e (M, 256);
- INN, sphere -> world: 4 conditional coupling layers (random 2-of-3 masks fixed at construction,
  one shared projection Linear(3,256)-ReLU-Linear(256,128), s-net ending in Hardtanh(-10,10),
  t-net), then y / sigma(F) with sigma = elu(.)+1, then y @ R(F) + t(F) (quaternion, w first);
- implicit function phi_m(x) = ||INN^-1(x; F_m)|| - r (r = 0.25), < 0 inside;
- "Euclidean" phi (`euclidean_phi_volume: true`): distance to the nearest of S points sampled on
  primitive m, with the sign of phi_m; it feeds the occupancy, coverage and overlap losses.

Differences from the original, on purpose:
- The first Linear of the s/t nets acts on cat([F, proj(y)]); we apply its two column blocks
  separately (F once per primitive, not once per point). Same parameters and numbers; a full-size
  CPU training step runs ~1.4x faster. The sign of the Euclidean phi is computed without a graph
  (sign() has zero gradient anyway). The original's `projection_layer.py` is missing from its
  repository; the projection follows the reference (Linear(3,256)-ReLU-Linear(256,128)).
- `on_surface` ignores a point's own primitive: the original also tests phi_m(own point) >= 0,
  which is +-2e-7 round-off in float32 and so drops 30-47% of the points at random (measured at
  init); `points_on_primitives(..., exclude_own=False)` gives the original's mask.
- Masks come from a seeded torch.Generator, so two models built with the same seed agree.
The image encoder is injected (any nn.Module with `.out_dim`); the family code passes a
ResNet-18 with frozen BatchNorm and the head Linear(512,512)-ReLU-Linear(512,256).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from modules.geometry import ico_sphere, knn_points
from modules.utils import ShapeLabError


def quaternions_to_rotation_matrices(quaternions):
    """(..., 4) quaternions (w, x, y, z), any norm -> (..., 3, 3) rotation matrices.

    As the original: s = 2 / |q|^2 (0 for q = 0, which gives the identity), so q and c*q agree.
    """
    w, x, y, z = quaternions.unbind(-1)
    n = w * w + x * x + y * y + z * z
    s = torch.where(n > 0, 2.0 / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(n))
    xx, yy, zz = s * x * x, s * y * y, s * z * z
    xy, xz, yz = s * x * y, s * x * z, s * y * z
    xw, yw, zw = s * x * w, s * y * w, s * z * w
    R = torch.stack([
        1 - yy - zz, xy - zw, xz + yw,
        xy + zw, 1 - xx - zz, yz - xw,
        xz - yw, yz + xw, 1 - xx - yy,
    ], dim=-1)
    return R.reshape(quaternions.shape[:-1] + (3, 3))


def _mlp(in_dim, hidden, out_dim):
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


def _conditioned(net, f_dims, F_prim, proj):
    """net(cat([F, proj])) for net = Sequential(Linear(f_dims + P, H), ...).

    F_prim (B, M, f_dims), proj (B, N, M, P) -> (B, N, M, out). The first Linear is split into its
    F columns (evaluated once per primitive) and its proj columns (once per point).
    """
    first = net[0]
    h_f = F.linear(F_prim, first.weight[:, :f_dims], first.bias)       # (B, M, H)
    h = F.linear(proj, first.weight[:, f_dims:]) + h_f[:, None]           # (B, N, M, H)
    for layer in list(net)[1:]:
        h = layer(h)
    return h


class CouplingLayer(nn.Module):
    """One conditional affine coupling layer (the original's `CouplingLayer`).

    mask (3,) with two ones: the masked coordinates pass through and condition the third.
    forward (sphere -> world): x = y*m + (1-m) * (y - t) * exp(-s);  inverse: y = x*m + (1-m)*(x*exp(s) + t),
    with s, t = s_net / t_net(cat([F, projection(y*m)])).
    """

    def __init__(self, map_s, map_t, projection, mask, feature_dims):
        super().__init__()
        self.map_s = map_s
        self.map_t = map_t
        self.projection = projection            # shared by all layers (same module object)
        self.feature_dims = int(feature_dims)
        self.register_buffer("mask", mask)

    def _s_t(self, F_prim, kept):
        proj = self.projection(kept)
        return (_conditioned(self.map_s, self.feature_dims, F_prim, proj),
                _conditioned(self.map_t, self.feature_dims, F_prim, proj))

    def forward(self, F_prim, y):
        """F_prim (B, M, D), y (B, N, M, 3) -> x (B, N, M, 3)."""
        y1 = y * self.mask
        s, t = self._s_t(F_prim, y1)
        return y1 + (1 - self.mask) * ((y - t) * torch.exp(-s))

    def inverse(self, F_prim, x):
        """F_prim (B, M, D), x (B, N, M, 3) -> y (B, N, M, 3)."""
        x1 = x * self.mask
        s, t = self._s_t(F_prim, x1)
        return x1 + (1 - self.mask) * (x * torch.exp(s) + t)


class SimpleNVP(nn.Module):
    """The original's conditional INN: couplings, then normaliser (elu+1 scale), then affine layer.

    Args: n_blocks coupling layers; feature_dims D of the per-primitive feature; hidden_size of
    every MLP; proj_dims of the shared point projection; seed of the mask generator.
    forward(F (B,M,D), y (B,N,M,3) or (B,N,3)) -> world points (B,N,M,3); inverse likewise.
    """

    def __init__(self, n_blocks=4, feature_dims=512, hidden_size=256, proj_dims=128,
                 normalize=True, explicit_affine=True, seed=0):
        super().__init__()
        if int(n_blocks) < 0:
            raise ShapeLabError(f"SimpleNVP n_blocks={n_blocks}: expected >= 0")
        self.feature_dims = int(feature_dims)
        self.normalize = normalize
        self.explicit_affine = explicit_affine
        self.projection = _mlp(3, hidden_size, proj_dims)
        gen = torch.Generator().manual_seed(int(seed))
        self.layers = nn.ModuleList()
        for _ in range(int(n_blocks)):
            mask = torch.zeros(3)
            mask[torch.randperm(3, generator=gen)[:2]] = 1
            map_s = nn.Sequential(
                nn.Linear(proj_dims + feature_dims, hidden_size), nn.ReLU(),
                nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                nn.Linear(hidden_size, 3), nn.Hardtanh(min_val=-10, max_val=10))
            map_t = nn.Sequential(
                nn.Linear(proj_dims + feature_dims, hidden_size), nn.ReLU(),
                nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                nn.Linear(hidden_size, 3))
            self.layers.append(CouplingLayer(map_s, map_t, self.projection, mask, feature_dims))
        if normalize:
            self.scales = _mlp(feature_dims, hidden_size, 3)
        if explicit_affine:
            self.rotations = _mlp(feature_dims, hidden_size, 4)
            self.translations = _mlp(feature_dims, hidden_size, 3)

    def _check(self, F_prim, y):
        if F_prim.ndim != 3 or F_prim.shape[-1] != self.feature_dims:
            raise ShapeLabError(f"SimpleNVP: features of shape {tuple(F_prim.shape)}, "
                                f"expected (B, M, {self.feature_dims})")
        B, M, _ = F_prim.shape
        if y.ndim == 3:
            y = y[:, :, None].expand(-1, -1, M, -1)
        if y.ndim != 4 or y.shape[0] != B or y.shape[2] != M or y.shape[3] != 3:
            raise ShapeLabError(f"SimpleNVP: points of shape {tuple(y.shape)}, "
                                f"expected (B, N, M, 3) or (B, N, 3) with B={B}, M={M}")
        return y

    def scale_rotation_translation(self, F_prim):
        """sigma (B,1,M,3), R (B,1,M,3,3), t (B,1,M,3) of the normaliser and affine layer."""
        B, M, _ = F_prim.shape
        if self.normalize:
            sigma = (F.elu(self.scales(F_prim)) + 1)[:, None]
        else:
            sigma = F_prim.new_ones(B, 1, M, 3)
        if self.explicit_affine:
            q = self.rotations(F_prim)
            q = q / torch.sqrt(torch.square(q).sum(-1, keepdim=True))
            R = quaternions_to_rotation_matrices(q)[:, None]
            t = self.translations(F_prim)[:, None]
        else:
            R = torch.eye(3, dtype=F_prim.dtype, device=F_prim.device).expand(B, 1, M, 3, 3)
            t = F_prim.new_zeros(B, 1, M, 3)
        return sigma, R, t

    def forward(self, F_prim, y):
        """Sphere space -> world. F_prim (B,M,D), y (B,N,M,3) or (B,N,3) -> (B,N,M,3)."""
        y = self._check(F_prim, y)
        sigma, R, t = self.scale_rotation_translation(F_prim)
        for layer in self.layers:
            y = layer(F_prim, y)
        y = y / sigma
        return (y.unsqueeze(-1) * R).sum(-2) + t                                    # y @ R + t

    def inverse(self, F_prim, x):
        """World -> sphere space. F_prim (B,M,D), x (B,N,M,3) or (B,N,3) -> (B,N,M,3)."""
        x = self._check(F_prim, x)
        sigma, R, t = self.scale_rotation_translation(F_prim)
        x = ((x - t).unsqueeze(-2) * R).sum(-1)                                      # (x - t) @ R^T
        x = x * sigma
        for layer in reversed(self.layers):
            x = layer.inverse(F_prim, x)
        return x


def uv_sphere(n=512, radius=1.0, device=None):
    """The original's `sphere_mesh`: a UV sphere with at least n vertices, faces outward.

    Returns vertices (V, 3) float32 scaled by radius, faces (F, 3) int64;
    parallels = ceil(sqrt(n/2)) + 2, meridians = 2 * parallels, V = 2 + (parallels-1)*meridians.
    """
    p = math.ceil(math.sqrt(n / 2)) + 2
    m = 2 * p
    i = torch.arange(1, p, dtype=torch.float64)[:, None]
    j = torch.arange(m, dtype=torch.float64)[None, :]
    polar, azimuth = math.pi * i / p, 2 * math.pi * j / m
    ring = torch.stack([torch.sin(polar) * torch.cos(azimuth), torch.cos(polar).expand(-1, m),
                        torch.sin(polar) * torch.sin(azimuth)], -1).reshape(-1, 3)
    verts = torch.cat([ring.new_tensor([[0, 1.0, 0]]), ring, ring.new_tensor([[0, -1.0, 0]])])
    jj = torch.arange(m)
    nxt = (jj + 1) % m
    faces = [torch.stack([torch.zeros_like(jj), nxt + 1, jj + 1], 1)]
    for k in range(p - 2):
        a1, a2 = k * m + 1 + jj, k * m + 1 + nxt
        b1, b2 = (k + 1) * m + 1 + jj, (k + 1) * m + 1 + nxt
        faces += [torch.stack([a1, a2, b1], 1), torch.stack([b1, a2, b2], 1)]
    last = len(verts) - 1
    base = m * (p - 2) + 1
    faces.append(torch.stack([torch.full_like(jj, last), base + jj, base + nxt], 1))
    return (verts * radius).to(torch.float32).to(device), torch.cat(faces).to(device)


class NeuralParts(nn.Module):
    """Image -> M primitives, each a sphere of radius r pushed through the conditional INN.

    Args:
        encoder: nn.Module, images -> (B, encoder.out_dim) (ResNet-18 + head, out_dim 256, in the paper).
        n_primitives: M.  feature_dim: size of the learned per-primitive embedding (256).
        n_blocks, hidden_size, proj_dims: the INN (4, 256, 128).
        sphere_radius: r (0.25).  n_points_on_sphere: S per primitive (200 humans, 500 objects).
        euclidean_phi: phi_volume is the original's "Euclidean" phi (True) or the radial phi.
        seed: seed of the coupling masks.
    """

    def __init__(self, encoder, n_primitives=5, feature_dim=256, n_blocks=4, hidden_size=256,
                 proj_dims=128, sphere_radius=0.25, n_points_on_sphere=200, euclidean_phi=True,
                 seed=0):
        super().__init__()
        if int(n_primitives) < 1:
            raise ShapeLabError(f"n_primitives={n_primitives}: expected at least 1 primitive")
        if not isinstance(getattr(encoder, "out_dim", None), int):
            raise ShapeLabError(f"NeuralParts encoder {type(encoder).__name__}: expected an int "
                                "attribute `out_dim` (size of its image feature)")
        if not sphere_radius > 0 or int(n_points_on_sphere) < 1:
            raise ShapeLabError(f"sphere_radius={sphere_radius}, n_points_on_sphere={n_points_on_sphere}: "
                                "expected a positive radius and at least 1 point")
        self.encoder = encoder
        self.n_primitives = int(n_primitives)
        self.radius = float(sphere_radius)
        self.n_points_on_sphere = int(n_points_on_sphere)
        self.use_euclidean_phi = bool(euclidean_phi)
        self.primitive_embedding = nn.Parameter(torch.randn(self.n_primitives, feature_dim))
        self.inn = SimpleNVP(n_blocks, encoder.out_dim + feature_dim, hidden_size, proj_dims, seed=seed)

    def primitive_features(self, images):
        """images -> F (B, M, out_dim + feature_dim) = [f(I) ; e_m]."""
        f = self.encoder(images)
        f = f[:, None].expand(-1, self.n_primitives, -1)
        e = self.primitive_embedding[None].expand(f.shape[0], -1, -1).to(f.dtype)
        return torch.cat([f, e], dim=-1)

    def phi(self, x, F_prim, chunk_size=None):
        """Radial implicit function ||INN^-1(x; F_m)|| - r. x (B, N, 3) -> (B, N, M), < 0 inside.

        chunk_size: evaluate at most this many points at a time (for large N without grad).
        """
        if chunk_size is not None and x.shape[1] > chunk_size:
            return torch.cat([self.phi(c, F_prim) for c in x.split(int(chunk_size), dim=1)], dim=1)
        y = self.inn.inverse(F_prim, x)
        return torch.sqrt(torch.square(y).sum(-1)) - self.radius

    def sample_sphere_points(self, n_points, batch_size=1, device=None, dtype=None, generator=None):
        """(B, S, M, 3) independent uniform points on the sphere of radius r (normalised randn)."""
        y = torch.randn(batch_size, n_points, self.n_primitives, 3, device=device, dtype=dtype,
                        generator=generator)
        return y / torch.sqrt(torch.square(y).sum(-1, keepdim=True)) * self.radius

    def points_on_primitives(self, F_prim, n_points=None, sphere_points=None, union_surface=True,
                             exclude_own=True):
        """World points on each primitive.

        F_prim (B, M, D); sphere_points (B, S, M, 3) or None (then S = n_points random points).
        Returns y_prim (B, S, M, 3) and, if union_surface, on_surface (B, S, M) bool: the point is
        not inside any other primitive (phi_m' >= 0 for all m' != m; with exclude_own=False also
        m' = m, as the original, where round-off decides).
        """
        if sphere_points is None:
            S = self.n_points_on_sphere if n_points is None else int(n_points)
            sphere_points = self.sample_sphere_points(S, F_prim.shape[0], F_prim.device, F_prim.dtype)
        y_prim = self.inn(F_prim, sphere_points)
        if not union_surface:
            return y_prim
        B, S, M, _ = y_prim.shape
        with torch.no_grad():  # a mask only
            phi = self.phi(y_prim.reshape(B, S * M, 3), F_prim).view(B, S, M, M)
            own = torch.eye(M, dtype=torch.bool, device=phi.device) & exclude_own
            on_surface = ((phi >= 0) | own).all(dim=-1)
        return y_prim, on_surface

    def euclidean_phi(self, x, F_prim, surface_points=None, n_points=None):
        """The original's Euclidean phi: sign(phi_m(x)) * min_s ||x - p_{m,s}||.

        x (B, N, 3); surface_points (B, S, M, 3) points on the primitives, or None to sample
        n_points (default S) fresh ones as the original does. Returns (B, N, M).
        """
        if surface_points is None:
            surface_points = self.points_on_primitives(F_prim, n_points, union_surface=False)
        B, N, _ = x.shape
        S, M = surface_points.shape[1], surface_points.shape[2]
        queries = x[:, None].expand(B, M, N, 3).reshape(B * M, N, 3)
        refs = surface_points.permute(0, 2, 1, 3).reshape(B * M, S, 3)
        d2 = knn_points(queries, refs, K=1).dists[..., 0]                    # squared, (B*M, N)
        dist = torch.sqrt(d2.clamp_min(1e-12)).view(B, M, N).transpose(1, 2)
        with torch.no_grad():  # sign() has zero gradient: no graph needed for the radial phi
            sign = torch.sign(self.phi(x, F_prim))
        return dist * sign

    def forward(self, images, queries=None, surface_points=None, n_points_on_sphere=None):
        """images -> dict of everything the Neural Parts losses read.

        queries (B, N, 3) volume points, surface_points (B, N2, 3) target surface points.
        Returns features (B,M,D); points_on_primitives (B,S,M,3); on_surface (B,S,M) bool;
        phi_volume (B,N,M) (Euclidean or radial phi, as configured) if queries is given;
        phi_surface (B,N2,M) radial phi and surface_points (the (B,N2,3) leaf it was computed
        from, requiring grad so the normal loss can differentiate) if surface_points is given.
        """
        F_prim = self.primitive_features(images)
        S = self.n_points_on_sphere if n_points_on_sphere is None else int(n_points_on_sphere)
        y_prim, on_surface = self.points_on_primitives(F_prim, S)
        out = {"features": F_prim, "points_on_primitives": y_prim, "on_surface": on_surface}
        if queries is not None:
            out["phi_volume"] = (self.euclidean_phi(queries, F_prim, n_points=S) if self.use_euclidean_phi
                                 else self.phi(queries, F_prim))
        if surface_points is not None:
            leaf = surface_points.detach().requires_grad_(True)
            out["surface_points"] = leaf
            out["phi_surface"] = self.phi(leaf, F_prim)
        return out

    def primitive_meshes(self, F_prim, level=4, uv_points=None):
        """Each primitive as a mesh: a sphere of radius r pushed through the INN.

        F_prim (B, M, D). Uses ico_sphere(level) (10*4^level+2 vertices), or the original's UV
        sphere with at least uv_points vertices when uv_points is given.
        Returns vertices (B, M, V, 3) and faces (F, 3) int64, shared by all primitives.
        """
        if uv_points is not None:
            verts, faces = uv_sphere(int(uv_points), self.radius, F_prim.device)
        else:
            sphere = ico_sphere(level, F_prim.device)
            verts, faces = sphere.verts_list()[0] * self.radius, sphere.faces_list()[0]
        B, M = F_prim.shape[:2]
        y = verts.to(F_prim.dtype)[None, :, None].expand(B, -1, M, -1)
        return self.inn(F_prim, y).permute(0, 2, 1, 3), faces
