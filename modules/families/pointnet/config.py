"""Config defaults of the PointNet family (also the schema the config loader checks keys against)."""
from modules.data import categories as cats

SEG_MODEL = {"num_classes": cats.NUM_PART_CLASSES, "num_shapes": cats.NUM_SHAPES, "width_multiplier": 1.0,
             "pretrained": ""}        # PVCNN layout; pretrained: a weights file to start from ('' none)
CLS_MODEL = {"num_classes": cats.NUM_SHAPES, "feature_transform": True, "width_multiplier": 1.0, "dropout": 0.3}
SHAPENET_PART_DATA = {
    "root": "data/synth/shapenet_part",
    "task": "seg",                  # seg | cls
    "num_points": 2048,
    "categories": [],               # [] = all 16; e.g. [airplane, car, chair, lamp, table]
    "rotate": False,                # random rotation about the canonical up axis y (training split only)
    "jitter_sigma": 0.0,            # Gaussian jitter (training split only); the seed used 0.02
    "jitter_clip": 0.05,
    "train_split": "train",
    "val_split": "val",
    "test_split": "test",
    "up": None,                     # axes of the files when not ShapeNet-Part's (null: y up, front +x);
    "front": None,                  # e.g. up: z, front: -y for z-up clouds. Samples are always canonical.
}
CLS_TASK = {"feature_transform_weight": 0.001}

# ranges and choices of the keys above (modules.config spec syntax)
SEG_MODEL_SCHEMA = {"num_classes": "int >= 2", "num_shapes": "int >= 1", "width_multiplier": "float > 0"}
CLS_MODEL_SCHEMA = {"num_classes": "int >= 2", "width_multiplier": "float > 0", "dropout": "float in [0, 1)"}
SHAPENET_PART_DATA_SCHEMA = {"task": "seg | cls", "num_points": "int >= 1", "jitter_sigma": "float >= 0",
                             "jitter_clip": "float >= 0", "up": "null | x | y | z | -x | -y | -z",
                             "front": "null | x | y | z | -x | -y | -z"}
CLS_TASK_SCHEMA = {"feature_transform_weight": "float >= 0"}
