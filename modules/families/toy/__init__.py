"""The toy family: generated data and small models that exercise the engine without files (engine tests,
the DDP tests, benchmarks/engine_overhead.py). Registers models `toy_mlp`, `toy_gan`, datasets
`toy_regression`, `toy_gaussian`, tasks `regression` (automatic optimisation) and `gan` (manual: a
generator and a critic with their own optimizers).
"""
from modules.data.toy import GaussianSamplesDataset, ToyRegressionDataset
from modules.families.toy import config
from modules.families.toy.training import GanTask, RegressionTask
from modules.models.toy import Gan1d, mlp
from modules.registry import DATASETS, MODELS, TASKS

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def build_toy_mlp(cfg):
    return mlp(3, cfg["hidden"], cfg["depth"], 1, cfg["dropout"])


def build_toy_gan(cfg):
    return Gan1d(cfg["noise_dim"], cfg["hidden"], cfg["depth"])


def build_toy_regression(cfg, split):
    n = cfg["num_train"] if split == "train" else cfg["num_val"]
    return ToyRegressionDataset(n, cfg["noise"] if split == "train" else 0.0, seed=SPLIT_SEEDS[split])


def build_toy_gaussian(cfg, split):
    n = cfg["num_train"] if split == "train" else cfg["num_val"]
    return GaussianSamplesDataset(n, cfg["mean"], cfg["std"], cfg["noise_dim"])


MODELS.register("toy_mlp", defaults=config.MLP, schema=config.MLP_SCHEMA)(build_toy_mlp)
MODELS.register("toy_gan", defaults=config.GAN, schema=config.GAN_SCHEMA)(build_toy_gan)
DATASETS.register("toy_regression", defaults=config.REGRESSION_DATA, schema=config.REGRESSION_DATA_SCHEMA)(
    build_toy_regression)
DATASETS.register("toy_gaussian", defaults={**config.GAUSSIAN_DATA, "noise_dim": config.GAN["noise_dim"]},
                  schema=config.GAUSSIAN_DATA_SCHEMA)(
    build_toy_gaussian)
TASKS.register("regression", defaults={})(RegressionTask)
TASKS.register("gan", defaults=config.GAN_TASK, schema=config.GAN_TASK_SCHEMA)(GanTask)
