"""The one loop for optimising inputs rather than network weights: neural style transfer and DeepDream on
point clouds, and fitting a voxel grid / point cloud / mesh to one target.

    out_dir/
      config.yaml               the run's config (written by the caller)
      checkpoints/latest.pt     the optimised tensors, optimizer state, iteration, RNG: a rerun resumes
      summary/                  TensorBoard: loss/<name> at every iteration
      ...                       snapshots, written by the caller's `on_snapshot`

`objective(iteration)` returns (scalar tensor to minimise, or to maximise with `maximize=True`;
{name: float} to log). Step rules: `adam` / `sgd` (torch optimizers on the tensors) or `normalized`
(DeepDream: x <- x +- lr * g / std(g) for each tensor, a step whose size does not depend on the scale of
the objective). Ctrl-C (KeyboardInterrupt) writes the checkpoint and an `interrupted` snapshot, then
re-raises.
"""
import os

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from modules.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from modules.utils import ShapeLabError

STEP_RULES = ("adam", "sgd", "normalized")


def optimize_inputs(params, objective, num_iters, out_dir=None, step_rule="adam", lr=0.01, maximize=False,
                    snapshot_every=0, on_snapshot=None, on_step=None, ckpt_every=0, resume=True, progress=True, desc="optimize"):
    """Optimise the leaf tensors `params` ({name: tensor}, requires_grad) in place for `num_iters` iterations.

    on_snapshot(iteration, tag, logs) is called at iteration 0 ("initial"), every `snapshot_every`
    iterations ("snapshot"), at the end ("final") and on Ctrl-C ("interrupted"). Returns the list of
    per-iteration log dicts (each with "loss"). on_step(iteration, logs) is called after every iteration.
    With out_dir None nothing is written (no checkpoint, no TensorBoard): an in-memory run.
    """
    if step_rule not in STEP_RULES:
        raise ShapeLabError(f"step rule '{step_rule}': expected one of {', '.join(STEP_RULES)}")
    if num_iters < 0:
        raise ShapeLabError(f"number of iterations {num_iters}: expected >= 0")
    if not lr > 0:
        raise ShapeLabError(f"step size {lr}: expected > 0")
    tensors = list(params.values())
    optimizer = None
    if step_rule == "adam":
        optimizer = torch.optim.Adam(tensors, lr=lr, maximize=maximize)
    elif step_rule == "sgd":
        optimizer = torch.optim.SGD(tensors, lr=lr, maximize=maximize)
    ckpt_path = os.path.join(out_dir, "checkpoints", "latest.pt") if out_dir else None
    start, history = 0, []
    if resume and ckpt_path and os.path.isfile(ckpt_path):
        state = load_checkpoint(ckpt_path)
        with torch.no_grad():
            for name, tensor in params.items():
                tensor.copy_(state["model"][name])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        start, history = state["step"], list(state.get("history", []))
        set_rng_state(state["rng"])
        print(f"resuming from iteration {start} ({ckpt_path})")

    def save():
        if ckpt_path is None:
            return
        save_checkpoint(ckpt_path, {"model": {k: v.detach().clone() for k, v in params.items()},
                                    "optimizer": optimizer.state_dict() if optimizer else {},
                                    "step": it, "history": history, "rng": rng_state()})

    writer = SummaryWriter(os.path.join(out_dir, "summary")) if out_dir else None
    it = start
    if start == 0 and on_snapshot is not None:
        on_snapshot(0, "initial", {})
    bar = tqdm(range(start, num_iters), desc=desc, leave=False, disable=not progress)
    try:
        for it in bar:
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            loss, logs = objective(it)
            if not torch.isfinite(loss.detach()):
                raise ShapeLabError(f"{desc}: the objective became {float(loss)} at iteration {it}; lower the step size")
            if optimizer is not None:
                loss.backward()
                optimizer.step()
            else:
                grads = torch.autograd.grad(loss, tensors)
                with torch.no_grad():
                    sign = 1.0 if maximize else -1.0
                    for tensor, grad in zip(tensors, grads):
                        tensor.add_(sign * lr * grad / (grad.std() + 1e-12))
            logs = {"loss": float(loss.detach()), **logs}
            history.append(logs)
            for name, value in logs.items():
                if writer is not None:
                    writer.add_scalar(f"loss/{name}", value, it + 1)
            it += 1
            bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
            if ckpt_every and it % ckpt_every == 0:
                save()
            if on_snapshot is not None and snapshot_every and it % snapshot_every == 0 and it != num_iters:
                on_snapshot(it, "snapshot", logs)
            if on_step is not None:
                on_step(it, logs)
    except KeyboardInterrupt:
        save()
        if on_snapshot is not None:
            on_snapshot(it, "interrupted", history[-1] if history else {})
        if writer is not None:
            writer.close()
        if ckpt_path:
            print(f"interrupted at iteration {it}: checkpoint {ckpt_path}; rerun the same command to resume")
        raise
    finally:
        bar.close()
    if writer is not None:
        writer.close()
    it = num_iters
    save()
    if on_snapshot is not None:
        on_snapshot(num_iters, "final", history[-1] if history else {})
    return history
