"""Config defaults of the toy family."""
MLP = {"hidden": 64, "depth": 2, "dropout": 0.0}
REGRESSION_DATA = {"num_train": 512, "num_val": 128, "noise": 0.01}
GAN = {"noise_dim": 4, "hidden": 32, "depth": 2}
GAUSSIAN_DATA = {"num_train": 512, "num_val": 256, "mean": 3.0, "std": 0.5}
GAN_TASK = {
    "critic_steps": 1,          # critic updates per generator update
    "optimizers": {             # per-optimizer settings; a null falls back to the training section
        "generator": {"optimizer": "adam", "lr": 1.0e-3, "betas": [0.5, 0.999], "weight_decay": None,
                      "momentum": None, "grad_clip": None},
        "critic": {"optimizer": "adam", "lr": 1.0e-3, "betas": [0.5, 0.999], "weight_decay": None,
                   "momentum": None, "grad_clip": None},
    },
}
