"""A synthetic regression problem (noisy 3D field fitted by an MLP) that exercises the engine
without any dataset on disk: used by the engine tests, the DDP test and benchmarks/engine_overhead.py.
"""
import numpy as np
import torch
from torch import nn

from modules.engine.task import Task
from modules.registry import DATASETS, MODELS, TASKS


@MODELS.register("toy_mlp", defaults={"hidden": 64, "depth": 2, "dropout": 0.0})
def build_toy_mlp(cfg):
    layers, width = [], 3
    for _ in range(cfg["depth"]):
        layers += [nn.Linear(width, cfg["hidden"]), nn.ReLU()]
        if cfg["dropout"]:
            layers.append(nn.Dropout(cfg["dropout"]))
        width = cfg["hidden"]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


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


@DATASETS.register("toy_regression", defaults={"num_train": 512, "num_val": 128, "noise": 0.01})
def build_toy_dataset(cfg, split):
    n = cfg["num_train"] if split == "train" else cfg["num_val"]
    return ToyRegressionDataset(n, cfg["noise"] if split == "train" else 0.0, seed={"train": 0, "val": 1, "test": 2}[split])


class RegressionTask(Task):
    def loss(self, model, batch):
        pred = model(batch["x"]).squeeze(-1)
        loss = torch.mean((pred - batch["y"]) ** 2)
        return loss, {}

    def validate(self, model, batch):
        pred = model(batch["x"]).squeeze(-1)
        err = pred - batch["y"]
        return {"loss": float(torch.mean(err ** 2)), "mae": float(torch.mean(err.abs()))}


@TASKS.register("regression", defaults={})
def build_regression_task(cfg):
    return RegressionTask(cfg)
