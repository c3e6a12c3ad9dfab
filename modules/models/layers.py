"""Layers shared by several model families, and parameter counting."""
import torch.nn as nn
import torch.nn.functional as F


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


def count_parameters(module, trainable_only=False):
    """Number of parameters of an nn.Module (all, or only those with requires_grad)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
