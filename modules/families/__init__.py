"""Every model family, registered into modules.registry by importing it. A new family adds one line here.

Layout of a family home (the shape of ConvONet's `src/<method>/`): `__init__.py` registers the models,
datasets, tasks and generator; `config.py` holds the config defaults; `training.py` the Task(s);
`generation.py` the Generator; `evaluation.py` family-specific evaluation. See README "Adding a family".
"""
from modules.families import neural_parts, occupancy, pointnet, toy  # noqa: F401
from modules.families import svr  # noqa: F401
from modules.families import genren  # noqa: F401
