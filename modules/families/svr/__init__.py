"""The single-view reconstruction family (seed 003, CMU 16-889 assignment 2): one image -> voxels, points, mesh,
implicit surface or AtlasNet patches, plus fitting one target (fit_data.py), F1@tau evaluation (eval_model.py)
and image attribution (GradCAM family, Guided Backprop, IG on the image encoder).

Registers models `svr_vox`, `svr_point`, `svr_mesh`, `svr_implicit`, `svr_parametric` (a SingleViewModel:
ResNet-18 encoder + that decoder), dataset `svr` (R2N2 or ONet img_choy2016 layouts), task `svr` (the loss of
the model's decoder type) and its generator.
"""
from modules.families.svr import config
from modules.families.svr.generation import SingleViewGenerator
from modules.families.svr.training import SingleViewTask, build_dataset
from modules.models.svr import (ImplicitDecoder, MeshDecoder, ParametricDecoder, PointDecoder, SingleViewModel,
                                VoxelDecoder)
from modules.registry import DATASETS, GENERATORS, MODELS, TASKS


def build_decoder(decoder_type, cfg):
    """The decoder of one type from its model section (feature_dim 512: ResNet-18/34)."""
    if decoder_type == "vox":
        return VoxelDecoder(resolution=cfg["resolution"], channels=cfg["channels"])
    if decoder_type == "point":
        return PointDecoder(n_points=cfg["n_points"], hidden=cfg["hidden"], bound=cfg["bound"])
    if decoder_type == "mesh":
        return MeshDecoder(level=cfg["level"], radius=cfg["radius"], hidden=cfg["hidden"])
    if decoder_type == "implicit":
        return ImplicitDecoder(hidden_dim=cfg["hidden_dim"], n_blocks=cfg["n_blocks"])
    return ParametricDecoder(n_patches=cfg["n_patches"])


def model_builder(decoder_type):
    def build(cfg):
        model = SingleViewModel(decoder_type, build_decoder(decoder_type, cfg), cfg["encoder_arch"],
                                cfg["encoder_weights"], n_points=cfg.get("n_points"),
                                threshold=cfg.get("threshold", 0.5))
        model.grid_res = cfg.get("grid_res", 10)      # parametric: UV grid of each patch's mesh
        return model
    return build


for _type in config.TYPES:
    MODELS.register(config.MODEL_NAMES[_type], defaults=config.MODELS[_type],
                    schema=config.MODEL_SCHEMAS[_type])(model_builder(_type))
DATASETS.register("svr", defaults=config.DATA, schema=config.DATA_SCHEMA)(build_dataset)
TASKS.register("svr", defaults=config.TASK, schema=config.TASK_SCHEMA)(SingleViewTask)
GENERATORS.register("svr")(SingleViewGenerator)
