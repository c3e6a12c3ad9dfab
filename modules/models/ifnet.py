"""IF-Net (Chibane et al., CVPR 2020), point-cloud completion network `ShapeNetPoints`.

Input: the cloud voxelised to a 128^3 occupancy grid over [-0.5,0.5]^3 (each point marks its
nearest grid sample; grid sample i sits at -0.5 + i/127). Encoder: a 3D CNN with 16/32/64/128/128
channels (conv + ReLU, BatchNorm, max-pool between levels), keeping the input and every level.
Decoder: at each query and its 6 neighbours displaced by +-0.0722 along each axis (in grid_sample's
[-1,1] units as the original, i.e. +-0.0361 in world units, ~4.6 voxels), trilinearly
sample all 6 levels (1+16+32+64+128+128 = 369 channels x 7 points = 2583 features), then a
per-point MLP 2583 -> 256 -> 256 -> 256 -> 1.

Differences to the original: the displacements are a registered buffer (no `.cuda()`), the grid is
sampled with align_corners=True (grid samples on the corners, consistent with the voxelisation),
and queries are not modified in place.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from modules.models.occupancy import check_point_cloud

CHANNELS = (16, 32, 64, 128, 128)


def voxelize_nearest(points, resolution):
    """(B,N,3) points in [-0.5,0.5]^3 -> (B,R,R,R) float grid [x,y,z], 1 at each point's nearest sample."""
    B = points.shape[0]
    cells = torch.round((points.detach() + 0.5) * (resolution - 1)).long().clamp(0, resolution - 1)
    flat = (cells[..., 0] * resolution + cells[..., 1]) * resolution + cells[..., 2]
    grid = points.new_zeros(B, resolution ** 3)
    grid.scatter_(1, flat, 1.0)
    return grid.view(B, resolution, resolution, resolution)


class IFNetEncoder(nn.Module):
    def __init__(self, resolution=128):
        super().__init__()
        self.resolution = resolution
        c = CHANNELS
        self.conv_in = nn.Conv3d(1, c[0], 3, padding=1)
        self.bn_in = nn.BatchNorm3d(c[0])
        self.levels = nn.ModuleList()
        for c_in, c_out in zip(c[:-1], c[1:]):
            self.levels.append(nn.ModuleDict({"conv_0": nn.Conv3d(c_in, c_out, 3, padding=1),
                                              "conv_1": nn.Conv3d(c_out, c_out, 3, padding=1),
                                              "bn": nn.BatchNorm3d(c_out)}))

    def forward(self, points):
        check_point_cloud(points, 1, "IF-Net encoder")
        x = voxelize_nearest(points, self.resolution)[:, None]
        features = [x]
        net = self.bn_in(F.relu(self.conv_in(x)))
        features.append(net)
        for level in self.levels:
            net = F.max_pool3d(net, 2)
            net = level["bn"](F.relu(level["conv_1"](F.relu(level["conv_0"](net)))))
            features.append(net)
        return features


class IFNetDecoder(nn.Module):
    def __init__(self, hidden_dim=256, displacement=0.0722):
        super().__init__()
        offsets = [[0.0, 0.0, 0.0]]
        for axis in range(3):
            for sign in (-1.0, 1.0):
                d = [0.0, 0.0, 0.0]
                d[axis] = sign * displacement
                offsets.append(d)
        self.register_buffer("displacements", torch.tensor(offsets), persistent=False)
        feature_size = (1 + sum(CHANNELS)) * len(offsets)
        self.fc_0 = nn.Conv1d(feature_size, hidden_dim, 1)
        self.fc_1 = nn.Conv1d(hidden_dim, hidden_dim, 1)
        self.fc_2 = nn.Conv1d(hidden_dim, hidden_dim, 1)
        self.fc_out = nn.Conv1d(hidden_dim, 1, 1)

    def forward(self, queries, features):
        B, Q, _ = queries.shape
        # grid_sample reads (x, y, z) as (W, H, D); our grids are [x, y, z] = [D, H, W], hence the flip.
        p = 2 * queries.flip(-1)
        p = p[:, None, None] + self.displacements.flip(-1)[None, :, None, None]   # (B,7,1,Q,3)
        p = p.view(B, len(self.displacements), 1, Q, 3)
        sampled = [F.grid_sample(f, p, mode="bilinear", padding_mode="border", align_corners=True)
                   for f in features]                                              # (B,C,7,1,Q)
        feats = torch.cat(sampled, dim=1).reshape(B, -1, Q)
        net = F.relu(self.fc_0(feats))
        net = F.relu(self.fc_1(net))
        net = F.relu(self.fc_2(net))
        return self.fc_out(net).squeeze(1)


def build_ifnet(cfg):
    return IFNetEncoder(cfg["resolution"]), IFNetDecoder(cfg["hidden_dim"], cfg["displacement"])
