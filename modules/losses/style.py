"""Style and content losses on per-point feature maps (B, C, N) for geometric neural style transfer.

Point sets are unordered and the content, style and current clouds may have different
numbers of points, so the style losses compare order-free statistics over the point axis:
- `stats_loss`: per-channel mean and standard deviation (the original's `StatsLoss`),
- `gram_loss`: the C x C Gram matrix normalised by the number of points (Gatys et al.).
The content loss compares features point by point (same cloud, same order).
"""
import torch
import torch.nn.functional as F

# sqrt(var + eps): a channel that is constant over the points (e.g. the repeated global
# feature, layer 5) has zero variance, where the gradient of a plain sqrt is infinite.
STD_EPS = 1e-8


def channel_stats(features, mask=None, eps=STD_EPS):
    """Per-channel mean and std over the points of (B, C, N) features -> two (B, C) tensors.

    `mask` (N,) bool selects the points to use (all when None). The std is the population
    std (divide by N), as torch.var(unbiased=False).
    """
    if features.dim() != 3:
        raise ValueError(f"features must have shape (B, C, N), got {tuple(features.shape)}")
    if mask is not None:
        features = features[:, :, mask]
    mean = features.mean(dim=2)
    var = features.var(dim=2, unbiased=False)
    return mean, torch.sqrt(var + eps)


def stats_loss(current, target, current_mask=None, target_mask=None):
    """MSE between per-channel means plus MSE between per-channel stds of (B, C, N) feature maps.

    The two maps may have different N (and masks select points of each).
    """
    mean_c, std_c = channel_stats(current, current_mask)
    mean_t, std_t = channel_stats(target, target_mask)
    return F.mse_loss(mean_c, mean_t) + F.mse_loss(std_c, std_t)


def gram_matrix(features, mask=None):
    """(B, C, N) -> (B, C, C) Gram matrix F F^T / N over the (selected) points."""
    if features.dim() != 3:
        raise ValueError(f"features must have shape (B, C, N), got {tuple(features.shape)}")
    if mask is not None:
        features = features[:, :, mask]
    return torch.bmm(features, features.transpose(1, 2)) / features.shape[2]


def gram_loss(current, target, current_mask=None, target_mask=None):
    """MSE between the point-normalised Gram matrices of two (B, C, N) feature maps."""
    return F.mse_loss(gram_matrix(current, current_mask), gram_matrix(target, target_mask))


STYLE_LOSSES = {"stats": stats_loss, "gram": gram_loss}


def content_loss(current, target):
    """Point-wise feature MSE; both maps come from clouds with the same points in the same order."""
    return F.mse_loss(current, target)
