"""Occupancy networks from point clouds: the shared encoder/decoder wrapper, the training task and the
registry entries of the four models (AIR-Net, ONet, ConvONet, IF-Net).

Every model maps an input cloud (B,N,3) in [-0.5,0.5]^3 and query points (B,Q,3) to occupancy
logits (B,Q); a query is inside when sigmoid(logit) > threshold. The default threshold follows each
original (0.5 AIR-Net / IF-Net, 0.2 ONet / ConvONet) and is stored with the model.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from modules.engine.task import Task
from modules.losses.occupancy import occupancy_bce
from modules.registry import MODELS, TASKS
from modules.utils import ShapeLabError


class ResnetBlockFC(nn.Module):
    """Fully connected ResNet block (Occupancy Networks): x + fc_1(relu(fc_0(relu(x)))), linear shortcut
    when the width changes. fc_1 starts at zero so every block starts as the identity."""

    def __init__(self, size_in, size_out=None, size_h=None):
        super().__init__()
        size_out = size_in if size_out is None else size_out
        size_h = min(size_in, size_out) if size_h is None else size_h
        self.fc_0 = nn.Linear(size_in, size_h)
        self.fc_1 = nn.Linear(size_h, size_out)
        self.shortcut = nn.Linear(size_in, size_out, bias=False) if size_in != size_out else None
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x):
        dx = self.fc_1(F.relu(self.fc_0(F.relu(x))))
        return (x if self.shortcut is None else self.shortcut(x)) + dx


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


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- training task

class OccupancyTask(Task):
    """BCE on occupancy logits (mean over queries and batch), as all four originals.

    Batches: `inputs` (B,N,3) input cloud, `points` (B,Q,3) queries, `occ` (B,Q) 0/1 labels;
    validation batches may add `points_iou`/`occ_iou` (uniform points) for the volumetric IoU.
    """

    def loss(self, model, batch):
        logits = model(batch["inputs"], batch["points"])
        loss = occupancy_bce(logits, batch["occ"])
        return loss, {}

    def validate(self, model, batch):
        encoding = model.encode(batch["inputs"])
        logits = model.decode(batch["points"], encoding)
        out = {"loss": float(occupancy_bce(logits, batch["occ"]))}
        if "points_iou" in batch:
            logits = model.decode(batch["points_iou"], encoding)
            occ = batch["occ_iou"]
        else:
            occ = batch["occ"]
        out["iou"] = float(occupancy_iou(logits > model.logit_threshold, occ > 0.5).mean())
        return out

    def log_visuals(self, writer, model, batch, step):
        pass


def occupancy_iou(pred, gt):
    """Per-item IoU of two (B,Q) boolean occupancy tensors (ONet definition; empty union -> 1)."""
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@TASKS.register("occupancy", defaults={})
def build_occupancy_task(cfg):
    return OccupancyTask(cfg)


# ---------------------------------------------------------------- model registry

def _register(name, defaults, threshold):
    def builder(cfg):
        import importlib
        module = importlib.import_module(f"modules.models.{name}")
        encoder, decoder = getattr(module, f"build_{name}")(cfg)
        return OccupancyNetwork(name, encoder, decoder, cfg["threshold"])
    MODELS.register(name, defaults={**defaults, "threshold": threshold})(builder)


AIRNET_DEFAULTS = {          # configs/airnet300.yaml of the original
    "npoints_per_layer": [300, 200, 100],
    "encoder_nneigh": 16,
    "encoder_nneigh_reduced": 16,
    "nfinal_trans": 3,
    "encoder_attn_dim": 256,
    "encoder_attn_dim_reduced": 256,
    "full_sa": True,
    "decoder_attn_dim": 200,
    "decoder_nneigh": 7,
    "decoder_hidden_dim": 128,
    "decoder_nblocks": 5,        # honoured here; the original always used 5
}
ONET_DEFAULTS = {            # ResnetPointnet + DecoderCBatchNorm of the ONet config
    "c_dim": 512,
    "encoder_hidden_dim": 512,
    "decoder_hidden_dim": 256,
    "decoder_nblocks": 5,
}
CONVONET_DEFAULTS = {        # LocalPoolPointnet + LocalDecoder, 3 planes of 64^2 (or a 32^3 grid)
    "c_dim": 32,
    "encoder_hidden_dim": 32,
    "decoder_hidden_dim": 32,
    "nblocks": 5,
    "feature_type": "planes",    # planes (xz, xy, yz) | grid
    "plane_resolution": 64,
    "grid_resolution": 32,
    "unet_depth": 4,             # 2D U-Net of the plane variant
    "unet_filters": 32,
    "unet3d_levels": 3,          # 3D U-Net of the grid variant
    "unet3d_filters": 32,
    "padding": 0.02,             # AIR-Nets' value (ConvONet upstream: 0.1)
}
IFNET_DEFAULTS = {           # IF-Net ShapeNetPoints
    "resolution": 128,
    "hidden_dim": 256,
    "displacement": 0.0722,
}


def _register_all():
    _register("airnet", AIRNET_DEFAULTS, 0.5)
    _register("onet", ONET_DEFAULTS, 0.2)
    _register("convonet", CONVONET_DEFAULTS, 0.2)
    _register("ifnet", IFNET_DEFAULTS, 0.5)


_register_all()
