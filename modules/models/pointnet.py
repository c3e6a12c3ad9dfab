"""PointNet (Qi et al. 2017) for ShapeNet-Part segmentation and shape classification.

`PointNetPartSeg` is the layout of PVCNN's "PointNet (Reproduce)" (mit-han-lab/pvcnn,
`models/shapenet/pointnet.py`, 83.5 instance mIoU), whose checkpoint `shapenet.pointnet.pth.tar`
the attribution/NST seed loads: parameter names match, so that checkpoint loads with
`strict=True` after stripping DataParallel's `module.` prefix (`modules.engine.checkpoint.load_weights`).
Differences from PVCNN: ReLUs are not in-place (hook-based attribution needs the module output
intact) and every forward keeps the per-layer features in `model.features`.

`PointNetCls` is the classifier with the input (3x3) and feature (64x64) T-Nets of the paper,
laid out as the widely used fxia22/pointnet.pytorch port the seed adapted.
"""
import torch
from torch import nn

from modules.utils import ShapeLabError

SEG_FEATURE_CHANNELS = (64, 128, 128, 512, 2048)     # point_features outputs; feature_5 = global 2048
SEG_LAYER_CHANNELS = SEG_FEATURE_CHANNELS + SEG_FEATURE_CHANNELS[-1:]   # feature_0..feature_5 (NST/DeepDream ids)
SEG_HEAD_CHANNELS = (256, 256, 128)                   # classifier SharedMLPs (dropout 0.2 between)


class SharedMLP(nn.Module):
    """Per-point Conv1d(k=1) -> BatchNorm1d -> ReLU, stored as `layers.{0,1,2}` like PVCNN."""

    def __init__(self, in_channels, out_channels, relu=True):
        super().__init__()
        mods = [nn.Conv1d(in_channels, out_channels, 1), nn.BatchNorm1d(out_channels)]
        if relu:
            mods.append(nn.ReLU())
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)


class GlobalMaxPool(nn.Module):
    """Max over points, repeated back over N: (B,C,N) -> (B,C,N). A module so it can be hooked."""

    def forward(self, x):
        return x.max(dim=-1, keepdim=True).values.expand(-1, -1, x.shape[-1])


def _scaled(channels, width_multiplier):
    return max(1, int(round(channels * width_multiplier)))


class PointNetPartSeg(nn.Module):
    """PointNet part segmenter, PVCNN "PointNet (Reproduce)" layout.

    forward(inputs (B, 3+num_shapes, N)) -> scores (B, num_classes, N): rows 0-2 are xyz, the rest
    the shape-category one-hot repeated per point. After each call `self.features` holds
    feature_0..feature_4 (outputs of the five shared MLPs: 64,128,128,512,2048 channels) and
    feature_5 (the max-pooled 2048 global feature repeated over N), all (B,C,N) and in the graph.
    `width_multiplier` < 1 shrinks every layer (tests only; 1.0 is the published size).
    """

    def __init__(self, num_classes=50, num_shapes=16, width_multiplier=1.0):   # ShapeNet-Part: 50 parts, 16 categories
        super().__init__()
        self.num_classes = num_classes
        self.num_shapes = num_shapes
        self.in_channels = 3
        widths = [_scaled(c, width_multiplier) for c in SEG_FEATURE_CHANNELS]
        blocks, prev = [], self.in_channels
        for w in widths:
            blocks.append(SharedMLP(prev, w))
            prev = w
        self.point_features = nn.ModuleList(blocks)
        self.global_pool = GlobalMaxPool()
        concat = num_shapes + sum(widths) + widths[-1]          # 4944 at full width
        h0, h1, h2 = [_scaled(c, width_multiplier) for c in SEG_HEAD_CHANNELS]
        self.classifier = nn.Sequential(
            SharedMLP(concat, h0), nn.Dropout(0.2),
            SharedMLP(h0, h1), nn.Dropout(0.2),
            SharedMLP(h1, h2),
            nn.Conv1d(h2, num_classes, 1),
        )
        self.feature_channels = tuple(widths) + (widths[-1],)
        self.features = {}

    def forward(self, inputs):
        if inputs.dim() != 3 or inputs.shape[1] != self.in_channels + self.num_shapes:
            raise ShapeLabError(
                f"PointNetPartSeg input: expected (B, {self.in_channels + self.num_shapes}, N) "
                f"(xyz + {self.num_shapes}-way one-hot per point), got {tuple(inputs.shape)}")
        x = inputs[:, :self.in_channels]
        one_hot = inputs[:, -self.num_shapes:]
        feats = {}
        out = [one_hot]
        for i, block in enumerate(self.point_features):
            x = block(x)
            feats[f"feature_{i}"] = x
            out.append(x)
        g = self.global_pool(x)
        feats[f"feature_{len(self.point_features)}"] = g
        out.append(g)
        self.features = feats
        return self.classifier(torch.cat(out, dim=1))

    def attribution_layers(self):
        """Layers a layer id refers to (attribution --layer_id): 0-5 = feature_0..feature_5,
        6/7/8 = outputs of the classifier's 256/256/128-channel shared MLPs. Id 7 is the 256-channel
        activation that feeds the 256->128 conv, which the seed's default `--layer_id 7` hooked."""
        return list(self.point_features) + [self.global_pool, self.classifier[0], self.classifier[2],
                                            self.classifier[4]]


def make_input(points, category_index, num_shapes=16):
    """(B,N,3) points + (B,) category indices -> (B, 3+num_shapes, N) segmenter input."""
    points = torch.as_tensor(points, dtype=torch.float32)
    if points.dim() == 2:
        points = points[None]
    category_index = torch.as_tensor(category_index, dtype=torch.long, device=points.device).reshape(-1)
    if category_index.numel() == 1 and points.shape[0] > 1:
        category_index = category_index.expand(points.shape[0])
    if category_index.numel() != points.shape[0]:
        raise ShapeLabError(f"make_input: {points.shape[0]} clouds but {category_index.numel()} category indices")
    if (category_index < 0).any() or (category_index >= num_shapes).any():
        raise ShapeLabError(f"make_input: category index must be in 0..{num_shapes - 1}, got {category_index.tolist()}")
    b, n, _ = points.shape
    one_hot = torch.nn.functional.one_hot(category_index, num_shapes).to(points.dtype)
    return torch.cat([points.transpose(1, 2), one_hot[:, :, None].expand(b, num_shapes, n)], dim=1)


# ----------------------------------------------------------------------------- classifier

class TNet(nn.Module):
    """Predicts a k x k transform from a (B,k,N) cloud; initialised at the identity."""

    def __init__(self, k, width_multiplier=1.0):
        super().__init__()
        self.k = k
        c = [_scaled(v, width_multiplier) for v in (64, 128, 1024, 512, 256)]
        self.mlp = nn.Sequential(SharedMLP(k, c[0]), SharedMLP(c[0], c[1]), SharedMLP(c[1], c[2]))
        self.fc = nn.Sequential(
            nn.Linear(c[2], c[3]), nn.BatchNorm1d(c[3]), nn.ReLU(),
            nn.Linear(c[3], c[4]), nn.BatchNorm1d(c[4]), nn.ReLU(),
            nn.Linear(c[4], k * k),
        )
        nn.init.zeros_(self.fc[-1].weight)
        nn.init.zeros_(self.fc[-1].bias)

    def forward(self, x):
        g = self.mlp(x).max(dim=-1).values
        eye = torch.eye(self.k, dtype=x.dtype, device=x.device)
        return self.fc(g).view(-1, self.k, self.k) + eye


class PointNetCls(nn.Module):
    """PointNet classifier with input and feature transforms (Qi et al. 2017, Fig. 2).

    forward(points (B,3,N)) -> logits (B,num_classes). log_softmax + NLL of these is the paper's
    loss; `self.trans_feat` (B,64,64) feeds `feature_transform_regularizer`. `self.features`
    holds the per-point features (feature_0: 64 after the feature transform, feature_1: 128,
    feature_2: 1024 before max pooling) and `global` (B,1024).
    """

    def __init__(self, num_classes=16, feature_transform=True, width_multiplier=1.0, dropout=0.3):
        super().__init__()
        self.num_classes = num_classes
        c1, c2, c3 = [_scaled(v, width_multiplier) for v in (64, 128, 1024)]
        h1, h2 = [_scaled(v, width_multiplier) for v in (512, 256)]
        self.input_transform = TNet(3, width_multiplier)
        self.conv1 = SharedMLP(3, c1)
        self.feature_transform = TNet(c1, width_multiplier) if feature_transform else None
        self.conv2 = SharedMLP(c1, c2)
        self.conv3 = SharedMLP(c2, c3, relu=False)       # the paper's last per-point layer is linear + BN
        self.global_pool = GlobalMaxPool()
        self.head = nn.Sequential(
            nn.Linear(c3, h1), nn.BatchNorm1d(h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.Dropout(dropout), nn.BatchNorm1d(h2), nn.ReLU(),
            nn.Linear(h2, num_classes),
        )
        self.trans = self.trans_feat = None
        self.features = {}

    def forward(self, points):
        if points.dim() != 3 or points.shape[1] != 3:
            raise ShapeLabError(f"PointNetCls input: expected (B, 3, N) xyz, got {tuple(points.shape)}")
        self.trans = self.input_transform(points)
        x = torch.bmm(self.trans, points)
        x = self.conv1(x)
        if self.feature_transform is not None:
            self.trans_feat = self.feature_transform(x)
            x = torch.bmm(self.trans_feat, x)
        else:
            self.trans_feat = None
        f0 = x
        f1 = self.conv2(f0)
        f2 = self.conv3(f1)
        g = self.global_pool(f2)
        self.features = {"feature_0": f0, "feature_1": f1, "feature_2": f2, "global": g[:, :, 0]}
        return self.head(g[:, :, 0])

    def attribution_layers(self):
        """Per-point layers for layer-wise attribution: 0 conv1 (64), 1 conv2 (128), 2 conv3 (1024)."""
        return [self.conv1, self.conv2, self.conv3]


def feature_transform_regularizer(trans):
    """||I - A A^T||_F averaged over the batch (PointNet's orthogonality term for the 64x64 transform)."""
    if trans is None:
        return torch.zeros(())
    eye = torch.eye(trans.shape[1], dtype=trans.dtype, device=trans.device)
    return torch.linalg.matrix_norm(torch.bmm(trans, trans.transpose(1, 2)) - eye, ord="fro").mean()
