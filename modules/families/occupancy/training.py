"""The training task of the four occupancy networks (registered in modules/families/occupancy/__init__.py)."""
from modules.engine.task import Task
from modules.losses.occupancy import occupancy_bce
from modules.metrics import occupancy_iou


class OccupancyTask(Task):
    """BCE on occupancy logits (mean over queries and batch), as all four originals.

    Batches: `inputs` (B,N,3) input cloud, `points` (B,Q,3) queries, `occ` (B,Q) 0/1 labels;
    validation batches may add `points_iou`/`occ_iou` (uniform points) for the volumetric IoU.
    """

    def loss(self, model, batch):
        logits = model(batch["inputs"], batch["points"])
        loss = occupancy_bce(logits, batch["occ"])
        return loss, {}

    def validate(self, model, batch):
        encoding = model.encode(batch["inputs"])
        logits = model.decode(batch["points"], encoding)
        out = {"loss": float(occupancy_bce(logits, batch["occ"]))}
        if "points_iou" in batch:
            logits = model.decode(batch["points_iou"], encoding)
            occ = batch["occ_iou"]
        else:
            occ = batch["occ"]
        out["iou"] = float(occupancy_iou(logits > model.logit_threshold, occ > 0.5).mean())
        return out
