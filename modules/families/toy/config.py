"""Config defaults of the toy family, and the spec of each key whose default does not say it all
(spec syntax: modules/config.py)."""
MLP = {"hidden": 64, "depth": 2, "dropout": 0.0}
MLP_SCHEMA = {"hidden": "int >= 1", "depth": "int >= 0", "dropout": "float in [0, 1)"}
REGRESSION_DATA = {"num_train": 512, "num_val": 128, "noise": 0.01}
REGRESSION_DATA_SCHEMA = {"num_train": "int >= 1", "num_val": "int >= 0", "noise": "float >= 0"}
GAN = {"noise_dim": 4, "hidden": 32, "depth": 2}
GAN_SCHEMA = {"noise_dim": "int >= 1", "hidden": "int >= 1", "depth": "int >= 0"}
GAUSSIAN_DATA = {"num_train": 512, "num_val": 256, "mean": 3.0, "std": 0.5}
GAUSSIAN_DATA_SCHEMA = {"num_train": "int >= 1", "num_val": "int >= 0", "std": "float > 0", "noise_dim": "int >= 1"}
GAN_TASK = {
    "critic_steps": 1,          # critic updates per generator update
    "optimizers": {             # per-optimizer settings; a null falls back to the training section
        "generator": {"optimizer": "adam", "lr": 1.0e-3, "betas": [0.5, 0.999], "weight_decay": None,
                      "momentum": None, "grad_clip": None},
        "critic": {"optimizer": "adam", "lr": 1.0e-3, "betas": [0.5, 0.999], "weight_decay": None,
                   "momentum": None, "grad_clip": None},
    },
}
GAN_TASK_SCHEMA = {"critic_steps": "int >= 1"}   # optimizers.<name>.<key>: the training key's spec, or null
