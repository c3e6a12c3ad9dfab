"""Generated data of the toy family (no files): a regression field and samples of a 1-D Gaussian.

Randomness drawn in __getitem__ comes from torch's global RNG, which the engine seeds per sample, so a
sample is the same whatever the rank layout or resume point.
"""
import numpy as np
import torch


class ToyRegressionDataset(torch.utils.data.Dataset):
    """Points x in [-1,1]^3 with target sin(2x)·cos(y) + z² ; `noise` adds per-draw input jitter."""

    def __init__(self, num_samples, noise, seed):
        rng = np.random.default_rng(seed)
        self.x = rng.uniform(-1, 1, size=(num_samples, 3)).astype(np.float32)
        self.y = (np.sin(2 * self.x[:, 0]) * np.cos(self.x[:, 1]) + self.x[:, 2] ** 2).astype(np.float32)
        self.noise = noise

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = torch.from_numpy(self.x[i])
        if self.noise:
            x = x + self.noise * torch.randn(3)
        return {"x": x, "y": torch.tensor(self.y[i])}


class GaussianSamplesDataset(torch.utils.data.Dataset):
    """Items {"real": (1,) a draw of N(mean, std), "noise": (noise_dim,) N(0, I) generator input},
    fresh at every access."""

    def __init__(self, num_samples, mean, std, noise_dim):
        self.num_samples, self.mean, self.std, self.noise_dim = num_samples, mean, std, noise_dim

    def __len__(self):
        return self.num_samples

    def __getitem__(self, i):
        return {"real": self.mean + self.std * torch.randn(1), "noise": torch.randn(self.noise_dim)}
