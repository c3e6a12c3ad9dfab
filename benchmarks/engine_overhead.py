"""Engine overhead: optimiser steps/s of modules.engine.Trainer versus a bare PyTorch loop on the
same model, data, batch size and optimiser (progress bar, TensorBoard scalars, per-sample seeding,
checkpoints at the default interval all included).

    .venv/bin/python benchmarks/engine_overhead.py [--steps 600] [--hidden 256] [--repeats 3] [--deterministic]
"""
import modules.startup  # noqa: F401,I001  (first: Ctrl-C while the imports load exits quietly)
import argparse
import os
import tempfile
import time

import torch

from modules.config import load_config
from modules.engine.trainer import Trainer
from modules.registry import DATASETS, MODELS
import modules.families  # noqa: F401  (registers every family)
from modules.utils import cli_main

TOY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "toy", "regression.yaml")


def bare_loop(cfg, steps):
    torch.manual_seed(0)
    model = MODELS.build(cfg["model"])
    data = DATASETS.build(cfg["data"], "train")
    loader = torch.utils.data.DataLoader(data, batch_size=cfg["training"]["batch_size"], shuffle=True, drop_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["training"]["lr"])
    done, start = 0, time.perf_counter()
    while done < steps:
        for batch in loader:
            pred = model(batch["x"]).squeeze(-1)
            loss = torch.mean((pred - batch["y"]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                break
    return steps / (time.perf_counter() - start)


def engine_loop(cfg, steps):
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, tmp)
        trainer.validate = lambda **kwargs: {}  # time training steps only, as the bare loop does
        start = time.perf_counter()
        trainer.fit()
        return steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--deterministic", action="store_true", help="engine in deterministic mode (per-sample seeding)")
    args = p.parse_args()
    # Engine defaults for logging and checkpoints (configs/default.yaml), one epoch of `steps` steps.
    cfg = load_config(TOY, [f"training.max_steps={args.steps}", "training.max_epochs=100000",
                            f"model.hidden={args.hidden}", f"training.batch_size={args.batch_size}",
                            f"data.num_train={args.steps * args.batch_size}", "training.progress=true",
                            "training.ckpt_every=500", "training.log_every=20",
                            f"experiment.deterministic={str(args.deterministic).lower()}"])
    bare, engine = [], []
    for _ in range(args.repeats):            # interleaved, best of N: robust to a busy machine
        bare.append(bare_loop(cfg, args.steps))
        engine.append(engine_loop(cfg, args.steps))
    b, e = max(bare), max(engine)
    print(f"\n| loop | steps/s (best of {args.repeats}) |\n|---|---|")
    print(f"| bare PyTorch | {b:.1f} |\n| ShapeLab engine | {e:.1f} |")
    print(f"\nengine overhead: {100 * (b - e) / b:+.1f}% (model toy_mlp hidden={args.hidden}, batch {args.batch_size}, "
          f"{args.steps} steps, {torch.get_num_threads()} threads, deterministic={args.deterministic})")


if __name__ == "__main__":
    main = cli_main(main)   # Ctrl-C: one line and exit code 130, no traceback
    main()
