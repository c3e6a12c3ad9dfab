"""Occupancy loss shared by AIR-Net, ONet, ConvONet and IF-Net: binary cross-entropy on logits."""
import torch.nn.functional as F


def occupancy_bce(logits, occ):
    """Mean BCE over all query points of the batch. logits (B,Q), occ (B,Q) in {0,1}."""
    return F.binary_cross_entropy_with_logits(logits, occ.to(logits.dtype))
