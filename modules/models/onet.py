"""Occupancy Networks (Mescheder et al., CVPR 2019), point-cloud completion variant.

Encoder `ResnetPointnet`: per-point ResNet FC blocks, after each block the max-pooled feature is
concatenated back to every point; c = Linear(max-pool). Decoder `DecoderCBatchNorm`: per-query
Conv1d ResNet blocks whose BatchNorms are conditioned on c (gamma, beta = linear maps of c).
The ONet configuration: c_dim 512, encoder hidden 512, decoder hidden 256, 5 blocks, no latent z.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from modules.models.layers import ResnetBlockFC
from modules.models.occupancy import check_point_cloud


class ResnetPointnet(nn.Module):
    def __init__(self, c_dim=512, hidden_dim=512, nblocks=5):
        super().__init__()
        self.fc_pos = nn.Linear(3, 2 * hidden_dim)
        self.blocks = nn.ModuleList(ResnetBlockFC(2 * hidden_dim, hidden_dim) for _ in range(nblocks))
        self.fc_c = nn.Linear(hidden_dim, c_dim)

    def forward(self, points):
        check_point_cloud(points, 1, "ONet encoder")
        net = self.blocks[0](self.fc_pos(points))
        for block in self.blocks[1:]:
            pooled = net.max(dim=1, keepdim=True).values.expand_as(net)
            net = block(torch.cat([net, pooled], dim=-1))
        return self.fc_c(F.relu(net.max(dim=1).values))


class CBatchNorm1d(nn.Module):
    """BatchNorm without affine parameters, then gamma(c) * x + beta(c); starts as plain BN."""

    def __init__(self, c_dim, f_dim):
        super().__init__()
        self.conv_gamma, self.conv_beta = nn.Conv1d(c_dim, f_dim, 1), nn.Conv1d(c_dim, f_dim, 1)
        self.bn = nn.BatchNorm1d(f_dim, affine=False)
        nn.init.zeros_(self.conv_gamma.weight)
        nn.init.ones_(self.conv_gamma.bias)
        nn.init.zeros_(self.conv_beta.weight)
        nn.init.zeros_(self.conv_beta.bias)

    def forward(self, x, c):                     # x (B,F,Q), c (B,C)
        c = c[:, :, None]
        return self.conv_gamma(c) * self.bn(x) + self.conv_beta(c)


class CResnetBlockConv1d(nn.Module):
    def __init__(self, c_dim, size):
        super().__init__()
        self.bn_0, self.bn_1 = CBatchNorm1d(c_dim, size), CBatchNorm1d(c_dim, size)
        self.fc_0, self.fc_1 = nn.Conv1d(size, size, 1), nn.Conv1d(size, size, 1)
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x, c):
        net = self.fc_0(F.relu(self.bn_0(x, c)))
        return x + self.fc_1(F.relu(self.bn_1(net, c)))


class DecoderCBatchNorm(nn.Module):
    def __init__(self, c_dim=512, hidden_dim=256, nblocks=5):
        super().__init__()
        self.fc_p = nn.Conv1d(3, hidden_dim, 1)
        self.blocks = nn.ModuleList(CResnetBlockConv1d(c_dim, hidden_dim) for _ in range(nblocks))
        self.bn = CBatchNorm1d(c_dim, hidden_dim)
        self.fc_out = nn.Conv1d(hidden_dim, 1, 1)

    def forward(self, queries, c):
        net = self.fc_p(queries.transpose(1, 2))
        for block in self.blocks:
            net = block(net, c)
        return self.fc_out(F.relu(self.bn(net, c))).squeeze(1)


def build_onet(cfg):
    return (ResnetPointnet(cfg["c_dim"], cfg["encoder_hidden_dim"]),
            DecoderCBatchNorm(cfg["c_dim"], cfg["decoder_hidden_dim"], cfg["decoder_nblocks"]))
