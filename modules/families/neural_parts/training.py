"""The Neural Parts training task (registered in modules/families/neural_parts/__init__.py).

Automatic optimisation through the engine: the loss is the original's weighted sum of the five terms
(`modules.losses.neural_parts.neural_parts_loss`); the original's optimiser settings (RAdam, lr 5e-5,
batch 1 with gradient accumulation 2, clip_grad_norm 1) live in configs/neural_parts/*.yaml.
"""
import torch

from modules.engine.task import Task
from modules.families.neural_parts.evaluation import weighted_iou
from modules.losses.neural_parts import neural_parts_loss
from modules.utils import ShapeLabError


class NeuralPartsTask(Task):
    """Batches of NeuralPartsDataset: image (B,3,H,W), points (B,N,3), occ (B,N), weights (B,N),
    surface_points (B,N2,3), surface_normals (B,N2,3)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.weights = {k: float(v) for k, v in cfg["weights"].items()}
        if not any(self.weights.values()):
            raise ShapeLabError("task.weights: every loss weight is 0; switch at least one term on")

    def forward(self, model, batch):
        w = self.weights
        need_volume = bool(w["occupancy"] or w["coverage"] or w["overlap"])
        return model(batch["image"], queries=batch["points"] if need_volume else None,
                     surface_points=batch["surface_points"] if w["normal_consistency"] else None)

    def loss(self, model, batch):
        pred = self.forward(model, batch)
        total, terms = neural_parts_loss(pred, batch, weights=self.weights, sharpness=self.cfg["sharpness"],
                                         min_n_points=self.cfg["min_n_points"],
                                         max_shared_points=self.cfg["max_shared_points"])
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def validate(self, model, batch):
        """Loss (the normal term needs autograd, so grad is on here) and the original's weighted IoU."""
        with torch.enable_grad():
            pred = self.forward(model, batch)
            total, terms = neural_parts_loss(pred, batch, weights=self.weights, sharpness=self.cfg["sharpness"],
                                             min_n_points=self.cfg["min_n_points"],
                                             max_shared_points=self.cfg["max_shared_points"])
        with torch.no_grad():
            phi = model.phi(batch["points"], pred["features"].detach())
            iou = weighted_iou(phi, batch["occ"], batch.get("weights")).mean()
        return {"loss": float(total.detach()), "iou": float(iou), **{k: float(v.detach()) for k, v in terms.items()}}
