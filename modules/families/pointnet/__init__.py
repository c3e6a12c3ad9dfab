"""The PointNet family (seed 000): part segmentation and classification on ShapeNet-Part, gradient
attribution (attribution.py), DeepDream3D (deepdream.py) and geometric neural style transfer (nst.py).

Registers models `pointnet_seg`, `pointnet_cls`, dataset `shapenet_part`, tasks `part_segmentation`,
`classification`.
"""
from modules.data import shapenet_part
from modules.data.pointcloud_datasets import ShapeNetPartDataset
from modules.engine.checkpoint import load_weights
from modules.families.pointnet import config
from modules.families.pointnet.training import ClassificationTask, PartSegmentationTask
from modules.geometry.frames import frame_from_options
from modules.models.pointnet import PointNetCls, PointNetPartSeg
from modules.registry import DATASETS, MODELS, TASKS


def build_pointnet_seg(cfg):
    model = PointNetPartSeg(cfg["num_classes"], cfg["num_shapes"], cfg["width_multiplier"])
    if cfg.get("pretrained"):
        load_weights(model, cfg["pretrained"], "model.pretrained")
    return model


def build_pointnet_cls(cfg):
    return PointNetCls(cfg["num_classes"], cfg["feature_transform"], cfg["width_multiplier"], cfg["dropout"])


def build_shapenet_part(cfg, split):
    split_name = {"train": cfg["train_split"], "val": cfg["val_split"], "test": cfg["test_split"]}.get(split, split)
    return ShapeNetPartDataset(cfg["root"], split_name, task=cfg["task"], num_points=cfg["num_points"],
                               categories=cfg["categories"], rotate=cfg["rotate"], jitter_sigma=cfg["jitter_sigma"],
                               jitter_clip=cfg["jitter_clip"], augment=(split == "train"),
                               frame=frame_from_options(cfg["up"], cfg["front"], shapenet_part.FRAME,
                                                        ("data.up", "data.front")))


MODELS.register("pointnet_seg", defaults=config.SEG_MODEL, schema=config.SEG_MODEL_SCHEMA)(build_pointnet_seg)
MODELS.register("pointnet_cls", defaults=config.CLS_MODEL, schema=config.CLS_MODEL_SCHEMA)(build_pointnet_cls)
DATASETS.register("shapenet_part", defaults=config.SHAPENET_PART_DATA, schema=config.SHAPENET_PART_DATA_SCHEMA)(build_shapenet_part)
TASKS.register("part_segmentation", defaults={})(PartSegmentationTask)
TASKS.register("classification", defaults=config.CLS_TASK, schema=config.CLS_TASK_SCHEMA)(ClassificationTask)
