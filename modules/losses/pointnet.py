"""PointNet training tasks: part segmentation (cross-entropy; instance/class mIoU by the
ShapeNet-Part rule) and classification (NLL + 0.001 * feature-transform regulariser).

ShapeNet-Part IoU rule (PointNet/PVCNN evaluation): predictions are the argmax over the parts of
the shape's own category; a shape's IoU is the mean over its category's parts of
|pred ∩ gt| / |pred ∪ gt|, counting a part absent from both as IoU 1. Instance mIoU averages
shapes, class mIoU averages the per-category means.
"""
import numpy as np
import torch
import torch.nn.functional as F

from modules.data import categories as cats
from modules.engine.task import Task
from modules.models.pointnet import feature_transform_regularizer
from modules.registry import TASKS

_PARTS_OF_INDEX = [cats.part_ids(name) for name in cats.CATEGORIES]


def category_part_mask(category_index, num_classes=cats.NUM_PART_CLASSES, device=None):
    """(B,) category indices -> (B, num_classes) bool, True for the category's own parts."""
    mask = torch.zeros(len(category_index), num_classes, dtype=torch.bool, device=device)
    for row, c in enumerate(category_index.tolist()):
        mask[row, _PARTS_OF_INDEX[c]] = True
    return mask


def predict_parts(scores, category_index):
    """(B,K,N) scores -> (B,N) part ids, argmax restricted to each shape's category parts."""
    allowed = category_part_mask(category_index, scores.shape[1], scores.device)
    return scores.masked_fill(~allowed[:, :, None], float("-inf")).argmax(dim=1)


def shape_part_ious(pred, labels, category_index):
    """(B,N) predicted and true global part ids, (B,) categories -> (B,) ShapeNet-Part shape IoUs."""
    out = []
    for p, g, c in zip(pred, labels, category_index.tolist()):
        ious = []
        for part in _PARTS_OF_INDEX[c]:
            inter = ((p == part) & (g == part)).sum().item()
            union = ((p == part) | (g == part)).sum().item()
            ious.append(1.0 if union == 0 else inter / union)
        out.append(float(np.mean(ious)))
    return torch.tensor(out)


def summarize_ious(shape_ious, category_index):
    """Per-shape IoUs + categories -> (instance mIoU, class mIoU, {category: mIoU})."""
    shape_ious = np.asarray(shape_ious, dtype=np.float64)
    category_index = np.asarray(category_index)
    per_class = {cats.CATEGORIES[c]: float(shape_ious[category_index == c].mean()) for c in np.unique(category_index)}
    return float(shape_ious.mean()), float(np.mean(list(per_class.values()))), per_class


class PartSegmentationTask(Task):
    def loss(self, model, batch):
        scores = model(batch["inputs"])
        loss = F.cross_entropy(scores, batch["labels"])
        return loss, {}

    def validate(self, model, batch):
        """loss, point accuracy and instance mIoU of the batch (the engine averages over shapes, so
        val/instance_miou is exact; class mIoU needs all shapes: `evaluate_segmentation`)."""
        scores = model(batch["inputs"])
        pred = predict_parts(scores, batch["category"])
        ious = shape_part_ious(pred, batch["labels"], batch["category"])
        return {"loss": float(F.cross_entropy(scores, batch["labels"])),
                "accuracy": float((pred == batch["labels"]).float().mean()),
                "instance_miou": float(ious.mean())}


class ClassificationTask(Task):
    def loss(self, model, batch):
        logits = model(batch["points"])
        nll = F.nll_loss(F.log_softmax(logits, dim=1), batch["label"])
        reg = feature_transform_regularizer(model.trans_feat).to(nll.device)
        return nll + self.cfg["feature_transform_weight"] * reg, {"nll": float(nll), "ft_reg": float(reg)}

    def validate(self, model, batch):
        logits = model(batch["points"])
        return {"loss": float(F.nll_loss(F.log_softmax(logits, dim=1), batch["label"])),
                "accuracy": float((logits.argmax(dim=1) == batch["label"]).float().mean())}


@TASKS.register("part_segmentation", defaults={})
def build_part_segmentation(cfg):
    return PartSegmentationTask(cfg)


@TASKS.register("classification", defaults={"feature_transform_weight": 0.001})
def build_classification(cfg):
    return ClassificationTask(cfg)


@torch.no_grad()
def evaluate_segmentation(model, dataset, batch_size=16, device="cpu"):
    """Whole-split metrics: instance mIoU, class mIoU, per-category mIoU, point accuracy."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    ious, categories, correct, total = [], [], 0, 0
    for batch in loader:
        scores = model(batch["inputs"].to(device)).cpu()
        pred = predict_parts(scores, batch["category"])
        ious += shape_part_ious(pred, batch["labels"], batch["category"]).tolist()
        categories += batch["category"].tolist()
        correct += int((pred == batch["labels"]).sum())
        total += batch["labels"].numel()
    inst, cls, per_class = summarize_ious(ious, categories)
    return {"instance_miou": inst, "class_miou": cls, "accuracy": correct / total, "per_category": per_class,
            "num_shapes": len(ious)}


@torch.no_grad()
def evaluate_classification(model, dataset, class_names, batch_size=32, device="cpu"):
    """Whole-split metrics: overall accuracy, mean per-class accuracy, per-class accuracy (by true class)."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    preds, labels = [], []
    for batch in loader:
        preds += model(batch["points"].to(device)).argmax(dim=1).cpu().tolist()
        labels += batch["label"].tolist()
    preds, labels = np.array(preds), np.array(labels)
    per_class = {class_names[c]: float((preds[labels == c] == c).mean()) for c in np.unique(labels)}
    return {"accuracy": float((preds == labels).mean()), "mean_class_accuracy": float(np.mean(list(per_class.values()))),
            "per_class": per_class, "num_shapes": len(labels)}
