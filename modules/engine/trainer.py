"""The one training loop for every model family.

experiments/NAME/
  config.yaml          resolved config (every key, defaults filled in)
  checkpoints/         latest.pt (resumable: model, every optimizer and scheduler, epoch, RNG), best.pt, epoch_N.pt
  summary/             TensorBoard event files
  LOCK                 while a run is live: its pid and host (a second run on the folder is refused)
  REQUEUE              after a stop for a time limit or a signal (SIGUSR1/SIGTERM): resume from latest.pt
Resume is automatic when checkpoints/latest.pt exists; a changed config is refused unless
`resume_config` says which one wins. Everything that can be checked (config, data, model, checkpoint,
output folders, the lock, the validation metric) is checked before the first file is written. The task
runs each iteration (`Task.training_step`: automatic loss -> backward -> step by default, or its own
loop over several named optimizers). Under torchrun (WORLD_SIZE > 1, gloo on CPU, NCCL on GPU) every rank
takes its slice of each global batch and gradients are averaged over ranks when an optimizer steps (what
DistributedDataParallel does, for any loop); rank 0 alone logs, validates and saves.
"""
import glob
import os
import signal
import socket
import sys
import time

import torch
import torch.distributed as dist
import yaml
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from modules.config import config_differences, save_config
from modules.engine.checkpoint import load_checkpoint, load_model_weights, rng_state, save_checkpoint, set_rng_state
from modules.engine.loading import make_loader, to_device
from modules.engine.optimizers import Optimizers
from modules.engine.sample_rng import per_sample_dropout
from modules.engine.task import check_finite
from modules.models.layers import count_parameters
from modules.registry import DATASETS, MODELS, TASKS
from modules.utils import EXIT_INTERRUPTED, EXIT_USAGE, ShapeLabError, check_output_dir, get_device, seed_everything

EXIT_REQUEUE = 3  # exit code asking a cluster wrapper to resubmit from the last checkpoint
REQUEUE_MARKER = "REQUEUE"  # written next to config.yaml too, since torchrun turns exit codes into 1
LOCK_NAME = "LOCK"
# Keys a resumed run may change without being a different experiment (how long and how it runs).
RUN_CONTROL_KEYS = frozenset({
    "experiment.device", "training.max_epochs", "training.max_steps", "training.time_budget_s",
    "training.exit_after_s", "training.progress", "training.num_workers", "training.log_every",
    "training.val_every", "training.ckpt_every", "training.save_epoch_every", "training.val_batch_size",
    "data.cache"})
RESUME_CONFIG_CHOICES = ("new", "stored")


class _Signals:
    """SIGUSR1/SIGTERM (cluster time limit): checkpoint, REQUEUE, exit 3. SIGINT (Ctrl-C): checkpoint and
    exit 130 after the current step; a second Ctrl-C stops at once. The previous handlers come back at close()."""

    def __init__(self):
        self.received = None
        self.previous = {}
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            raise KeyboardInterrupt
        if signum == signal.SIGINT:
            print("\nCtrl-C: finishing this step and saving checkpoints/latest.pt (Ctrl-C again to stop at once)",
                  file=sys.stderr, flush=True)
        self.received = signum

    def close(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def _dist_info():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local_rank


def build_components(cfg, device):
    """Model, task and datasets from the registries; raises ShapeLabError before anything is written."""
    for section in ("model", "data", "task"):
        if not (cfg.get(section) or {}).get("name"):
            raise ShapeLabError(f"config key '{section}.name' is required to train (known: "
                                f"{', '.join({'model': MODELS, 'data': DATASETS, 'task': TASKS}[section].names())})")
    model = MODELS.build(cfg["model"]).to(device)
    task = TASKS.build(cfg["task"])
    train_set = DATASETS.build(cfg["data"], "train")
    val_set = DATASETS.build(cfg["data"], "val")
    return model, task, train_set, val_set


# ----------------------------------------------------------------------------- the experiment folder

def check_experiment_dir(exp_dir):
    """Every path a run writes can be written: raises ShapeLabError naming the first one that cannot."""
    check_output_dir(exp_dir, "experiment folder")
    for name, is_dir in (("checkpoints", True), ("summary", True), ("config.yaml", False),
                         (REQUEUE_MARKER, False), (LOCK_NAME, False)):
        path = os.path.join(exp_dir, name)
        if os.path.lexists(path) and os.path.isdir(path) != is_dir:
            raise ShapeLabError(f"{path}: is a {'file' if is_dir else 'folder'}, expected a "
                                f"{'folder' if is_dir else 'file'} (move it away)")
        if is_dir and os.path.isdir(path):
            check_output_dir(path, "experiment folder")


def _lock_owner_alive(info):
    """True when the process named in a LOCK may still be running (it can only be checked on its host)."""
    pid, host = info.get("pid"), info.get("host")
    if not isinstance(pid, int):
        return False
    if host != socket.gethostname():
        job = os.environ.get("SLURM_JOB_ID")
        return not (job and str(info.get("slurm_job")) == job)   # a requeued job takes over its own lock
    if pid == os.getpid():
        return False                          # an earlier run in this process that did not finish
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(exp_dir):
    """Create exp_dir/LOCK (pid, host); refuse when a live run holds it; take over a stale one."""
    path = os.path.join(exp_dir, LOCK_NAME)
    if os.path.exists(path):
        try:
            with open(path) as f:
                info = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError):
            info = {}
        info = info if isinstance(info, dict) else {}
        if _lock_owner_alive(info):
            raise ShapeLabError(f"{exp_dir} is in use by another run (pid {info.get('pid')} on {info.get('host')}, "
                                f"started {info.get('started', '?')}); wait for it, choose another -exp_name, or "
                                f"delete {path} if that run is gone")
        print(f"taking over the stale lock of pid {info.get('pid')} on {info.get('host')} (no longer running)")
        os.remove(path)
    os.makedirs(exp_dir, exist_ok=True)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "slurm_job": os.environ.get("SLURM_JOB_ID")}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise ShapeLabError(f"{exp_dir}: another run took the lock {path} at the same moment") from None
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(info, f)
    return path


def release_lock(path):
    if not path or not os.path.exists(path):
        return
    try:
        with open(path) as f:
            info = yaml.safe_load(f) or {}
        if isinstance(info, dict) and info.get("pid") == os.getpid():
            os.remove(path)
    except (OSError, yaml.YAMLError):
        pass


def remove_stale_temporaries(exp_dir):
    """`.tmp-*` files left by a kill during an atomic write (checkpoint, config) -> removed; returns them."""
    stale = glob.glob(os.path.join(exp_dir, ".tmp-*")) + glob.glob(os.path.join(exp_dir, "checkpoints", ".tmp-*"))
    for path in stale:
        os.remove(path)
    return stale


def resolve_resume_config(cfg, stored, latest, resume_config=None):
    """The config a resumed run uses. A stored config that differs from `cfg` outside RUN_CONTROL_KEYS is an
    error unless resume_config is 'new' (cfg wins) or 'stored' (the checkpoint's wins, run-control keys
    from cfg). -> (config, [(key, stored, new)] differences)."""
    if resume_config not in (None,) + RESUME_CONFIG_CHOICES:
        raise ShapeLabError(f"--resume_config {resume_config}: expected new or stored")
    if not isinstance(stored, dict):
        return cfg, []
    diffs = config_differences(stored, cfg, ignore=RUN_CONTROL_KEYS)
    if not diffs:
        return cfg, []
    if resume_config is None:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diffs[:8]) + ("; ..." if len(diffs) > 8 else "")
        raise ShapeLabError(f"{latest} was trained with a different config ({listed}); add --resume_config new "
                            f"to continue with the new values, --resume_config stored to keep the stored ones, "
                            f"or use another -exp_name")
    if resume_config == "new":
        return cfg, diffs
    merged = {section: (dict(value) if isinstance(value, dict) else value) for section, value in stored.items()}
    for key in RUN_CONTROL_KEYS:
        section, name = key.split(".", 1)
        if name in (cfg.get(section) or {}):
            merged.setdefault(section, {})[name] = cfg[section][name]
    return merged, diffs


class Trainer:
    def __init__(self, cfg, exp_dir, resume_config=None):
        self.exp_dir = exp_dir
        self.world, self.rank, local_rank = _dist_info()
        self.is_main = self.rank == 0
        self.lock = None
        self.writer = None
        device = get_device(cfg["experiment"]["device"])
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        self.device = device
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

        if self.is_main:   # before the slow part, so a run stopped during it has said what it was doing
            print(f"{exp_dir}: building {cfg['model']['name']} and loading "
                  f"{cfg['data'].get('root', cfg['data'].get('name'))} on {device} ...", flush=True)
        # 1. everything that reads and checks; nothing is written (every rank)
        error, resume_state = None, None
        try:
            check_experiment_dir(exp_dir)
            latest = os.path.join(exp_dir, "checkpoints", "latest.pt")
            if os.path.exists(latest):
                resume_state = load_checkpoint(latest, cfg["model"]["name"])
                cfg, self.config_changes = resolve_resume_config(cfg, resume_state.get("config"), latest,
                                                                 resume_config)
            self._setup(cfg, resume_state)
        except ShapeLabError as err:
            error = err
        self._agree_on_error(error)
        # 2. the lock (rank 0), then the first writes
        error = None
        if self.is_main:
            try:
                self.lock = acquire_lock(exp_dir)
            except ShapeLabError as err:
                error = err
        self._agree_on_error(error)
        if self.world > 1:      # every rank starts from rank 0's weights
            for tensor in self.model.state_dict().values():
                dist.broadcast(tensor, 0)
        if self.is_main:
            stale = remove_stale_temporaries(exp_dir)
            if stale:
                print(f"removed {len(stale)} unfinished temporary file(s) left by an interrupted save: "
                      f"{', '.join(os.path.basename(p) for p in stale)}")
            os.makedirs(self.ckpt_dir, exist_ok=True)
            marker = os.path.join(exp_dir, REQUEUE_MARKER)
            if os.path.exists(marker):
                os.remove(marker)
            save_config(self.cfg, os.path.join(exp_dir, "config.yaml"))
            # purge_step: TensorBoard drops what a killed run logged after this checkpoint, so every step
            # appears once however often the run is resumed
            self.writer = SummaryWriter(os.path.join(exp_dir, "summary"),
                                        purge_step=self.step + 1 if self.resumed else None)
            n_val = len(self.val_set) if self.val_set is not None else 0
            print(f"training {self.cfg['model']['name']} ({count_parameters(self.model):,} parameters) on "
                  f"{self.cfg['data'].get('root', self.cfg['data']['name'])} ({len(self.loader.dataset)} train / "
                  f"{n_val} val items), device {self.device}, {self.world} rank(s) -> {exp_dir}", flush=True)
            if self.resumed:
                changes = getattr(self, "config_changes", [])
                print(f"resuming from step {self.step} (epoch {self.epoch}, batch {self.batch_in_epoch} of "
                      f"{self.steps_per_epoch}) of {latest}"
                      + (f"; config changes kept: {', '.join(k for k, _, _ in changes)}" if changes else ""),
                      flush=True)

    def _setup(self, cfg, resume_state):
        self.cfg = cfg
        self.t = t = cfg["training"]
        self.seed = cfg["experiment"]["seed"]
        self.deterministic = cfg["experiment"]["deterministic"]
        if self.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        seed_everything(self.seed)

        self.model, self.task, train_set, self.val_set = build_components(cfg, self.device)
        # what the model saw, so generate.py can say when it is asked about categories it never saw
        self.train_categories = train_set.categories_present() if hasattr(train_set, "categories_present") else None
        self.ckpt_dir = os.path.join(self.exp_dir, "checkpoints")
        if resume_state is not None:
            load_model_weights(self.model, resume_state["model"], os.path.join(self.ckpt_dir, "latest.pt"))

        self.loader, self.sampler = make_loader(train_set, t["batch_size"], self.seed, self.rank, self.world,
                                                num_workers=t["num_workers"],
                                                seed_samples=self.deterministic or self.world > 1)
        self.steps_per_epoch = len(self.sampler)
        self.total_steps = t["max_steps"] or t["max_epochs"] * self.steps_per_epoch
        self.optim = Optimizers(self.task.parameter_groups(self.model), t, cfg["task"].get("optimizers"),
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
        if self.is_main:
            self._check_best_metric()

    def _check_best_metric(self):
        """One validation batch before anything is written, so a training.best_metric the task does not
        report is an error now rather than after the first epoch (RNG and train mode are restored)."""
        if self.val_set is None or len(self.val_set) == 0:
            return
        state = rng_state()
        bs = min(self.t["val_batch_size"] or self.t["batch_size"], len(self.val_set))
        loader, _ = make_loader(self.val_set, bs, self.seed + 1, shuffle=False, drop_last=False)
        try:
            batch = to_device(next(iter(loader)), self.device)
            self.model.eval()
            with torch.no_grad():
                out = self.task.validate(self.model, batch)
            records = out.pop("records", [])
            names = set(out) | (set(self.task.summarize(records)) if records else set())
        finally:
            self.model.train()
            set_rng_state(state)
        key = self.t["best_metric"]
        if key not in {f"val/{k}" for k in names}:
            raise ShapeLabError(f"training.best_metric '{key}' is not among the validation metrics of task "
                                f"'{self.cfg['task']['name']}': {', '.join(sorted('val/' + k for k in names))}")

    def _agree_on_error(self, error):
        """A ShapeLabError on any rank stops every rank (the failing one prints it; the others exit 2 quietly)."""
        if self.world > 1:
            flag = torch.tensor([1.0 if error is not None else 0.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if error is None and flag.item() > 0:
                self._release()
                raise SystemExit(EXIT_USAGE)
        if error is not None:
            self._release()
            raise error

    # -- checkpoints ---------------------------------------------------------------------
    def state(self):
        return {"model": self.model.state_dict(), **self.optim.state_dict(self.model),
                "epoch": self.epoch, "step": self.step,
                "batch_in_epoch": self.batch_in_epoch, "best_metric": self.best, "rng": rng_state(),
                "model_name": self.cfg["model"]["name"], "config": self.cfg,
                "world_size": self.world, "rank_weight_spread": getattr(self, "rank_weight_spread", None),
                "train_categories": self.train_categories}

    def save(self, *names):
        if not self.is_main:
            return
        state = self.state()
        for name in names:
            save_checkpoint(os.path.join(self.ckpt_dir, name), state)

    # -- validation ----------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, log=True):
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
        self._validated_at = self.step
        if log and self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, self.step)
            if first is not None:
                self.task.log_visuals(self.writer, model, first, self.step)
        model.train()
        key = self.t["best_metric"]
        if key in metrics:
            value = metrics[key]
            better = self.best is None or (value < self.best if self.t["best_mode"] == "min" else value > self.best)
            if better and log:
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
        return tuple(v for v in tensor.tolist())

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

    def _progress_bar(self):
        """Steps, or seconds when a time budget applies (then the step count is in the postfix)."""
        if not (self.is_main and self.t["progress"]):
            return None
        interval = 0.5 if sys.stderr.isatty() else 10.0
        budget = self.t["time_budget_s"]
        if budget:
            return tqdm(total=float(budget), desc=f"train (time budget {budget:g} s)", dynamic_ncols=True,
                        mininterval=interval, unit="s",
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s{postfix}")
        return tqdm(total=self.total_steps, initial=self.step, desc="train", dynamic_ncols=True, mininterval=interval)

    # -- the loop ------------------------------------------------------------------------
    def fit(self):
        """Train to max_epochs / max_steps / time budget. Returns the last validation metrics."""
        signals = _Signals()
        try:
            return self._fit(signals)
        finally:
            signals.close()
            self._release()

    def _fit(self, signals):
        t = self.t
        start_time, start_step = time.time(), self.step
        metrics, bar = {}, self._progress_bar()
        budget_bar = bool(bar is not None and t["time_budget_s"])
        self.model.train()
        done = self.step >= self.total_steps or self.epoch >= t["max_epochs"]
        if done and self.is_main:
            print(f"nothing to do: {os.path.join(self.ckpt_dir, 'latest.pt')} is at step {self.step} (epoch "
                  f"{self.epoch}), the end set by training.max_steps / max_epochs; raise them to train on")
        stop_reason = "max_steps" if self.step >= self.total_steps else "max_epochs"
        last_log_time, last_log_step = time.time(), self.step
        while not done:
            self.sampler.set_epoch(self.epoch, skip_batches=self.batch_in_epoch)
            for batch in self.loader:
                batch = to_device(batch, self.device)
                if self.deterministic:   # dropout masks per sample: the same for any split of the batch
                    seeds = [s for _, s in self.sampler.local_batch(self.batch_in_epoch)]
                    with per_sample_dropout(self.model, seeds):
                        loss_value, logs = self.task.training_step(self.model, batch, self.optim, self.step)
                else:
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
                            post = {"loss": f"{loss_value:.4f}",   # epochs done, fractional: 5.0 = the end of the 5th epoch
                                    "epoch": f"{self.epoch + self.batch_in_epoch / self.steps_per_epoch:.1f}"}
                            if budget_bar:   # the budget is the bar; a step limit only when one is set
                                post["step"] = f"{self.step}/{t['max_steps']}" if t["max_steps"] else self.step
                            bar.set_postfix(post, refresh=False)
                if bar is not None:
                    if budget_bar:
                        bar.update(min(time.time() - start_time, t["time_budget_s"]) - bar.n)
                    else:
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
                exit_after = bool(t["exit_after_s"] and elapsed > t["exit_after_s"])
                received = signals.received or 0
                over_budget, exit_after, received = self._agree(over_budget, exit_after, received)
                received = int(received)
                if self.step >= self.total_steps or self.epoch >= t["max_epochs"] or over_budget:
                    stop_reason = ("time_budget_s" if over_budget else
                                   "max_steps" if self.step >= self.total_steps else "max_epochs")
                    done = True
                    break
                if exit_after or received:
                    if bar is not None:
                        bar.close()
                    self._stop_and_exit(received, exit_after)
                if epoch_end:
                    break  # next epoch: new permutation
        if bar is not None:
            bar.close()
        if getattr(self, "_validated_at", None) != self.step:
            # a resumed run that had nothing to do validates without logging: that step is logged already
            metrics = self.validate(log=self.step != start_step or not self.resumed) or metrics
        self.rank_weight_spread = self._rank_weight_spread()
        self.save("latest.pt")
        if self.is_main:
            limit = {"time_budget_s": f"the time budget (training.time_budget_s={t['time_budget_s']:g} s)"
                     if t["time_budget_s"] else "",
                     "max_steps": f"training.max_steps={t['max_steps']}" if t["max_steps"] else
                     f"max_epochs x steps per epoch = {self.total_steps}",
                     "max_epochs": f"training.max_epochs={t['max_epochs']}"}[stop_reason]
            print(f"stopped at step {self.step} (epoch {self.epoch}) by {limit}; "
                  f"checkpoints in {self.ckpt_dir}", flush=True)
        self._finish()
        return metrics

    def _stop_and_exit(self, received, exit_after):
        """Checkpoint, then exit: 130 for Ctrl-C, 3 (+ REQUEUE marker) for a time limit or SIGUSR1/SIGTERM."""
        self.save("latest.pt")
        latest = os.path.join(self.ckpt_dir, "latest.pt")
        if received == signal.SIGINT:
            if self.is_main:
                print(f"interrupted at step {self.step} (epoch {self.epoch}): saved {latest}; rerun the same "
                      f"command to resume", file=sys.stderr, flush=True)
            self._finish()
            raise SystemExit(EXIT_INTERRUPTED)
        if self.is_main:
            open(os.path.join(self.exp_dir, REQUEUE_MARKER), "w").close()
            why = signal.Signals(received).name if received else \
                f"training.exit_after_s={self.t['exit_after_s']:g} s"
            print(f"stopped by {why} at step {self.step} (epoch {self.epoch}): saved {latest} and "
                  f"{REQUEUE_MARKER}; exit code {EXIT_REQUEUE} (rerun the same command to resume)",
                  file=sys.stderr, flush=True)
        self._finish()
        raise SystemExit(EXIT_REQUEUE)

    def _release(self):
        release_lock(self.lock)
        self.lock = None

    def _finish(self):
        if self.writer is not None:
            self.writer.close()
        self._barrier()
        self._release()


def train(cfg, exp_dir, resume_config=None):
    return Trainer(cfg, exp_dir, resume_config).fit()
