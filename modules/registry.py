"""Registries from config names to builders: `model.name`, `data.name`, `task.name` in a config, and
the generator `generate.py` uses for a task.

The registries start empty. Each family home (`modules/families/<family>/__init__.py`) registers its
builders with ordinary calls that a reader can grep (`MODELS.register("airnet", ...)`), and
`modules/families/__init__.py` imports every family: scripts `import modules.families` once. The
defaults given at registration are also the schema the config loader validates keys and types against;
`schema=` adds, for the keys whose default does not say it all, a spec string (range, choices, null):
`schema={"hidden": "int >= 1", "dropout": "float in [0, 1)", "feature_type": "planes | grid"}` (the
syntax is in modules/config.py).

    MODELS.register("pointnet_seg", defaults={"num_classes": 50, ...})(build_pointnet_seg)
    def build_pointnet_seg(cfg): ...            # cfg: the merged `model` section (a dict)
    def build_shapenet_part(cfg, split): ...    # DATASETS: returns a torch Dataset of dict samples
    def build_seg_task(cfg): ...                # TASKS: returns a modules.engine.Task
    def build_generator(cfg): ...               # GENERATORS, keyed by task name: returns a Generator
"""
import difflib

from modules.utils import ShapeLabError


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name, defaults=None, schema=None):
        def decorator(builder):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = (builder, dict(defaults or {}), dict(schema or {}))
            return builder
        return decorator

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def _entry(self, name):
        if not self._entries:
            raise RuntimeError(f"no {self.kind} is registered: `import modules.families` first")
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ShapeLabError(f"unknown {self.kind} name '{name}'{hint} (known: {', '.join(sorted(self._entries))})")
        return self._entries[name]

    def defaults(self, name):
        return dict(self._entry(name)[1])

    def schema(self, name):
        """{dotted key: spec string} declared at registration (keys whose default does not say it all)."""
        return dict(self._entry(name)[2])

    def builder(self, name):
        """The registered builder (a function or class) itself."""
        return self._entry(name)[0]

    def build(self, section, *args, **kwargs):
        builder = self._entry(section["name"])[0]
        return builder(section, *args, **kwargs)


MODELS = Registry("model")
DATASETS = Registry("dataset")
TASKS = Registry("task")
GENERATORS = Registry("generator")
