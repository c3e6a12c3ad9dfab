"""What generate.py does for any family: find the checkpoint, rebuild its model from the stored config,
build the data through the dataset registry, and hand both to the generator registered for the task.

Output: <exp>/evaluation_<ckpt>_@<spec>/generation/... (the generator decides what goes inside),
generation_config.yaml next to generation/, and generation/manifest.yaml (modules.evaluation.write_manifest:
the run's objects, by `object_keys`, and what they were made from, by `mesh_inputs`).
"""
import json
import os

import yaml

from modules.engine.checkpoint import load_checkpoint, load_weights
from modules.registry import DATASETS, GENERATORS, MODELS
from modules.utils import ShapeLabError

CHECKPOINT_NAMES = ("best.pt", "latest.pt")


def resolve_checkpoint(exp_dir=None, checkpoint=None, ckpt_name=None):
    """-> (checkpoint path, label used in the output folder name)."""
    if ckpt_name is not None:
        candidates = [ckpt_name] + ([os.path.join(exp_dir, "checkpoints", ckpt_name)] if exp_dir else [])
        for path in candidates:
            if os.path.isfile(path):
                return path, os.path.splitext(os.path.basename(path))[0]
        raise ShapeLabError(f"-ckpt_name {ckpt_name}: no such file (looked at {', '.join(candidates)})")
    if exp_dir is None:
        raise ShapeLabError("give -exp_name (an experiment folder) or -ckpt_name (a checkpoint file)")
    ckpt_dir = os.path.join(exp_dir, "checkpoints")
    if checkpoint is not None:
        path = os.path.join(ckpt_dir, f"epoch_{checkpoint}.pt")
        if not os.path.isfile(path):
            raise ShapeLabError(f"-checkpoint {checkpoint}: {path} not found; {_epoch_hint(exp_dir, ckpt_dir)}")
        return path, str(checkpoint)
    for name in CHECKPOINT_NAMES:
        path = os.path.join(ckpt_dir, name)
        if os.path.isfile(path):
            return path, os.path.splitext(name)[0]
    raise ShapeLabError(f"{ckpt_dir}: no best.pt or latest.pt; train first or give -checkpoint / -ckpt_name")


def _epoch_hint(exp_dir, ckpt_dir):
    """What to type instead of a -checkpoint N that does not exist."""
    have = sorted(os.listdir(ckpt_dir)) if os.path.isdir(ckpt_dir) else []
    epochs = sorted(int(n[6:-3]) for n in have if n.startswith("epoch_") and n.endswith(".pt") and n[6:-3].isdigit())
    if epochs:
        return f"saved epochs: {', '.join(map(str, epochs))}"
    others = [n for n in have if n.endswith(".pt")]
    every = None
    try:
        with open(os.path.join(exp_dir, "config.yaml")) as f:
            every = ((yaml.safe_load(f) or {}).get("training") or {}).get("save_epoch_every")
    except (OSError, yaml.YAMLError, AttributeError):
        pass
    why = ("this run saved no epoch_N.pt (training.save_epoch_every: 0); " if every == 0
           else "this run saved no epoch_N.pt; ")
    use = " or ".join(f"-ckpt_name {n}" for n in others) or "train first"
    return why + f"use {use} (or train with training.save_epoch_every=N to keep epoch_N.pt files)"


def checkpoint_config(path, expect_model=None):
    """-> (checkpoint state, its config), the config checked to have a model section."""
    state = load_checkpoint(path, expect_model)
    cfg = state.get("config")
    if not isinstance(cfg, dict) or "model" not in cfg:
        raise ShapeLabError(f"checkpoint {path}: has no 'config' with a model section; cannot rebuild the model")
    return state, cfg


def load_trained_model(path, device="cpu", expect_model=None):
    """Build the model stored in a checkpoint (its `config`), load the weights; -> (model in eval mode, config)."""
    state, cfg = checkpoint_config(path, expect_model)
    # the stored weights replace any starting weights, so the training-time `pretrained` file is not needed
    model = MODELS.build({**MODELS.defaults(cfg["model"]["name"]), **cfg["model"], "pretrained": ""})
    load_weights(model, state, f"checkpoint {path}")
    return model.to(device).eval(), cfg


def generator_for(cfg, path="checkpoint"):
    """The generator registered for the checkpoint's task."""
    task = (cfg.get("task") or {}).get("name")
    if task not in GENERATORS:
        raise ShapeLabError(f"checkpoint {path}: its task '{task}' has no generator (generators exist for: "
                            f"{', '.join(GENERATORS.names())})")
    return GENERATORS.build({"name": task, "config": cfg})


def build_dataset(data_cfg, split, generator=None, **overrides):
    """The checkpoint's data section (filled with the dataset's current defaults) with overrides, built by
    the generator's `build_inputs(section, split)` when it has one (it may need less than training data),
    else through the dataset registry."""
    name = data_cfg["name"]
    section = {**DATASETS.defaults(name), **data_cfg, **{k: v for k, v in overrides.items() if v is not None}}
    if generator is not None and hasattr(generator, "build_inputs"):
        return generator.build_inputs(section, split), section
    return DATASETS.build(section, split), section


def object_keys(dataset):
    """['<class>/<id>', ...]: the folder under generation/ a generator writes for each item of `dataset`, in
    order (the dataset's object_key(i), else items that are (class, id) pairs or have .group / .name); None when
    its outputs are not one folder per item (genren's images)."""
    keys = []
    for i in range(len(dataset)):
        if hasattr(dataset, "object_key"):
            key = dataset.object_key(i)
        else:
            item = dataset.items[i] if hasattr(dataset, "items") else None
            if isinstance(item, tuple) and len(item) == 2:
                key = item
            elif hasattr(item, "group") and hasattr(item, "name"):
                key = (item.group, item.name)
            else:
                return None
        keys.append(f"{key[0]}/{key[1]}")
    return keys


# data keys that choose which objects, or how fast they load, but not what any object's output is
SELECTION_KEYS = ("root", "categories", "max_items", "max_per_class", "cache", "num_workers")


def mesh_inputs(ckpt_path, data, opts):
    """What a generated object depends on besides its id: the checkpoint (path and modification time: a
    retrained best.pt differs), the data root and settings, the generator options. generate.py reuses meshes
    already in a folder only when the folder's manifest records the same (JSON-plain dict)."""
    plain = {"checkpoint": os.path.abspath(ckpt_path), "checkpoint_mtime": os.path.getmtime(ckpt_path),
             "data_root": os.path.abspath(str(data.get("root"))),
             "data": {k: v for k, v in data.items() if k not in SELECTION_KEYS},
             "options": {k: v for k, v in opts.items() if k not in ("pictures", "overwrite", "batch_points")}}
    return json.loads(json.dumps(plain, sort_keys=True, default=str))
