"""The genren family (seed 004): cycle-consistent generative rendering between unpaired masked RGBA images and
oriented point clouds through a textured, deformed ico-sphere and the soft rasterizer.

Registers model `genren` (CyclicGenRen with its critics), dataset `genren_unpaired` (the original's two folders or
the genren layout), task `genren` (the original's schedule: mesh-AE pretraining, domain-randomised pretraining,
modes I-III; six named optimizers) and its generator (img_recon). Scripts: genren_train.py, genren_loadtest.py.
"""
from modules.families.genren import config
from modules.families.genren.generation import GenRenGenerator
from modules.families.genren.training import GenRenTask, build_dataset
from modules.models.genren import CyclicGenRen
from modules.registry import DATASETS, GENERATORS, MODELS, TASKS


def build_model(cfg):
    return CyclicGenRen(
        icosa_frequency=cfg["icosa_frequency"], dim_v=cfg["dim_v"], dim_xi_T=cfg["dim_xi_T"], dim_xi_p=cfg["dim_xi_p"],
        dim_backbone=cfg["dim_backbone"], num_hypotheses=cfg["num_hypotheses"], image_size=cfg["image_size"],
        anti_aliasing=cfg["anti_aliasing"], sigma=cfg["sigma"], gamma=cfg["gamma"], texture_size=cfg["texture_size"],
        texture_ngf=cfg["texture_ngf"], image_critic_ndf=cfg["image_critic_ndf"],
        texture_critic_ndf=cfg["texture_critic_ndf"], m_reduced_dim=cfg["m_reduced_dim"],
        shape_critic_reduced=cfg["shape_critic_reduced"], critic_hidden=tuple(cfg["critic_hidden"]),
        pointnet_width=cfg["pointnet_width"], cptc_width=cfg["cptc_width"], pose_buffer_size=cfg["pose_buffer_size"],
        translation_mins=tuple(cfg["translation_mins"]), translation_maxs=tuple(cfg["translation_maxs"]),
        eye_distance=cfg["eye_distance"], encoder_weights=cfg["encoder_weights"])


MODELS.register("genren", defaults=config.MODEL, schema=config.MODEL_SCHEMA)(build_model)
DATASETS.register("genren_unpaired", defaults=config.DATA, schema=config.DATA_SCHEMA)(build_dataset)
TASKS.register("genren", defaults=config.TASK, schema=config.TASK_SCHEMA)(GenRenTask)
GENERATORS.register("genren")(GenRenGenerator)
