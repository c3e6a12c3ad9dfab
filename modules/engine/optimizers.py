"""The optimizers and LR schedules of a run, by name, and the one place where gradients are averaged over
ranks, accumulated, clipped and stepped.

A task gets one optimizer `main` over all trainable parameters (training.optimizer, lr, betas, weight_decay,
momentum, grad_clip) unless it overrides `Task.parameter_groups`, which names several parameter sets (a GAN's
generator and critic); each named optimizer takes its settings from `task.optimizers.<name>` (any key
missing there falls back to the `training` section), so per-optimizer lr/betas are plain config overrides:
`task.optimizers.critic.lr=1e-4`.
"""
import math

import torch
import torch.distributed as dist

from modules.utils import ShapeLabError

OPTIMIZER_KEYS = ("optimizer", "lr", "betas", "weight_decay", "momentum", "grad_clip")


def build_optimizer(params, t):
    name, lr, wd = t["optimizer"], t["lr"], t["weight_decay"]
    betas = tuple(t["betas"])
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr, betas=betas, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=t["momentum"], weight_decay=wd)
    raise ShapeLabError(f"training.optimizer '{name}': expected adam, adamw, radam or sgd")


def lr_factor_fn(schedule, steps_per_epoch, total_steps):
    name, unit, every, gamma = schedule["name"], schedule["unit"], schedule["every"], schedule["gamma"]
    warmup = schedule["warmup_steps"]
    if name not in ("constant", "step", "cosine"):
        raise ShapeLabError(f"training.lr_schedule.name '{name}': expected constant, step or cosine")
    if unit not in ("epoch", "step"):
        raise ShapeLabError(f"training.lr_schedule.unit '{unit}': expected epoch or step")

    def factor(step):
        f = min(1.0, (step + 1) / warmup) if warmup else 1.0
        if name == "step" and every > 0:
            count = step // steps_per_epoch if unit == "epoch" else step
            f *= gamma ** (count // every)
        elif name == "cosine":
            f *= 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
        return f
    return factor


class Optimizers:
    """Named optimizers + LambdaLR schedules; `backward` scales by 1/accumulate, `step(name)` steps every
    `accumulate` calls: averages gradients over ranks (torchrun), clips, steps, schedules, zeroes."""

    def __init__(self, groups, training, task_optimizers, steps_per_epoch, total_steps, world=1):
        if not groups:
            raise ShapeLabError("the task declares no parameters to optimise")
        self.accumulate = int(training["accumulate"])
        if self.accumulate < 1:
            raise ShapeLabError(f"training.accumulate {self.accumulate}: expected an integer >= 1")
        self.world = world
        self.params, self.optimizers, self.schedulers, self.settings, self.calls = {}, {}, {}, {}, {}
        for name, params in groups.items():
            params = [p for p in params if p.requires_grad]
            own = (task_optimizers or {}).get(name) or {}
            settings = {k: (own[k] if own.get(k) is not None else training[k]) for k in OPTIMIZER_KEYS}
            if not settings["lr"] > 0:
                raise ShapeLabError(f"learning rate of optimizer '{name}' is {settings['lr']}: expected > 0")
            self.params[name] = params
            self.settings[name] = settings
            self.optimizers[name] = build_optimizer(params, settings)
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(
                self.optimizers[name], lr_factor_fn(training["lr_schedule"], steps_per_epoch, total_steps))
            self.calls[name] = 0

    @property
    def names(self):
        return list(self.optimizers)

    def zero_grad(self, name=None):
        for n in ([name] if name else self.names):
            self.optimizers[n].zero_grad(set_to_none=True)

    def backward(self, loss):
        (loss / self.accumulate).backward()

    def pending(self):
        """True while some optimizer holds gradients of an unfinished accumulation."""
        return any(c % self.accumulate for c in self.calls.values())

    def step(self, name="main"):
        """Count one call; on every `accumulate`-th: reduce, clip, step, schedule, zero. Returns True if stepped."""
        self.calls[name] += 1
        if self.calls[name] % self.accumulate:
            return False
        params = self.params[name]
        if self.world > 1:
            self._average_gradients(params)
        clip = self.settings[name]["grad_clip"]
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        self.optimizers[name].step()
        self.schedulers[name].step()
        self.optimizers[name].zero_grad(set_to_none=True)
        return True

    @staticmethod
    def _average_gradients(params):
        """Mean gradient over ranks (what DistributedDataParallel computes), in one flat all-reduce."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
        offset = 0
        for p, g in zip(params, grads):
            p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()

    def lr(self, name="main"):
        return self.optimizers[name].param_groups[0]["lr"]

    def state_dict(self, model=None):
        state = {"optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                 "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
                 "calls": dict(self.calls)}
        if self.pending() and model is not None:      # mid-accumulation: keep the partial gradients
            state["grads"] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        return state

    def load_state_dict(self, state, model=None):
        if "optimizers" not in state:               # checkpoints written before named optimizers
            state = {"optimizers": {"main": state["optimizer"]}, "schedulers": {"main": state["scheduler"]},
                     "calls": {"main": 0}}
        if set(state["optimizers"]) != set(self.optimizers):
            raise ShapeLabError(f"checkpoint has optimizers {sorted(state['optimizers'])}, the task declares "
                                f"{sorted(self.optimizers)}")
        for n in self.optimizers:
            self.optimizers[n].load_state_dict(state["optimizers"][n])
            self.schedulers[n].load_state_dict(state["schedulers"][n])
        self.calls.update(state.get("calls", {}))
        if model is not None and state.get("grads"):
            for k, p in model.named_parameters():
                if k in state["grads"]:
                    p.grad = state["grads"][k].to(p.device).clone()
