"""Cycle-consistent generative rendering (genren, Aumentado-Armstrong et al., 3DV 2020): `CyclicGenRen`.

Two directions between unpaired masked RGBA images and oriented point clouds, through one textured template mesh:

    graphics (cycle 1):  shape (points+normals) --PointNet--> v --decoder--> M = template + 0.01 delta(v)
                         xi_p ~ N(0, I16) --MLP--> (R, t);  xi_T ~ N(0, I128) --generator--> UV texture
                         --> soft render of (M R^T + t, colours) --> image --> (re-inferred v, pose, xi_T)
    vision (cycle 2):    image --ResNet-18 (RGBA)--> q --heads--> v, nH poses + probabilities, nH xi_T
                         --> M, textures --> one re-render per pose hypothesis

Layer sizes are the original's (`model.py` CyclicGenRen, BASE options; see the README's genren section):

- template: `icosa_sphere(10)` (|V| = 1002, |F| = 2000, unit sphere), spherical UVs U = atan2(x,z)/pi,
  V = -2 asin(y)/pi;
- image encoder: torchvision ResNet-18, 4 input channels, fc -> 512, then BatchNorm1d + ReLU (= q);
- heads on q (Linear-BN-ELU stacks, last layer linear): v [512, 64] (init x0.01), pose [512, 48, 24] -> nH x
  (3 angles + 3 translation) (init x0.1), probabilities [512, 128, nH] + softmax (init x0.1);
  rotations from the "3a" angle triplet: angles = pi tanh(r), R = Rz(a) Ry(b) Rx(c); translations
  t = mins + (tanh + 1)/2 (maxs - mins) with [mins, maxs] = [-.5,-.5,-.5]..[.5,.5,.6];
- xi_T inference (ImageShapePoseConditionedInferrer): pixel unprojection of the RGBA image at the projected
  vertices of each posed hypothesis mesh -> [4|V|, 512] BN-ELU; v (detached) -> [64, 128, 32]; with q ->
  [1056, 384, 256, 128];
- deformation decoder [64, 600, 900, 1200, 3|V|] with BatchNorm + ELU (init x0.1), M = template + 0.01 delta;
- texture decoder: the WGAN-GP ResNet generator (4 -> 64 by four up-sampling residual blocks, ngf 1024, BN,
  tanh, mapped to [0,1]) on [xi_T ; M_reducer(M) (detached)], M_reducer = [3|V|, 800, 400] BN-ELU; per-vertex
  colours = grid_sample of the UV image at the UVs;
- pose decoder (graphics direction): xi_p (16) -> [16, 64, 6] BN-ELU;
- shape encoder: PointNet on (x, y, z, nx, ny, nz): shared MLP 6-64-64-128-1024, max pool, 1024-512-512 with
  BN, ReLU and dropout 0.5, then 512 -> 64;
- critics: image WGAN-GP ResNet critic on 64² RGBA (ndf 1024, LayerNorm residual blocks; its normalised
  block features also give the perceptual distance), shape critic on [v ; reduced M] (M: [3|V|, 512, 128]
  BN-ELU; MLP [192, 512, 256, 128, 1] with LayerNorm + LeakyReLU), texture critic = the WGAN-GP critic on
  the 64² UV texture image (3 channels), the adversarial cross-pose texture consistency critic (a CIFAR
  ResNet-20 that predicts the pose from the texture image), and the pose buffer (128 poses, no weights).

Renders: the soft rasterizer with genren's settings (`renderer_settings`): eye (0, 0, 1.2), 30° half angle,
sigma 1e-5, gamma 1e-4, 128² supersampled to 64², black background; RGB mapped to [-1,1], alpha in [0,1].
Images everywhere are (B, 4, S, S): RGB in [-1,1] composited over black, alpha in [0,1].
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from modules.geometry.ico_sphere import icosa_sphere
from modules.geometry.meshes import Meshes
from modules.geometry.soft_rasterizer import (SoftRasterizationSettings, look_at_view_transform, project_vertices,
                                              soft_render)
from modules.models.image_encoders import ImageEncoder
from modules.models.pointnet import SharedMLP
from modules.utils import ShapeLabError

# --- small shared blocks --------------------------------------------------------------------------------------


def mlp(sizes, norm="bn", act="elu", end_with_linear=True, init_scale=None):
    """The original's LBA stack: (Linear -> norm -> act) for each hidden layer, a plain Linear last (or one more
    LBA block with end_with_linear=False). norm: "bn" (BatchNorm1d) | "ln" (LayerNorm) | None; act: "elu" |
    "relu" | "lrelu" (0.2). init_scale multiplies every Linear's initial weights and biases (the original's
    init_lin_scale). (B, sizes[0]) -> (B, sizes[-1])."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or not end_with_linear:
            if norm == "bn":
                layers.append(nn.BatchNorm1d(b))
            elif norm == "ln":
                layers.append(nn.LayerNorm(b))
            layers.append({"elu": nn.ELU(), "relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2)}[act])
    net = nn.Sequential(*layers)
    if init_scale is not None:
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.Linear):
                    m.weight.mul_(init_scale)
                    m.bias.mul_(init_scale)
    return net


def angle_triplet_to_matrix(angles):
    """(N,3) angles (a, b, c) -> (N,3,3) rotation Rz(a) Ry(b) Rx(c) (the original's AngleTripletDecoder after its
    pi*tanh squashing)."""
    a, b, c = angles.unbind(-1)
    sa, sb, sc, ca, cb, cc = a.sin(), b.sin(), c.sin(), a.cos(), b.cos(), c.cos()
    row0 = torch.stack([ca * cb, ca * sb * sc - sa * cc, ca * sb * cc + sa * sc], -1)
    row1 = torch.stack([sa * cb, sa * sb * sc + ca * cc, sa * sb * cc - ca * sc], -1)
    row2 = torch.stack([-sb, cb * sc, cb * cc], -1)
    return torch.stack([row0, row1, row2], -2)


def spherical_uvs(verts):
    """(V,3) unit-sphere vertices -> (V,2) grid_sample coordinates in [-1,1]: U = atan2(x, z)/pi, V = -2 asin(y)/pi."""
    u = torch.atan2(verts[:, 0], verts[:, 2]) / math.pi
    v = torch.asin(verts[:, 1].clamp(-1.0, 1.0)) * (-2.0 / math.pi)
    return torch.stack([u, v], dim=-1)


def random_upper_hemisphere_rotation(B, generator=None, device=None):
    """(B,3,3) domain-randomised object rotations: azimuth ~ U[0, 2pi) about y, then elevation ~ U[0, pi/2) tilting
    y towards the camera (+z) about x (the original's random_upper_hemi_rotm_manual). R = R_elev R_azim."""
    azi = torch.rand(B, generator=generator, device=device) * 2 * math.pi
    ele = torch.rand(B, generator=generator, device=device) * math.pi / 2
    z, o = torch.zeros_like(azi), torch.ones_like(azi)
    Ra = torch.stack([torch.stack([azi.cos(), z, azi.sin()], -1), torch.stack([z, o, z], -1),
                      torch.stack([-azi.sin(), z, azi.cos()], -1)], -2)
    Re = torch.stack([torch.stack([o, z, z], -1), torch.stack([z, ele.cos(), -ele.sin()], -1),
                      torch.stack([z, ele.sin(), ele.cos()], -1)], -2)
    return Re @ Ra


# --- WGAN-GP ResNet generator and critic (torch_mimicry's wgan_gp blocks, as genren's gan_baseline.py) --------

class GBlock(nn.Module):
    """Up-sampling residual block: BN-ReLU-up(bilinear x2)-conv3x3-BN-ReLU-conv3x3 + (up, conv1x1) shortcut."""

    def __init__(self, cin, cout):
        super().__init__()
        self.b1, self.c1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.b2, self.c2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.c_sc = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x):
        up = lambda h: F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        h = self.c1(up(F.relu(self.b1(x))))
        h = self.c2(F.relu(self.b2(h)))
        return h + self.c_sc(up(x))


class DBlock(nn.Module):
    """Down-sampling residual critic block: LN-ReLU-conv3x3-LN-ReLU-conv3x3-avgpool + (conv1x1, avgpool) shortcut.
    LayerNorm over (C, H, W) as the WGAN-GP ResNet critic (no BatchNorm, which would break the penalty)."""

    def __init__(self, cin, cout, size):
        super().__init__()
        self.n1, self.c1 = nn.LayerNorm([cin, size, size]), nn.Conv2d(cin, cin, 3, 1, 1)
        self.n2, self.c2 = nn.LayerNorm([cin, size, size]), nn.Conv2d(cin, cout, 3, 1, 1)
        self.c_sc = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x):
        h = self.c2(F.relu(self.n2(self.c1(F.relu(self.n1(x))))))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.c_sc(x), 2)


class DBlockOptimized(nn.Module):
    """First critic block: conv3x3-ReLU-conv3x3-avgpool + (avgpool, conv1x1) shortcut, no normalisation."""

    def __init__(self, cin, cout):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.c_sc = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x):
        return F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2) + self.c_sc(F.avg_pool2d(x, 2))


class TextureGenerator(nn.Module):
    """WGAN-GP ResNet generator: (B, nz) -> (B, out_channels, S, S) in [-1,1] (tanh), S = 4·2^blocks.
    size 64: four up-sampling blocks ngf -> ngf/16 (genren's '64' texture generator, ngf 1024); size 32: three."""

    def __init__(self, nz, ngf=1024, out_channels=3, size=64):
        super().__init__()
        n = {32: 3, 64: 4}.get(int(size))
        if n is None:
            raise ShapeLabError(f"texture generator size {size}: expected 32 or 64")
        self.ngf = ngf
        self.l1 = nn.Linear(nz, 16 * ngf)
        nn.init.xavier_uniform_(self.l1.weight, 1.0)
        self.blocks = nn.Sequential(*[GBlock(ngf >> i, ngf >> (i + 1)) for i in range(n)])
        self.b_out = nn.BatchNorm2d(ngf >> n)
        self.c_out = nn.Conv2d(ngf >> n, out_channels, 3, 1, 1)

    def forward(self, z):
        h = self.blocks(self.l1(z).view(z.shape[0], self.ngf, 4, 4))
        return torch.tanh(self.c_out(F.relu(self.b_out(h))))


class WganCritic(nn.Module):
    """WGAN-GP ResNet critic (genren's WGANGPDiscriminator64 'full'): (B, C, S, S) -> (B, 1) scores.
    Blocks: optimized C -> ndf/16, then four down-sampling blocks to ndf, ReLU, spatial mean, Linear(ndf, 1).
    `features(x)` returns the five block outputs, each normalised to unit length over channels (E-LPIPS style),
    which genren's perceptual image distance compares."""

    def __init__(self, in_channels=4, ndf=1024, size=64):
        super().__init__()
        if size % 32:
            raise ShapeLabError(f"WGAN critic input size {size}: expected a multiple of 32")
        chans = [ndf >> 4, ndf >> 3, ndf >> 2, ndf >> 1, ndf]
        blocks = [DBlockOptimized(in_channels, chans[0])]
        s = size // 2
        for a, b in zip(chans[:-1], chans[1:]):
            blocks.append(DBlock(a, b, s))
            s //= 2
        self.blocks = nn.ModuleList(blocks)
        self.l_out = nn.Linear(ndf, 1)
        nn.init.xavier_uniform_(self.l_out.weight, 1.0)

    def forward(self, x):
        h = x
        for block in self.blocks:
            h = block(h)
        return self.l_out(F.relu(h).mean(dim=(2, 3)))

    def features(self, x):
        out, h = [], x
        for block in self.blocks:
            h = block(h)
            out.append(h / h.pow(2).sum(dim=1, keepdim=True).clamp(min=1e-5).sqrt())
        return out


class VectorCritic(nn.Module):
    """WGAN-GP critic on vectors: MLP [dim, *hidden, 1] with LayerNorm + LeakyReLU(0.2). (B, dim) -> (B, 1)."""

    def __init__(self, dim, hidden=(512, 256, 128)):
        super().__init__()
        self.f = mlp([dim, *hidden, 1], norm="ln", act="lrelu")

    def forward(self, x):
        return self.f(x)


class ShapeCritic(nn.Module):
    """genren's 'com' shape critic: scores (v (B, dim_v), canonical mesh vertices (B, V, 3)) jointly: the mesh is
    reduced by [3V, 512, 128] (BN-ELU) and concatenated to v. Real = shapes encoded from point clouds, fake =
    shapes inferred from images."""

    def __init__(self, n_verts, dim_v, reduced=128, hidden=(512, 256, 128)):
        super().__init__()
        self.reduce = mlp([3 * n_verts, 512, reduced], end_with_linear=False)
        self.critic = VectorCritic(dim_v + reduced, hidden)

    def forward(self, v, verts):
        return self.critic(torch.cat([v, self.reduce(verts.flatten(1))], dim=1))


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.sc = nn.Sequential()
        if stride != 1 or cin != cout:
            self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.sc(x))


class PosePredictor(nn.Module):
    """The adversarial cross-pose texture consistency (CPTC) critic: a CIFAR ResNet-20 (3 stages x 3 basic blocks,
    16/32/64 channels) that predicts a unit quaternion -> rotation from a UV texture image (B, 3, S, S) -> (B,3,3).
    The texture generator is trained to defeat it, so textures do not encode the viewpoint."""

    def __init__(self, width=16):
        super().__init__()
        w = width
        layers = [nn.Conv2d(3, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
        for stage, cout in enumerate((w, 2 * w, 4 * w)):
            for k in range(3):
                layers.append(_BasicBlock(cin, cout, 2 if (k == 0 and stage > 0) else 1))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 4)

    def forward(self, texture_images):
        q = F.normalize(self.fc(self.features(texture_images).mean(dim=(2, 3))), dim=1)
        w, x, y, z = q.unbind(1)
        return torch.stack([
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


# --- encoders of the vision direction -------------------------------------------------------------------------

class PointNetShapeEncoder(nn.Module):
    """PointNet on oriented points (B, N, 6) -> (B, out_dim) (genren's PointNet from pc_archs.py): shared MLPs
    6-64-64-128-1024 (Conv1d + BN + ReLU), max pool, 1024-512-512 (Linear + BN + ReLU + dropout), Linear -> out."""

    def __init__(self, in_channels=6, out_dim=64, dropout=0.5, width=1.0):
        super().__init__()
        c = [max(1, int(round(x * width))) for x in (64, 64, 128, 1024, 512, 512)]
        self.point_mlp = nn.Sequential(SharedMLP(in_channels, c[0]), SharedMLP(c[0], c[1]), SharedMLP(c[1], c[2]),
                                       SharedMLP(c[2], c[3]))
        self.head = nn.Sequential(nn.Linear(c[3], c[4], bias=False), nn.BatchNorm1d(c[4]), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(c[4], c[5], bias=False), nn.BatchNorm1d(c[5]), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(c[5], out_dim))

    def forward(self, points):
        return self.head(self.point_mlp(points.transpose(1, 2)).max(dim=2).values)


class TextureInferrer(nn.Module):
    """xi_T per pose hypothesis from the image, its embedding q, v (detached) and the posed hypothesis meshes
    (genren's ImageShapePoseConditionedInferrer without occlusion): the RGBA image is sampled at every projected
    vertex (pixel unprojection), [4V, 512] BN-ELU; v -> [dim_v, 128, 32] BN-ELU; then [512 + 32 + dim_q, 3d, 2d, d]."""

    def __init__(self, dim_q, dim_v, n_verts, dim_xi_T, unproj_dim=512, v_dim=32):
        super().__init__()
        self.v_pre = mlp([dim_v, 128, v_dim], end_with_linear=False)
        self.unproj = mlp([4 * n_verts, unproj_dim], end_with_linear=False)
        self.head = mlp([unproj_dim + v_dim + dim_q, 3 * dim_xi_T, 2 * dim_xi_T, dim_xi_T])

    def forward(self, images, q, v, vertex_pixels):
        """images (B,4,S,S); q (B,dq); v (B,dv); vertex_pixels (B,H,V,4) the unprojected pixels -> (B,H,dim_xi_T)."""
        B, H = vertex_pixels.shape[:2]
        sig = torch.cat([q, self.v_pre(v.detach())], dim=1)
        y = self.unproj(vertex_pixels.reshape(B * H, -1))
        return self.head(torch.cat([y, sig.repeat_interleave(H, dim=0)], dim=1)).view(B, H, -1)


# --- the model -------------------------------------------------------------------------------------------------

def renderer_settings(image_size=64, anti_aliasing=2, sigma=1e-5, gamma=1e-4):
    """genren's SoftRenderer settings (renderer.py): 30° half angle, near 0.05, far 100, fill_back, black
    background, dist_eps 1e-4, eps 1e-3."""
    return SoftRasterizationSettings(image_size=image_size, anti_aliasing=anti_aliasing, sigma=sigma, gamma=gamma,
                                     dist_eps=1e-4, near=0.05, far=100.0, fill_back=True, background=(0.0, 0.0, 0.0),
                                     viewing_angle=30.0, eps=1e-3)


class CyclicGenRen(nn.Module):
    """The cyclic generative renderer with its critics (see the module docstring for the sizes).

    Sub-modules: generator side `image_encoder`, `v_head`, `pose_head`, `prob_head`, `texture_inferrer`,
    `deformation_decoder`, `m_reducer`, `texture_decoder`, `pose_decoder`, `shape_encoder`; critics in
    `critics` (`image`, `shape`, `texture`, `cptc`); buffers `template_verts` (V,3), `template_faces` (F,3),
    `uvs` (V,2), `pose_buffer_R` (P,3,3), `pose_buffer_t` (P,3).

    Shapes: images (B,4,S,S) RGB in [-1,1] + alpha; points, normals (B,N,3); v (B,dim_v); xi_T (B[,H],dim_xi_T);
    R (B,H,3,3), t (B,H,3); meshes (B,V,3) canonical, (B,H,V,3) posed (X R^T + t); probabilities (B,H).
    """

    def __init__(self, icosa_frequency=10, dim_v=64, dim_xi_T=128, dim_xi_p=16, dim_backbone=512, num_hypotheses=4,
                 image_size=64, anti_aliasing=2, sigma=1e-5, gamma=1e-4, texture_size=64, texture_ngf=1024,
                 image_critic_ndf=1024, texture_critic_ndf=1024, m_reduced_dim=400, shape_critic_reduced=128,
                 critic_hidden=(512, 256, 128), pointnet_width=1.0, cptc_width=16, pose_buffer_size=128,
                 translation_mins=(-0.5, -0.5, -0.5), translation_maxs=(0.5, 0.5, 0.6), eye_distance=1.2,
                 encoder_weights=None, deformation_step=0.01):
        super().__init__()
        self.dim_v, self.dim_xi_T, self.dim_xi_p, self.nH = dim_v, dim_xi_T, dim_xi_p, num_hypotheses
        self.image_size, self.texture_size, self.deformation_step = image_size, texture_size, deformation_step
        verts, faces = icosa_sphere(icosa_frequency)
        self.nV = verts.shape[0]
        self.register_buffer("template_verts", verts)
        self.register_buffer("template_faces", faces)
        self.register_buffer("uvs", spherical_uvs(verts))
        self.register_buffer("t_mins", torch.tensor(translation_mins, dtype=torch.float32))
        self.register_buffer("t_maxs", torch.tensor(translation_maxs, dtype=torch.float32))
        self.settings = renderer_settings(image_size, anti_aliasing, sigma, gamma)
        R0, T0 = look_at_view_transform(eye=((0.0, 0.0, eye_distance),))
        self.register_buffer("cam_R", R0, persistent=False)
        self.register_buffer("cam_T", T0, persistent=False)

        # vision direction
        self.image_encoder = nn.Sequential(
            ImageEncoder("resnet18", in_channels=4, head=[dim_backbone], normalize=False, weights=encoder_weights),
            nn.BatchNorm1d(dim_backbone), nn.ReLU())
        self.v_head = mlp([dim_backbone, dim_v], init_scale=1e-2)
        self.pose_head = mlp([dim_backbone, 12 * num_hypotheses, 6 * num_hypotheses], init_scale=1e-1)
        self.prob_head = mlp([dim_backbone, 32 * num_hypotheses, num_hypotheses], init_scale=1e-1)
        self.texture_inferrer = TextureInferrer(dim_backbone, dim_v, self.nV, dim_xi_T)
        # shared decoders
        self.deformation_decoder = mlp([dim_v, 600, 900, 1200, 3 * self.nV], init_scale=1e-1)
        self.m_reducer = mlp([3 * self.nV, 2 * m_reduced_dim, m_reduced_dim], end_with_linear=False)
        self.texture_decoder = TextureGenerator(dim_xi_T + m_reduced_dim, texture_ngf, 3, texture_size)
        # graphics direction
        self.pose_decoder = mlp([dim_xi_p, 64, 6], init_scale=1e-1)
        self.shape_encoder = PointNetShapeEncoder(6, dim_v, width=pointnet_width)
        # critics
        self.critics = nn.ModuleDict({
            "image": WganCritic(4, image_critic_ndf, image_size),
            "shape": ShapeCritic(self.nV, dim_v, shape_critic_reduced, critic_hidden),
            "texture": WganCritic(3, texture_critic_ndf, texture_size),
            "cptc": PosePredictor(cptc_width)})
        self.register_buffer("pose_buffer_R", torch.eye(3).expand(pose_buffer_size, 3, 3).clone())
        self.register_buffer("pose_buffer_t", torch.zeros(pose_buffer_size, 3))

    # -- parameter sets ------------------------------------------------------------------------------------------
    GENERATOR_MODULES = ("image_encoder", "v_head", "pose_head", "prob_head", "texture_inferrer",
                         "deformation_decoder", "m_reducer", "texture_decoder", "pose_decoder", "shape_encoder")

    def generator_parameters(self):
        return [p for name in self.GENERATOR_MODULES for p in getattr(self, name).parameters()]

    def mesh_ae_parameters(self):
        return list(self.shape_encoder.parameters()) + list(self.deformation_decoder.parameters())

    # -- pieces --------------------------------------------------------------------------------------------------
    def process_translation(self, raw):
        return self.t_mins + (torch.tanh(raw) + 1.0) * 0.5 * (self.t_maxs - self.t_mins)

    def decode_rotation(self, raw):
        """(...,3) unbounded -> (...,3,3) via angles pi·tanh(raw) (the '3a' representation)."""
        return angle_triplet_to_matrix(math.pi * torch.tanh(raw + 1e-7))

    def deform(self, v):
        """v (B,dim_v) -> (delta (B,V,3), canonical mesh vertices template + 0.01 delta (B,V,3))."""
        delta = self.deformation_decoder(v).view(v.shape[0], self.nV, 3)
        return delta, self.template_verts + self.deformation_step * delta

    @staticmethod
    def pose_transform(verts, R, t):
        """verts (B,V,3), R (B,H,3,3), t (B,H,3) -> (B,H,V,3) = X R^T + t."""
        return verts[:, None] @ R.transpose(-1, -2) + t[:, :, None]

    def decode_pose(self, xi_p):
        """xi_p (B,dim_xi_p) -> R (B,1,3,3), t (B,1,3)."""
        raw = self.pose_decoder(xi_p)
        return self.decode_rotation(raw[:, :3])[:, None], self.process_translation(raw[:, 3:])[:, None]

    def decode_texture(self, xi_T, verts):
        """xi_T (B,d) or (B,H,d), canonical verts (B,V,3) -> (UV images (B[,H],3,T,T) in [0,1], colours (B[,H],V,3)).
        The mesh enters through M_reducer, detached (texture does not move the shape)."""
        m = self.m_reducer(verts.flatten(1)).detach()
        hyp = xi_T.ndim == 3
        H = xi_T.shape[1] if hyp else 1
        z = torch.cat([xi_T.reshape(-1, xi_T.shape[-1]), m.repeat_interleave(H, dim=0)], dim=1)
        img = (self.texture_decoder(z) + 1.0) * 0.5
        uv = self.uvs[None, None].expand(img.shape[0], 1, -1, -1)
        colors = F.grid_sample(img, uv, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
        colors = colors.transpose(1, 2)
        if hyp:
            return img.view(-1, H, *img.shape[1:]), colors.view(-1, H, self.nV, 3)
        return img, colors

    def render(self, verts, colors):
        """verts (N,V,3) posed, colors (N,V,3) in [0,1] -> (N,4,S,S): RGB in [-1,1] (over black), alpha in [0,1]."""
        out = soft_render(verts, self.template_faces, self.cam_R, self.cam_T, colors=colors, settings=self.settings)
        return torch.cat([out[:, :3] * 2.0 - 1.0, out[:, 3:]], dim=1)

    def unproject(self, images, verts):
        """Pixel unprojection: images (N,4,S,S) sampled at the projections of verts (N,V,3) -> (N,V,4). The grid
        follows the renderer's pixel layout (NDC +x is the image's left, +y its top)."""
        ndc = project_vertices(verts, self.cam_R.expand(verts.shape[0], 3, 3), self.cam_T.expand(verts.shape[0], 3),
                               self.settings.viewing_angle)
        grid = -ndc[:, None, :, :2]
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, :, 0] \
            .transpose(1, 2)

    def encode_shape(self, points, normals):
        """points, normals (B,N,3) -> v (B,dim_v)."""
        if points.ndim != 3 or points.shape != normals.shape or points.shape[-1] != 3:
            raise ShapeLabError(f"CyclicGenRen.encode_shape: points and normals must both be (B,N,3), got "
                                f"{tuple(points.shape)} and {tuple(normals.shape)}")
        return self.shape_encoder(torch.cat([points, normals], dim=2))

    def sample_xi_p(self, B):
        return torch.randn(B, self.dim_xi_p, device=self.template_verts.device)

    def sample_xi_T(self, B):
        return torch.randn(B, self.dim_xi_T, device=self.template_verts.device)

    # -- the two directions ---------------------------------------------------------------------------------------
    def infer_image(self, images):
        """images (B,4,S,S) -> dict q, v, raw_R (B,H,3), R (B,H,3,3), t (B,H,3), probs (B,H), delta (B,V,3),
        verts (B,V,3) canonical, posed (B,H,V,3), xi_T (B,H,dim_xi_T)."""
        if images.ndim != 4 or images.shape[1] != 4:
            raise ShapeLabError(f"CyclicGenRen: images must be (B,4,S,S) RGBA, got {tuple(images.shape)}")
        B, H = images.shape[0], self.nH
        q = self.image_encoder(images)
        pose = self.pose_head(q).view(B, H, 6)
        R = self.decode_rotation(pose[..., :3])
        t = self.process_translation(pose[..., 3:])
        probs = F.softmax(self.prob_head(q), dim=1)
        v = self.v_head(q)
        delta, verts = self.deform(v)
        posed = self.pose_transform(verts, R, t)
        pix = self.unproject(images.repeat_interleave(H, dim=0), posed.reshape(B * H, self.nV, 3)).view(B, H, self.nV, 4)
        xi_T = self.texture_inferrer(images, q, v, pix)
        return dict(q=q, v=v, raw_R=pose[..., :3], R=R, t=t, probs=probs, delta=delta, verts=verts, posed=posed,
                    xi_T=xi_T)

    def image_to_shape(self, images):
        """infer_image + the decoded textures: adds texture_images (B,H,3,T,T) and colors (B,H,V,3)."""
        out = self.infer_image(images)
        out["texture_images"], out["colors"] = self.decode_texture(out["xi_T"], out["verts"])
        return out

    def cycle_2(self, images):
        """Vision cycle image -> shape -> image: image_to_shape + renders (B,H,4,S,S), one per hypothesis."""
        out = self.image_to_shape(images)
        B, H = out["probs"].shape
        out["renders"] = self.render(out["posed"].reshape(B * H, self.nV, 3),
                                     out["colors"].reshape(B * H, self.nV, 3)).view(B, H, 4, *images.shape[2:])
        return out

    def shape_to_image(self, points, normals, xi_p=None, xi_T=None, detach_shape_in_rendering=True):
        """Graphics direction: dict v, delta, verts (B,V,3), R (B,1,3,3), t (B,1,3), xi_p, xi_T, texture_image
        (B,3,T,T), colors (B,V,3), renders (B,4,S,S). The pose decoder learns only from the pose buffer (its output
        pose is detached before rendering, as the original)."""
        B = points.shape[0]
        xi_p = self.sample_xi_p(B) if xi_p is None else xi_p
        xi_T = self.sample_xi_T(B) if xi_T is None else xi_T
        v = self.encode_shape(points, normals)
        delta, verts = self.deform(v)
        R, t = self.decode_pose(xi_p)
        posed = self.pose_transform(verts, R.detach(), t.detach())[:, 0]
        tex_img, colors = self.decode_texture(xi_T, verts)
        renders = self.render(posed.detach() if detach_shape_in_rendering else posed, colors)
        return dict(v=v, delta=delta, verts=verts, R=R, t=t, xi_p=xi_p, xi_T=xi_T, texture_image=tex_img,
                    colors=colors, renders=renders)

    def cycle_1(self, points, normals):
        """Graphics cycle shape -> image -> shape: {"forward": shape_to_image, "back": image_to_shape(renders)}."""
        fwd = self.shape_to_image(points, normals)
        return {"forward": fwd, "back": self.image_to_shape(fwd["renders"])}

    # -- domain randomisation (pretraining stage 2, modes I-II) --------------------------------------------------
    def random_dr_pose(self, B):
        """(R (B,1,3,3), t (B,1,3)): upper-hemisphere rotation; t in [-.25,.25]² x [-.35,.25] (the original's)."""
        dev = self.template_verts.device
        R = random_upper_hemisphere_rotation(B, device=dev)
        t = torch.stack([(2 * torch.rand(B, device=dev) - 1) * 0.25, (2 * torch.rand(B, device=dev) - 1) * 0.25,
                         torch.rand(B, device=dev) * 0.6 - 0.35], -1)
        return R[:, None], t[:, None]

    def random_dr_texture(self, B, sigma=0.01):
        """(B,V,3) two-colour vertex textures split by a random plane through a template vertex, plus N(0, sigma²)
        noise (the original's generate_random_texture with U[0,1] colours)."""
        dev, V = self.template_verts.device, self.template_verts
        c0, c1 = torch.rand(B, 1, 3, device=dev), torch.rand(B, 1, 3, device=dev)
        n = F.normalize(torch.randn(B, 3, device=dev), dim=1)
        p = V[torch.randint(self.nV, (B,), device=dev)]
        side = ((V[None] - p[:, None]) * n[:, None]).sum(-1, keepdim=True) > 0
        tex = torch.where(side, c1, c0) + sigma * torch.randn(B, self.nV, 3, device=dev)
        return tex.clamp(0.001, 0.999)

    def cycle_1_domain_randomized(self, points, normals):
        """Shape -> image with a random pose and a random two-colour texture -> shape. Returns {"forward": dict
        v, delta, verts, R, t, colors, renders; "back": image_to_shape(renders)}."""
        B = points.shape[0]
        v = self.encode_shape(points, normals)
        delta, verts = self.deform(v)
        with torch.no_grad():
            R, t = self.random_dr_pose(B)
            colors = self.random_dr_texture(B)
        renders = self.render(self.pose_transform(verts, R, t)[:, 0], colors)
        fwd = dict(v=v, delta=delta, verts=verts, R=R, t=t, colors=colors, renders=renders)
        return {"forward": fwd, "back": self.image_to_shape(renders)}

    # -- helpers for inference and pictures ------------------------------------------------------------------------
    def best_hypothesis(self, out):
        """Index (B,) of the most probable pose hypothesis of an image_to_shape/cycle_2 output."""
        return out["probs"].argmax(dim=1)

    def mesh(self, verts):
        """Meshes of canonical or posed vertex batches (B,V,3) with the template faces."""
        return Meshes(verts, self.template_faces[None].expand(verts.shape[0], -1, -1))


def parameter_counts(model):
    """{component: parameters} of a CyclicGenRen, generator parts and critics separately."""
    counts = {name: sum(p.numel() for p in getattr(model, name).parameters()) for name in model.GENERATOR_MODULES}
    counts.update({f"critic.{k}": sum(p.numel() for p in c.parameters()) for k, c in model.critics.items()})
    counts["generator total"] = sum(counts[n] for n in model.GENERATOR_MODULES)
    counts["critics total"] = sum(v for k, v in counts.items() if k.startswith("critic."))
    counts["total"] = counts["generator total"] + counts["critics total"]
    return counts
