"""Registries from config names to builders: `model.name`, `data.name`, `task.name` in a config, and
the generator `generate.py` uses for a task.

Each family home (`modules/families/<family>/__init__.py`) registers its builders with ordinary calls that
a reader can grep (`MODELS.register("airnet", ...)`). Families load lazily: `modules/families/__init__.py`
only declares which family module registers which name (`FAMILIES`), and the first lookup of a name
(`defaults`, `schema`, `builder`, `build`) imports that one module. So `import modules.families` is cheap,
a script reports a bad flag or a missing config file before torchvision / captum / torch dynamo load, and a
run imports only the family its config names. The defaults given at registration are also the schema the
config loader validates keys and types against; `schema=` adds, for the keys whose default does not say it
all, a spec string (range, choices, null):
`schema={"hidden": "int >= 1", "dropout": "float in [0, 1)", "feature_type": "planes | grid"}` (the
syntax is in modules/config.py).

    MODELS.register("pointnet_seg", defaults={"num_classes": 50, ...})(build_pointnet_seg)
    def build_pointnet_seg(cfg): ...            # cfg: the merged `model` section (a dict)
    def build_shapenet_part(cfg, split): ...    # DATASETS: returns a torch Dataset of dict samples
    def build_seg_task(cfg): ...                # TASKS: returns a modules.engine.Task
    def build_generator(cfg): ...               # GENERATORS, keyed by task name: returns a Generator
"""
import difflib
import importlib
import sys

from modules.utils import ShapeLabError


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._entries = {}
        self._homes = {}        # name -> the module whose import registers it (declared, maybe not imported yet)
        self._registered_by = {}    # name -> the module that called register()

    def declare(self, name, module):
        """Say that importing `module` registers `name`; it is imported on the first lookup of the name."""
        if self._homes.get(name, module) != module:
            raise ValueError(f"{self.kind} '{name}' declared in {self._homes[name]} and in {module}")
        self._homes[name] = module

    def register(self, name, defaults=None, schema=None):
        caller = sys._getframe(1).f_globals.get("__name__", "?")     # the family module registering `name`
        if self._homes:             # declarations are loaded: the table and the registrations must agree
            home = self._homes.get(name)
            if home is None:        # a lazy lookup could never find it
                raise ValueError(f"{self.kind} '{name}' (registered by {caller}) is not declared: add it to its "
                                 f"family's entry in FAMILIES (modules/families/__init__.py)")
            if caller != home and not caller.startswith(home + "."):
                raise ValueError(f"{self.kind} '{name}' is registered by {caller} but FAMILIES "
                                 f"(modules/families/__init__.py) declares it for {home}")

        def decorator(builder):
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice ({self._registered_by[name]}, {caller})")
            self._entries[name] = (builder, dict(defaults or {}), dict(schema or {}))
            self._registered_by[name] = caller
            return builder
        return decorator

    def registered_by(self, name):
        """The module that registered `name` (None while its family is not imported)."""
        return self._registered_by.get(name)

    def names(self):
        """Every known name, declared or registered (looking names up imports nothing)."""
        return sorted(set(self._entries) | set(self._homes))

    def __contains__(self, name):
        return name in self._entries or name in self._homes

    def _entry(self, name):
        if name not in self:
            if not self._homes and not self._entries:
                raise RuntimeError(f"no {self.kind} is registered: `import modules.families` first")
            close = difflib.get_close_matches(str(name), self.names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ShapeLabError(f"unknown {self.kind} name '{name}'{hint} (known: {', '.join(self.names())})")
        if name not in self._entries:
            importlib.import_module(self._homes[name])      # the family's registrations run here
            if name not in self._entries:
                raise RuntimeError(f"{self._homes[name]} did not register {self.kind} '{name}' as declared in "
                                   f"FAMILIES (modules/families/__init__.py)")
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
REGISTRIES = {"model": MODELS, "data": DATASETS, "task": TASKS, "generator": GENERATORS}
