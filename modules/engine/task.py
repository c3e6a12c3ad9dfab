"""The per-family part of training: how a batch becomes a loss (or a whole training step), validation
metrics and pictures."""
import torch

from modules.utils import ShapeLabError


class Task:
    """Subclass per model family and register it (or a builder) in modules.registry.TASKS.

    Batches are whatever the dataset's collate gives (dicts of tensors, already on the device).

    Automatic optimisation (the default): implement `loss`; the engine runs loss -> backward -> step of
    one optimizer `main` (with gradient accumulation over `training.accumulate` batches and clipping).
    Manual optimisation: override `parameter_groups` to name several optimizers (settings per name in
    `task.optimizers.<name>`) and `training_step` to run any loop with them (alternating critic and
    generator updates, gradient penalties, ...) through the `optim` helper (modules.engine.optimizers).
    """

    def __init__(self, cfg):
        self.cfg = cfg          # the merged `task` config section

    def loss(self, model, batch):
        """Return (scalar loss tensor, {name: float} extra scalars to log)."""
        raise NotImplementedError

    def parameter_groups(self, model):
        """{optimizer name: parameters}; one optimizer `main` over all parameters by default."""
        return {"main": list(model.parameters())}

    def training_step(self, model, batch, optim, step):
        """One training iteration; returns (loss to log: tensor or float, {name: float}). `step` is the
        number of iterations done before this one (for alternating schedules)."""
        loss, logs = self.loss(model, batch)
        check_finite(loss, step)
        optim.backward(loss)
        optim.step("main")
        return loss.detach(), logs

    @staticmethod
    def batch_size(batch):
        """Number of samples in a batch (for weighting validation means)."""
        for value in batch.values():
            if hasattr(value, "shape"):
                return int(value.shape[0])
        return 1

    def validate(self, model, batch):
        """Return {metric: float} for one validation batch (model in eval mode, no grad).

        The engine averages them over the validation set weighted by batch size and logs them
        as `val/<metric>`; the default is the training loss. An optional "records" list (one entry
        per sample) is collected for summarize() instead.
        """
        loss, _ = self.loss(model, batch)
        return {"loss": float(loss)}

    def summarize(self, records):
        """Metrics that need the whole validation set (class mIoU, per-class accuracy).

        `records` concatenates the lists that validate() returned under the key "records" (one entry
        per sample; that key is not averaged). Returns {metric: float}, logged as val/<metric>.
        """
        return {}

    def log_visuals(self, writer, model, batch, step):
        """Optionally add images/meshes of one validation batch to TensorBoard."""


def check_finite(loss, step):
    value = loss.detach() if torch.is_tensor(loss) else torch.tensor(float(loss))
    if not torch.isfinite(value).all():
        raise ShapeLabError(f"training loss became {float(value)} at step {step}; lower training.lr or set "
                            f"training.grad_clip")
