"""Every model family and the names it registers into modules.registry. A new family adds one entry here.

Families load lazily: importing this package only declares, for each name, the family module that registers
it; the first lookup of a name (a config's `model.name`, `data.name`, `task.name`, or a task's generator)
imports that one family. So a script reports a bad flag or a missing config file in a few seconds, and a
run pays only for its own family's imports (torchvision, captum, ... where that family uses them).
`modules/families/<family>/__init__.py` stays the one place that registers the builders; a name listed here
that its family does not register (or the other way round) is an error at the first lookup or
registration, and tests/test_lazy_families.py checks every family against this table.

Layout of a family home (the shape of ConvONet's `src/<method>/`): `__init__.py` registers the models,
datasets, tasks and generator; `config.py` holds the config defaults; `training.py` the Task(s);
`generation.py` the Generator; `evaluation.py` family-specific evaluation. See README "Adding a family".
"""
from modules.registry import REGISTRIES

# family -> {registry kind ("model", "data", "task", "generator"): names its __init__.py registers}
FAMILIES = {
    "neural_parts": {"model": ["neural_parts"], "data": ["neural_parts"], "task": ["neural_parts"],
                     "generator": ["neural_parts"]},
    "occupancy": {"model": ["airnet", "onet", "convonet", "ifnet"], "data": ["occupancy"], "task": ["occupancy"],
                  "generator": ["occupancy"]},
    "pointnet": {"model": ["pointnet_seg", "pointnet_cls"], "data": ["shapenet_part"],
                 "task": ["part_segmentation", "classification"]},
    "toy": {"model": ["toy_mlp", "toy_gan"], "data": ["toy_regression", "toy_gaussian"],
            "task": ["regression", "gan"]},
    "svr": {"model": ["svr_vox", "svr_point", "svr_mesh", "svr_implicit", "svr_parametric"], "data": ["svr"],
            "task": ["svr"], "generator": ["svr"]},
    "genren": {"model": ["genren"], "data": ["genren_unpaired"], "task": ["genren"], "generator": ["genren"]},
}

for _family, _kinds in FAMILIES.items():
    for _kind, _names in _kinds.items():
        for _name in _names:
            REGISTRIES[_kind].declare(_name, f"{__name__}.{_family}")
