"""The Neural Parts family (seed 002): a shape as a union of primitives, each a sphere deformed by one
conditional invertible network, predicted from one image (Paschalidou et al., CVPR 2021).

Registers model `neural_parts` (ResNet-18 with frozen BatchNorm + head -> NeuralParts), dataset
`neural_parts` (renders + surface samples + "equal" volume samples, humans or onet layout), task
`neural_parts` (the original's five weighted losses) and its generator (per-primitive meshes + picture).
"""
from modules.families.neural_parts import config
from modules.families.neural_parts.data import NeuralPartsDataset
from modules.families.neural_parts.generation import NeuralPartsGenerator
from modules.families.neural_parts.training import NeuralPartsTask
from modules.models.image_encoders import ImageEncoder
from modules.models.neural_parts import NeuralParts
from modules.registry import DATASETS, GENERATORS, MODELS, TASKS
from modules.utils import ShapeLabError


def build_neural_parts(cfg):
    """The model section -> NeuralParts with the image encoder of the original."""
    if int(cfg["n_primitives"]) < 1:
        raise ShapeLabError(f"model.n_primitives={cfg['n_primitives']}: expected at least 1 primitive")
    encoder = ImageEncoder(cfg["encoder"], head=list(cfg["encoder_head"]), frozen_bn=cfg["frozen_bn"],
                           weights=cfg["encoder_weights"])
    return NeuralParts(encoder, cfg["n_primitives"], cfg["feature_dim"], cfg["n_blocks"], cfg["hidden_size"],
                       cfg["proj_dims"], cfg["sphere_radius"], cfg["n_points_on_sphere"], cfg["euclidean_phi"],
                       cfg["seed"])


def build_neural_parts_dataset(cfg, split):
    # held-out splits use eval_surface target points (the Chamfer ground truth; 2000 for the re-impl.'s metric)
    n_surface = cfg["n_surface"] if split == "train" else max(cfg["eval_surface"], 2000)
    return NeuralPartsDataset(cfg["root"], cfg["layout"], split, cfg["image_size"], n_surface,
                              cfg["n_volume"], cfg["volume_sampling"], cfg["categories"], cfg["max_items"])


MODELS.register("neural_parts", defaults=config.MODEL, schema=config.MODEL_SCHEMA)(build_neural_parts)
DATASETS.register("neural_parts", defaults=config.DATA, schema=config.DATA_SCHEMA)(build_neural_parts_dataset)
TASKS.register("neural_parts", defaults=config.TASK, schema=config.TASK_SCHEMA)(NeuralPartsTask)
GENERATORS.register("neural_parts")(NeuralPartsGenerator)
