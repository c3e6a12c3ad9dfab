"""The occupancy family (seed 001): AIR-Net, ONet, ConvONet and IF-Net, occupancy from point clouds.

Registers models `airnet`, `onet`, `convonet`, `ifnet` (an OccupancyNetwork around each paper's encoder and
decoder, with the original's default threshold), dataset `occupancy` (ONet and IF-Net layouts), task
`occupancy` (BCE) and its generator (MISE / marching cubes -> meshes for evaluate.py).
"""
from modules.data.occupancy_datasets import OccupancyDataset
from modules.engine.checkpoint import load_weights
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
    """A MODELS builder: the paper's (encoder, decoder) from `build_parts(cfg)` in an OccupancyNetwork,
    started from `cfg["pretrained"]` (an engine checkpoint or release file) when one is given."""
    def build(cfg):
        encoder, decoder = build_parts(cfg)
        model = OccupancyNetwork(name, encoder, decoder, cfg["threshold"])
        if cfg.get("pretrained"):
            load_weights(model, cfg["pretrained"], "model.pretrained")
        return model
    return build


def build_occupancy_dataset(cfg, split):
    return OccupancyDataset(cfg["format"], cfg["root"], split, cfg["categories"], cfg["pc_samples"],
                            cfg["npoints_decoder"], cfg["noise"], cfg["iou_points"], cfg["max_items"], cfg["cache"],
                            max_per_class=cfg["max_per_class"])


for _name, _defaults, _schema, _build_parts in (("airnet", config.AIRNET, config.AIRNET_SCHEMA, build_airnet),
                                               ("onet", config.ONET, config.ONET_SCHEMA, build_onet),
                                               ("convonet", config.CONVONET, config.CONVONET_SCHEMA, build_convonet),
                                               ("ifnet", config.IFNET, config.IFNET_SCHEMA, build_ifnet)):
    MODELS.register(_name, defaults={**_defaults, "threshold": config.THRESHOLDS[_name], "pretrained": ""},
                    schema={**_schema, **config.THRESHOLD_SCHEMA, "pretrained": "str"})(
        occupancy_model_builder(_name, _build_parts))
DATASETS.register("occupancy", defaults=config.DATA, schema=config.DATA_SCHEMA)(build_occupancy_dataset)
TASKS.register("occupancy", defaults={})(OccupancyTask)
GENERATORS.register("occupancy")(OccupancyGenerator)
