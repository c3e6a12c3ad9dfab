"""The per-family part of training: how a batch becomes a loss, validation metrics and pictures."""


class Task:
    """Subclass per model family and register a builder in modules.registry.TASKS.

    Batches are whatever the dataset's collate gives (dicts of tensors, already on the device).
    """

    def __init__(self, cfg):
        self.cfg = cfg          # the merged `task` config section

    def loss(self, model, batch):
        """Return (scalar loss tensor, {name: float} extra scalars to log)."""
        raise NotImplementedError

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

        `records` concatenates the lists that validate() returned under the key "records" (one
        entry per sample; that key is not averaged). Returns {metric: float}, logged as val/<metric>.
        """
        return {}

    def log_visuals(self, writer, model, batch, step):
        """Optionally add images/meshes of one validation batch to TensorBoard."""
