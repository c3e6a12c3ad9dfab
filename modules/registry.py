"""Registries from config names to builders: `model.name`, `data.name` and `task.name` in a config.

Each family registers its builders with the defaults of its config section; those defaults are
also the schema the config loader validates keys and types against.

    @MODELS.register("pointnet_seg", defaults={"num_classes": 50, ...})
    def build_pointnet_seg(cfg): ...            # cfg: the merged `model` section (a dict)

    @DATASETS.register("shapenet_part", defaults={...})
    def build_shapenet_part(cfg, split): ...    # returns a torch Dataset of dict samples

    @TASKS.register("part_segmentation", defaults={...})
    def build_seg_task(cfg): ...                # returns a modules.engine.Task
"""
import difflib
import importlib

from modules.utils import ShapeLabError

# Modules whose import registers builders. A new family adds its module here.
FAMILY_MODULES = [
    "modules.engine.toy",
    "modules.models.pointnet", "modules.data.pointcloud_datasets", "modules.losses.pointnet",
    "modules.models.occupancy", "modules.data.occupancy_datasets",
]


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name, defaults=None):
        def decorator(builder):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = (builder, dict(defaults or {}))
            return builder
        return decorator

    def names(self):
        load_families()
        return sorted(self._entries)

    def _entry(self, name):
        load_families()
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ShapeLabError(f"unknown {self.kind} name '{name}'{hint} (known: {', '.join(sorted(self._entries))})")
        return self._entries[name]

    def defaults(self, name):
        return dict(self._entry(name)[1])

    def build(self, section, *args, **kwargs):
        builder, _ = self._entry(section["name"])
        return builder(section, *args, **kwargs)


MODELS = Registry("model")
DATASETS = Registry("dataset")
TASKS = Registry("task")

_loaded = False


def load_families():
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in FAMILY_MODULES:
        importlib.import_module(module)
