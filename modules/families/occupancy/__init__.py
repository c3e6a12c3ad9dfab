"""The occupancy family (seed 001): AIR-Net, ONet, ConvONet and IF-Net, occupancy from point clouds.

Registers models `airnet`, `onet`, `convonet`, `ifnet` (an OccupancyNetwork around each paper's encoder and
decoder, with the original's default threshold), dataset `occupancy` (ONet and IF-Net layouts), task
`occupancy` (BCE) and its generator (MISE / marching cubes -> meshes for evaluate.py).
"""
from modules.data.occupancy_datasets import OccupancyDataset
from modules.families.occupancy import config
from modules.families.occupancy.generation import OccupancyGenerator
from modules.families.occupancy.training import OccupancyTask
from modules.models.airnet import build_airnet
from modules.models.convonet import build_convonet
from modules.models.ifnet import build_ifnet
from modules.models.occupancy import OccupancyNetwork
from modules.models.onet import build_onet
from modules.registry import DATASETS, GENERATORS, MODELS, TASKS


def occupancy_model_builder(name, build_parts):
    """A MODELS builder: the paper's (encoder, decoder) from `build_parts(cfg)` in an OccupancyNetwork."""
    def build(cfg):
        encoder, decoder = build_parts(cfg)
        return OccupancyNetwork(name, encoder, decoder, cfg["threshold"])
    return build


def build_occupancy_dataset(cfg, split):
    return OccupancyDataset(cfg["format"], cfg["root"], split, cfg["categories"], cfg["pc_samples"],
                            cfg["npoints_decoder"], cfg["noise"], cfg["iou_points"], cfg["max_items"], cfg["cache"],
                            max_per_class=cfg["max_per_class"])


MODELS.register("airnet", defaults={**config.AIRNET, "threshold": config.THRESHOLDS["airnet"]},
                schema={**config.AIRNET_SCHEMA, **config.THRESHOLD_SCHEMA})(
    occupancy_model_builder("airnet", build_airnet))
MODELS.register("onet", defaults={**config.ONET, "threshold": config.THRESHOLDS["onet"]},
                schema={**config.ONET_SCHEMA, **config.THRESHOLD_SCHEMA})(
    occupancy_model_builder("onet", build_onet))
MODELS.register("convonet", defaults={**config.CONVONET, "threshold": config.THRESHOLDS["convonet"]},
                schema={**config.CONVONET_SCHEMA, **config.THRESHOLD_SCHEMA})(
    occupancy_model_builder("convonet", build_convonet))
MODELS.register("ifnet", defaults={**config.IFNET, "threshold": config.THRESHOLDS["ifnet"]},
                schema={**config.IFNET_SCHEMA, **config.THRESHOLD_SCHEMA})(
    occupancy_model_builder("ifnet", build_ifnet))
DATASETS.register("occupancy", defaults=config.DATA, schema=config.DATA_SCHEMA)(build_occupancy_dataset)
TASKS.register("occupancy", defaults={})(OccupancyTask)
GENERATORS.register("occupancy")(OccupancyGenerator)
