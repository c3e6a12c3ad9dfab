"""Randomness of the model's forward pass per sample, so a run does not depend on how a batch is split.

In deterministic mode the engine wraps each training step in `per_sample_dropout(model, seeds)`: every
`nn.Dropout`/`Dropout1d/2d/3d` of the model draws the mask of sample i from a generator seeded by
(sample i's seed, the layer, the how-many-th call of that layer in this step), instead of one draw
from the global RNG for the whole local batch. One process with a batch of 32 and two processes with
16 each then draw the same masks for the same samples, so two ranks end with the weights of one.

Guaranteed: dropout layers whose input has the samples along dim 0 in blocks (shape (B*k, ...) with
sample-major rows: (B, C), (B, C, N), (B*N, C) from a reshape of (B, N, C)). Not covered (they draw from
the global RNG, which every rank seeds alike, so they depend on the rank layout): functional
`F.dropout` calls, dropout on tensors whose first dim is not a multiple of the batch, and other random
ops inside a forward pass (a random FPS start, noise added by the model).
"""
import contextlib

import torch
from torch import nn

DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def _mask_seed(sample_seed, layer, call):
    return (int(sample_seed) * 1_000_003 + layer * 9_176 + call * 131) % (2**63 - 1)


class _PerSampleMasks:
    def __init__(self, seeds):
        self.seeds = [int(s) for s in seeds]
        self.calls = {}
        self.fallbacks = 0

    def forward(self, module, layer, x):
        if not module.training or module.p == 0.0:
            return x
        b = len(self.seeds)
        channelwise = not isinstance(module, nn.Dropout)
        if b == 0 or x.shape[0] % b or (channelwise and x.dim() < 3):
            self.fallbacks += 1                 # not in sample-major blocks: the layer's own draw
            return type(module).forward(module, x)
        per = x.shape[0] // b
        shape = (per,) + (tuple(x.shape[1:2]) + (1,) * (x.dim() - 2) if channelwise else tuple(x.shape[1:]))
        call = self.calls.get(layer, 0)
        self.calls[layer] = call + 1
        masks = []
        for seed in self.seeds:
            g = torch.Generator(device=x.device)
            g.manual_seed(_mask_seed(seed, layer, call))
            masks.append(torch.rand(shape, generator=g, device=x.device) >= module.p)
        keep = torch.cat(masks).to(x.dtype)
        return x * keep / (1.0 - module.p)


@contextlib.contextmanager
def per_sample_dropout(model, seeds):
    """Within the block, the model's dropout layers draw per-sample masks from `seeds` (this rank's sample
    seeds, in batch order). Yields the helper (its `fallbacks` counts draws that could not be split)."""
    masks = _PerSampleMasks(seeds)
    patched = []
    for layer, module in enumerate(model.modules()):
        if isinstance(module, DROPOUT_TYPES):
            module.forward = (lambda x, m=module, i=layer: masks.forward(m, i, x))
            patched.append(module)
    try:
        yield masks
    finally:
        for module in patched:
            del module.forward
