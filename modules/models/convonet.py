"""Convolutional Occupancy Networks (Peng et al., ECCV 2020), point-cloud input.

Encoder `LocalPoolPointnet`: per-point ResNet FC blocks; between blocks each point gets the max of
the features of the points falling in its cell (per plane, summed over planes). The final point
features are averaged into three axis-aligned feature planes (xz, xy, yz, 64^2 each) or one 32^3
grid, which a U-Net (2D, depth 4, 32 filters; 3D, 3 levels, 32 filters) turns into feature maps.
Decoder `LocalDecoder`: bilinear (trilinear) interpolation of the maps at each query, summed over
planes, conditions a ResNet FC network at every block; one occupancy logit.

Scatter max/mean use `Tensor.scatter_reduce` (no torch_scatter); empty cells hold 0, as there.
Coordinates are mapped to [0,1) by p / (1 + padding + 1e-3) + 0.5 (padding 0.02, AIR-Nets' value).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from modules.models.layers import ResnetBlockFC
from modules.models.occupancy import check_point_cloud

PLANE_AXES = {"xz": (0, 2), "xy": (0, 1), "yz": (1, 2)}


def normalize_coordinates(p, padding):
    """[-0.5(1+padding), 0.5(1+padding)] -> [0, 1), clamped."""
    x = p / (1 + padding + 1e-3) + 0.5
    return x.clamp(0.0, 1 - 1e-3)


def cell_index(x, reso):
    """(B,N,d) coordinates in [0,1) -> (B,N) flat cell index, first axis fastest (x + reso*y [+ reso^2*z])."""
    cells = (x * reso).long()
    index = cells[..., 0]
    for d in range(1, x.shape[-1]):
        index = index + cells[..., d] * reso ** d
    return index


def scatter_cells(feats, index, ncells, reduce):
    """feats (B,N,C), index (B,N) -> (B,C,ncells) with 'amax' or 'mean' per cell; empty cells 0."""
    B, N, C = feats.shape
    out = feats.new_zeros(B, C, ncells)
    return out.scatter_reduce(2, index[:, None].expand(B, C, N), feats.transpose(1, 2), reduce=reduce,
                              include_self=False)


class UNet(nn.Module):
    """U-Net (Ronneberger et al.), 2D or 3D: per level two 3x3 convs + ReLU, max-pool down,
    transposed-conv up, skip connections by concatenation, 1x1 conv out."""

    def __init__(self, channels_in, channels_out, depth=4, filters=32, dims=2):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        deconv = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        self.pool = nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)
        self.down, self.up, self.up_convs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        ch = channels_in
        for i in range(depth):
            out = filters * 2 ** i
            self.down.append(nn.ModuleList([conv(ch, out, 3, padding=1), conv(out, out, 3, padding=1)]))
            ch = out
        for i in range(depth - 1):
            out = ch // 2
            self.up.append(deconv(ch, out, 2, stride=2))
            self.up_convs.append(nn.ModuleList([conv(2 * out, out, 3, padding=1), conv(out, out, 3, padding=1)]))
            ch = out
        self.conv_out = conv(ch, channels_out, 1)

    def forward(self, x):
        skips = []
        for i, (c1, c2) in enumerate(self.down):
            x = F.relu(c2(F.relu(c1(x))))
            if i < len(self.down) - 1:
                skips.append(x)
                x = self.pool(x)
        for up, (c1, c2) in zip(self.up, self.up_convs):
            x = torch.cat([up(x), skips.pop()], dim=1)
            x = F.relu(c2(F.relu(c1(x))))
        return self.conv_out(x)


class LocalPoolPointnet(nn.Module):
    def __init__(self, c_dim=32, hidden_dim=32, nblocks=5, feature_type="planes", plane_resolution=64,
                 grid_resolution=32, unet_depth=4, unet_filters=32, unet3d_levels=3, unet3d_filters=32,
                 padding=0.02):
        super().__init__()
        if feature_type not in ("planes", "grid"):
            raise ValueError(f"feature_type={feature_type!r}: expected 'planes' or 'grid'")
        self.feature_type, self.padding = feature_type, padding
        self.reso = plane_resolution if feature_type == "planes" else grid_resolution
        self.fc_pos = nn.Linear(3, 2 * hidden_dim)
        self.blocks = nn.ModuleList(ResnetBlockFC(2 * hidden_dim, hidden_dim) for _ in range(nblocks))
        self.fc_c = nn.Linear(hidden_dim, c_dim)
        if feature_type == "planes":
            self.unet = UNet(c_dim, c_dim, unet_depth, unet_filters, dims=2)
        else:
            self.unet = UNet(c_dim, c_dim, unet3d_levels, unet3d_filters, dims=3)

    def _cells(self, points):
        """{name: (B,N) cell index} per plane (or the one grid)."""
        x = normalize_coordinates(points, self.padding)
        if self.feature_type == "grid":
            return {"grid": cell_index(x, self.reso)}
        return {name: cell_index(x[..., list(axes)], self.reso) for name, axes in PLANE_AXES.items()}

    def forward(self, points):
        check_point_cloud(points, 1, "ConvONet encoder")
        cells = self._cells(points)
        ncells = self.reso ** (3 if self.feature_type == "grid" else 2)
        net = self.blocks[0](self.fc_pos(points))
        for block in self.blocks[1:]:
            pooled = 0
            for index in cells.values():      # max over the points sharing a cell, gathered back
                cell_max = scatter_cells(net, index, ncells, "amax")
                pooled = pooled + cell_max.gather(2, index[:, None].expand(-1, net.shape[-1], -1))
            net = block(torch.cat([net, pooled.transpose(1, 2)], dim=-1))
        c = self.fc_c(net)
        B, C = c.shape[0], c.shape[-1]
        shape = (B, C) + (self.reso,) * (3 if self.feature_type == "grid" else 2)
        # flat index x + reso*y (+ reso^2*z) reshapes to [..., (z,) y, x]: W is the first axis, as grid_sample
        return {name: self.unet(scatter_cells(c, index, ncells, "mean").view(shape))
                for name, index in cells.items()}


class LocalDecoder(nn.Module):
    def __init__(self, c_dim=32, hidden_dim=32, nblocks=5, padding=0.02):
        super().__init__()
        self.padding = padding
        self.fc_p = nn.Linear(3, hidden_dim)
        self.fc_c = nn.ModuleList(nn.Linear(c_dim, hidden_dim) for _ in range(nblocks))
        self.blocks = nn.ModuleList(ResnetBlockFC(hidden_dim) for _ in range(nblocks))
        self.fc_out = nn.Linear(hidden_dim, 1)

    def sample_features(self, queries, features):
        x = normalize_coordinates(queries, self.padding)
        c = 0
        for name, fmap in features.items():
            coords = x if name == "grid" else x[..., list(PLANE_AXES[name])]
            grid = (2 * coords - 1).view(coords.shape[0], -1, *([1] * (coords.shape[-1] - 1)), coords.shape[-1])
            sampled = F.grid_sample(fmap, grid, mode="bilinear", padding_mode="border", align_corners=True)
            c = c + sampled.flatten(2)                         # (B,C,Q)
        return c.transpose(1, 2)

    def forward(self, queries, features):
        c = self.sample_features(queries, features)
        net = self.fc_p(queries)
        for fc_c, block in zip(self.fc_c, self.blocks):
            net = block(net + fc_c(c))
        return self.fc_out(F.relu(net)).squeeze(-1)


def build_convonet(cfg):
    encoder = LocalPoolPointnet(cfg["c_dim"], cfg["encoder_hidden_dim"], cfg["nblocks"], cfg["feature_type"],
                                cfg["plane_resolution"], cfg["grid_resolution"], cfg["unet_depth"],
                                cfg["unet_filters"], cfg["unet3d_levels"], cfg["unet3d_filters"], cfg["padding"])
    decoder = LocalDecoder(cfg["c_dim"], cfg["decoder_hidden_dim"], cfg["nblocks"], cfg["padding"])
    return encoder, decoder
