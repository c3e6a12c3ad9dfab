"""The one training loop for every model family.

experiments/NAME/
  config.yaml          resolved config (every key, defaults filled in)
  checkpoints/         latest.pt (resumable: model, every optimizer and scheduler, epoch, RNG), best.pt, epoch_N.pt
  summary/             TensorBoard event files
Resume is automatic when checkpoints/latest.pt exists. The task runs each iteration
(`Task.training_step`: automatic loss -> backward -> step by default, or its own loop over several
named optimizers). Under torchrun (WORLD_SIZE > 1, gloo on CPU, NCCL on GPU) every rank takes its slice
of each global batch and gradients are averaged over ranks when an optimizer steps (what
DistributedDataParallel does, for any loop); rank 0 alone logs, validates and saves.
"""
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from modules.config import save_config
from modules.engine.checkpoint import load_checkpoint, load_model_weights, rng_state, save_checkpoint, set_rng_state
from modules.engine.loading import make_loader, to_device
from modules.engine.optimizers import Optimizers
from modules.engine.task import check_finite
from modules.registry import DATASETS, MODELS, TASKS
from modules.utils import ShapeLabError, get_device, seed_everything

EXIT_REQUEUE = 3  # exit code asking a cluster wrapper to resubmit from the last checkpoint
REQUEUE_MARKER = "REQUEUE"  # written next to config.yaml too, since torchrun turns exit codes into 1


class _StopFlag:
    """Set by SIGUSR1/SIGTERM (cluster time limit): checkpoint, then exit for requeue."""

    def __init__(self):
        self.raised = False
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            try:
                signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        self.raised = True


def _dist_info():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local_rank


def build_components(cfg, device):
    """Model, task and datasets from the registries; raises ShapeLabError before anything is written."""
    model = MODELS.build(cfg["model"]).to(device)
    task = TASKS.build(cfg["task"])
    train_set = DATASETS.build(cfg["data"], "train")
    val_set = DATASETS.build(cfg["data"], "val")
    return model, task, train_set, val_set


class Trainer:
    def __init__(self, cfg, exp_dir):
        self.cfg, self.exp_dir = cfg, exp_dir
        self.t = cfg["training"]
        self.world, self.rank, local_rank = _dist_info()
        self.is_main = self.rank == 0
        device = get_device(cfg["experiment"]["device"])
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        self.device = device
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        self.seed = cfg["experiment"]["seed"]
        if cfg["experiment"]["deterministic"]:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        seed_everything(self.seed)

        self.model, self.task, train_set, self.val_set = build_components(cfg, device)
        self.ckpt_dir = os.path.join(exp_dir, "checkpoints")
        latest = os.path.join(self.ckpt_dir, "latest.pt")
        resume_state = load_checkpoint(latest, cfg["model"]["name"]) if os.path.exists(latest) else None
        if resume_state is not None:
            load_model_weights(self.model, resume_state["model"], latest)

        self.loader, self.sampler = make_loader(train_set, self.t["batch_size"], self.seed, self.rank, self.world,
                                                num_workers=self.t["num_workers"],
                                                seed_samples=cfg["experiment"]["deterministic"] or self.world > 1)
        self.steps_per_epoch = len(self.sampler)
        self.total_steps = self.t["max_steps"] or self.t["max_epochs"] * self.steps_per_epoch
        if self.world > 1:      # every rank starts from rank 0's weights
            for tensor in self.model.state_dict().values():
                dist.broadcast(tensor, 0)
        self.optim = Optimizers(self.task.parameter_groups(self.model), self.t, cfg["task"].get("optimizers"),
                                self.steps_per_epoch, self.total_steps, self.world)
        self.epoch, self.step, self.batch_in_epoch = 0, 0, 0
        self.best = None
        if resume_state is not None:
            self.optim.load_state_dict(resume_state, self.model)
            self.epoch, self.step = resume_state["epoch"], resume_state["step"]
            self.batch_in_epoch = resume_state["batch_in_epoch"]
            self.best = resume_state.get("best_metric")
            set_rng_state(resume_state["rng"])
        self.resumed = resume_state is not None

        self.writer = None
        if self.is_main:
            os.makedirs(self.ckpt_dir, exist_ok=True)
            marker = os.path.join(exp_dir, REQUEUE_MARKER)
            if os.path.exists(marker):
                os.remove(marker)
            save_config(cfg, os.path.join(exp_dir, "config.yaml"))
            self.writer = SummaryWriter(os.path.join(exp_dir, "summary"))

    # -- checkpoints ---------------------------------------------------------------------
    def state(self):
        return {"model": self.model.state_dict(), **self.optim.state_dict(self.model),
                "epoch": self.epoch, "step": self.step,
                "batch_in_epoch": self.batch_in_epoch, "best_metric": self.best, "rng": rng_state(),
                "model_name": self.cfg["model"]["name"], "config": self.cfg,
                "world_size": self.world, "rank_weight_spread": getattr(self, "rank_weight_spread", None)}

    def save(self, *names):
        if not self.is_main:
            return
        state = self.state()
        for name in names:
            save_checkpoint(os.path.join(self.ckpt_dir, name), state)

    # -- validation ----------------------------------------------------------------------
    @torch.no_grad()
    def validate(self):
        if not self.is_main or self.val_set is None or len(self.val_set) == 0:
            return {}
        bs = self.t["val_batch_size"] or self.t["batch_size"]
        loader, _ = make_loader(self.val_set, bs, self.seed + 1, shuffle=False, drop_last=False)
        model, sums, count, first, records = self.model, {}, 0, None, []
        model.eval()
        for batch in loader:
            batch = to_device(batch, self.device)
            first = first if first is not None else batch
            n = self.task.batch_size(batch)
            out = self.task.validate(model, batch)
            records.extend(out.pop("records", []))
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
            count += n
        sums = {k: v / max(count, 1) for k, v in sums.items()}
        if records:
            sums.update(self.task.summarize(records))
        metrics = {f"val/{k}": v for k, v in sums.items()}
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, self.step)
        if first is not None:
            self.task.log_visuals(self.writer, model, first, self.step)
        model.train()
        key = self.t["best_metric"]
        if key in metrics:
            value = metrics[key]
            better = self.best is None or (value < self.best if self.t["best_mode"] == "min" else value > self.best)
            if better:
                self.best = value
                self.save("best.pt")
        elif metrics:
            raise ShapeLabError(f"training.best_metric '{key}' is not among the validation metrics: {', '.join(sorted(metrics))}")
        return metrics

    def _rank_weight_spread(self):
        """Largest difference of any weight across ranks (0.0 when data-parallel ranks agree)."""
        if self.world == 1:
            return 0.0
        flat = torch.cat([p.detach().reshape(-1) for p in self.model.parameters()])
        high, low = flat.clone(), flat.clone()
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        return float((high - low).abs().max())

    def _agree(self, *flags):
        """Stop decisions taken by any rank apply to all (time and signals differ per process)."""
        if self.world == 1:
            return flags
        tensor = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in tensor.tolist())

    def _mean_over_ranks(self, value):
        """The loss of the whole global batch (each rank holds its slice's mean)."""
        value = torch.as_tensor(float(value), dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(value)
            value /= self.world
        return float(value)

    def _barrier(self):
        if self.world > 1:
            dist.barrier()

    # -- the loop ------------------------------------------------------------------------
    def fit(self):
        """Train to max_epochs / max_steps / time budget. Returns the last validation metrics."""
        t = self.t
        stop = _StopFlag()
        start_time = time.time()
        metrics, bar = {}, None
        if self.is_main and t["progress"]:
            bar = tqdm(total=self.total_steps, initial=self.step, desc="train", dynamic_ncols=True,
                       mininterval=0.5 if sys.stderr.isatty() else 10.0)
        self.model.train()
        done = self.step >= self.total_steps or self.epoch >= t["max_epochs"]
        last_log_time, last_log_step = time.time(), self.step
        while not done:
            self.sampler.set_epoch(self.epoch, skip_batches=self.batch_in_epoch)
            for batch in self.loader:
                batch = to_device(batch, self.device)
                loss_value, logs = self.task.training_step(self.model, batch, self.optim, self.step)
                check_finite(loss_value, self.step)
                self.step += 1
                self.batch_in_epoch += 1

                if self.step % t["log_every"] == 0:
                    loss_value = self._mean_over_ranks(loss_value)
                    if self.is_main:
                        now = time.time()
                        speed = (self.step - last_log_step) / max(now - last_log_time, 1e-9)
                        last_log_time, last_log_step = now, self.step
                        self.writer.add_scalar("train/loss", loss_value, self.step)
                        for name in self.optim.names:
                            self.writer.add_scalar("train/lr" if name == "main" else f"train/lr_{name}",
                                                   self.optim.lr(name), self.step)
                        self.writer.add_scalar("train/steps_per_s", speed, self.step)
                        for key, value in logs.items():
                            self.writer.add_scalar(f"train/{key}", float(value), self.step)
                        if bar is not None:
                            bar.set_postfix(loss=f"{loss_value:.4f}", epoch=self.epoch, refresh=False)
                if bar is not None:
                    bar.update(1)

                epoch_end = self.batch_in_epoch == self.steps_per_epoch
                if epoch_end:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                if (t["val_every"] and self.step % t["val_every"] == 0) or (epoch_end and not t["val_every"]):
                    metrics = self.validate() or metrics
                    self._barrier()
                if epoch_end:
                    keep = t["save_epoch_every"] and self.epoch % t["save_epoch_every"] == 0
                    self.save("latest.pt", *([f"epoch_{self.epoch}.pt"] if keep else []))
                elif self.step % t["ckpt_every"] == 0:
                    self.save("latest.pt")

                elapsed = time.time() - start_time
                over_budget = bool(t["time_budget_s"] and elapsed > t["time_budget_s"])
                exit_now = stop.raised or bool(t["exit_after_s"] and elapsed > t["exit_after_s"])
                over_budget, exit_now = self._agree(over_budget, exit_now)
                if self.step >= self.total_steps or self.epoch >= t["max_epochs"] or over_budget:
                    done = True
                    break
                if exit_now:
                    self.save("latest.pt")
                    if self.is_main:
                        open(os.path.join(self.exp_dir, REQUEUE_MARKER), "w").close()
                    if bar is not None:
                        bar.close()
                    self._finish()
                    raise SystemExit(EXIT_REQUEUE)
                if epoch_end:
                    break  # next epoch: new permutation
        if bar is not None:
            bar.close()
        if not metrics or self.batch_in_epoch:
            metrics = self.validate() or metrics
        self.rank_weight_spread = self._rank_weight_spread()
        self.save("latest.pt")
        self._finish()
        return metrics

    def _finish(self):
        if self.writer is not None:
            self.writer.close()
        self._barrier()


def train(cfg, exp_dir):
    return Trainer(cfg, exp_dir).fit()
