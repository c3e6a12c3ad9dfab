"""Whole-split evaluation of the PointNet segmenter and classifier (benchmarks/pointnet_eval.py)."""
import numpy as np
import torch

from modules.data import categories as cats
from modules.families.pointnet.training import predict_parts
from modules.metrics import classification_accuracy, part_miou


@torch.no_grad()
def evaluate_segmentation(model, dataset, batch_size=16, device="cpu"):
    """Whole-split metrics: instance mIoU, class mIoU, per-category mIoU, point accuracy."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    preds, labels, names, correct, total = [], [], [], 0, 0
    for batch in loader:
        scores = model(batch["inputs"].to(device)).cpu()
        pred = predict_parts(scores, batch["category"])
        preds += list(pred.numpy())
        labels += list(batch["labels"].numpy())
        names += [cats.CATEGORIES[c] for c in batch["category"].tolist()]
        correct += int((pred == batch["labels"]).sum())
        total += batch["labels"].numel()
    miou = part_miou(preds, labels, names, cats.part_ids)
    return {"instance_miou": miou["instance mIoU"], "class_miou": miou["class mIoU"], "accuracy": correct / total,
            "per_category": miou["per_class"], "num_shapes": len(preds)}


@torch.no_grad()
def evaluate_classification(model, dataset, class_names, batch_size=32, device="cpu"):
    """Whole-split metrics: overall accuracy, mean per-class accuracy, per-class accuracy (by true class)."""
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    preds, labels = [], []
    for batch in loader:
        preds += model(batch["points"].to(device)).argmax(dim=1).cpu().tolist()
        labels += batch["label"].tolist()
    acc = classification_accuracy(np.array(preds), np.array(labels))
    return {"accuracy": acc["accuracy"], "mean_class_accuracy": acc["mean class accuracy"],
            "per_class": {class_names[c]: v for c, v in acc["per_class"].items()}, "num_shapes": len(labels)}
