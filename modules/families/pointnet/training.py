"""PointNet training tasks (registered in modules/families/pointnet/__init__.py): part segmentation (cross-entropy; instance/class mIoU by the
ShapeNet-Part rule) and classification (NLL + 0.001 * feature-transform regulariser).

ShapeNet-Part IoU rule (PointNet/PVCNN evaluation): predictions are the argmax over the parts of
the shape's own category; a shape's IoU is the mean over its category's parts of
|pred ∩ gt| / |pred ∪ gt|, counting a part absent from both as IoU 1. Instance mIoU averages
shapes, class mIoU averages the per-category means (`modules.metrics.part_miou`).
"""
import numpy as np
import torch
import torch.nn.functional as F

from modules.data import categories as cats
from modules.engine.task import Task
from modules.metrics import classification_accuracy, part_miou
from modules.models.pointnet import feature_transform_regularizer

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


def batch_part_miou(pred, labels, category_index):
    """modules.metrics.part_miou of a batch of (B,N) predicted / true part ids and (B,) categories."""
    names = [cats.CATEGORIES[c] for c in category_index.tolist()]
    return part_miou(list(pred.cpu().numpy()), list(labels.cpu().numpy()), names, cats.part_ids)


class PartSegmentationTask(Task):
    def loss(self, model, batch):
        scores = model(batch["inputs"])
        loss = F.cross_entropy(scores, batch["labels"])
        return loss, {}

    def validate(self, model, batch):
        """loss, point accuracy and instance mIoU of the batch (the engine averages over shapes, so
        val/instance_miou is exact); per-shape records for the class mIoU of the whole split."""
        scores = model(batch["inputs"])
        pred = predict_parts(scores, batch["category"])
        miou = batch_part_miou(pred, batch["labels"], batch["category"])
        names = [cats.CATEGORIES[c] for c in batch["category"].tolist()]
        return {"loss": float(F.cross_entropy(scores, batch["labels"])),
                "accuracy": float((pred == batch["labels"]).float().mean()),
                "instance_miou": miou["instance mIoU"],
                "records": list(zip(pred.cpu().numpy(), batch["labels"].cpu().numpy(), names))}

    def summarize(self, records):
        preds, labels, names = zip(*records)
        return {"class_miou": part_miou(list(preds), list(labels), list(names), cats.part_ids)["class mIoU"]}


class ClassificationTask(Task):
    def loss(self, model, batch):
        logits = model(batch["points"])
        nll = F.nll_loss(F.log_softmax(logits, dim=1), batch["label"])
        reg = feature_transform_regularizer(model.trans_feat).to(nll.device)
        return nll + self.cfg["feature_transform_weight"] * reg, {"nll": float(nll.detach()), "ft_reg": float(reg.detach())}

    def validate(self, model, batch):
        logits = model(batch["points"])
        pred = logits.argmax(dim=1)
        return {"loss": float(F.nll_loss(F.log_softmax(logits, dim=1), batch["label"])),
                "accuracy": float((pred == batch["label"]).float().mean()),
                "records": list(zip(pred.cpu().tolist(), batch["label"].cpu().tolist()))}

    def summarize(self, records):
        pred, target = zip(*records)
        return {"mean_class_accuracy": classification_accuracy(np.array(pred), np.array(target))["mean class accuracy"]}
