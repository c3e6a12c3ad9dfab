"""Occupancy networks from point clouds: the encoder/decoder wrapper shared by the four models (AIR-Net,
ONet, ConvONet, IF-Net). Their training task and registrations live in modules/families/occupancy/.

Every model maps an input cloud (B,N,3) in [-0.5,0.5]^3 and query points (B,Q,3) to occupancy
logits (B,Q); a query is inside when sigmoid(logit) > threshold. The default threshold follows each
original (0.5 AIR-Net / IF-Net, 0.2 ONet / ConvONet) and is stored with the model.
"""
import math

import torch
import torch.nn as nn

from modules.utils import ShapeLabError


def check_point_cloud(points, min_points, who):
    """Raise ShapeLabError unless points is a finite (B,N,3) tensor with N >= min_points."""
    if not torch.is_tensor(points) or points.ndim != 3 or points.shape[-1] != 3:
        shape = tuple(points.shape) if torch.is_tensor(points) else type(points).__name__
        raise ShapeLabError(f"{who}: input point cloud must have shape (B, N, 3), got {shape}")
    if points.shape[1] < min_points:
        raise ShapeLabError(f"{who}: input point cloud has {points.shape[1]} points, but the encoder samples "
                            f"{min_points}; give at least {min_points} points (data.pc_samples)")
    if not torch.isfinite(points).all():
        bad = (~torch.isfinite(points)).any(-1).any(-1).nonzero()[:, 0].tolist()
        raise ShapeLabError(f"{who}: input point cloud contains NaN or infinite coordinates (batch items {bad})")


class OccupancyNetwork(nn.Module):
    """encoder(points) -> encoding; decoder(queries, encoding) -> logits (B,Q)."""

    def __init__(self, name, encoder, decoder, threshold):
        super().__init__()
        self.name, self.encoder, self.decoder = name, encoder, decoder
        self.threshold = float(threshold)

    def encode(self, points):
        return self.encoder(points)

    def decode(self, queries, encoding):
        if not torch.is_tensor(queries) or queries.ndim != 3 or queries.shape[-1] != 3:
            raise ShapeLabError(f"{self.name}: query points must have shape (B, Q, 3), got {tuple(queries.shape)}")
        return self.decoder(queries, encoding)

    def forward(self, points, queries):
        return self.decode(queries, self.encode(points))

    @property
    def logit_threshold(self):
        return math.log(self.threshold / (1.0 - self.threshold))
