"""Checkpoints and weights: written atomically, loaded with weights_only=True, checked against the model name.

The one weight-loading path of the project is `load_weights(model, path_or_state)`: engine checkpoints,
pretrained_models/ release files, PVCNN's DataParallel checkpoint (`module.` prefixes) and plain state
dicts all go through it; fp16 release weights are cast to the model's dtype; strict, with a one-line error.
"""
import os
import random

import numpy as np
import torch

from modules.utils import ShapeLabError, atomic_write


def rng_state():
    """All RNG states as tensors/lists/ints, so the checkpoint loads with weights_only=True."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "python": [list(random.getstate()[1]), random.getstate()[0], random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    has_gauss, cached = state["numpy_gauss"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], has_gauss, cached))
    keys, version, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, state):
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def torch_load(path, map_location="cpu"):
    if os.path.isdir(path):
        raise ShapeLabError(f"checkpoint {path}: is a folder, expected a .pt file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ShapeLabError(f"checkpoint {path}: is empty (0 bytes; a save that was killed?)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # empty or corrupt file, a pickle with code objects, ...
        detail = (str(err).strip().splitlines() or [""])[0][:200]
        raise ShapeLabError(f"checkpoint {path}: cannot be loaded with weights_only=True "
                            f"({type(err).__name__}{': ' + detail if detail else ''})") from None


def load_checkpoint(path, model_name=None, map_location="cpu"):
    """Load a checkpoint dict; `model_name` (the config's model.name) must match the stored one."""
    if not os.path.isfile(path):
        raise ShapeLabError(f"checkpoint not found: {path}")
    state = torch_load(path, map_location)
    if not isinstance(state, dict) or "model" not in state:
        raise ShapeLabError(f"checkpoint {path}: expected a dict with a 'model' state dict")
    stored = state.get("model_name")
    if model_name is not None and stored is not None and stored != model_name:
        raise ShapeLabError(f"checkpoint {path} holds a '{stored}' model, but the config asks for model.name '{model_name}'")
    return state


def read_weights(path_or_state, what="checkpoint"):
    """A model state dict from a file or an in-memory checkpoint: {'model': state dict, ...} (engine
    checkpoints, release files, PVCNN) or a plain state dict; DataParallel's `module.` prefix is stripped."""
    state = path_or_state
    if isinstance(state, (str, bytes)) or hasattr(state, "__fspath__"):
        if not os.path.isfile(state):
            raise ShapeLabError(f"{what} not found: {os.fspath(state)}")
        state = torch_load(state)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ShapeLabError(f"{what} {path_or_state if isinstance(path_or_state, str) else ''}: expected a state dict "
                            f"(name -> tensor) or a checkpoint with a 'model' state dict")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_weights(model, path_or_state, what="checkpoint"):
    """Load weights into `model` (strict): see read_weights. Returns the model."""
    state = read_weights(path_or_state, what)
    own = model.state_dict()
    state = {k: (v.to(own[k].dtype) if k in own and v.is_floating_point() else v) for k, v in state.items()}
    load_model_weights(model, state, path_or_state if isinstance(path_or_state, str) else what)
    return model


def export_pretrained(src, dst, half=True, data_root=None, **meta):
    """A small release file for pretrained_models/ from an engine checkpoint: the model weights (fp16 when
    `half`), model name, config (data.root replaced by `data_root` when given), epoch/step and `meta`;
    optimiser and RNG states are dropped. Loads with load_checkpoint / load_weights."""
    state = load_checkpoint(src)
    cfg = state.get("config")
    if isinstance(cfg, dict) and data_root is not None:
        cfg = dict(cfg, data=dict(cfg["data"], root=data_root))
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in state["model"].items()}
    out = {"model": weights, "model_name": state.get("model_name"), "config": cfg,
           "epoch": state.get("epoch"), "step": state.get("step"), "source": os.path.abspath(src),
           "train_categories": state.get("train_categories"), **meta}
    save_checkpoint(dst, {k: v for k, v in out.items() if v is not None})
    return dst


def load_model_weights(model, state, path="checkpoint"):
    """load_state_dict(strict=True) with a one-line error listing the mismatched keys."""
    missing, unexpected = [], []
    own = model.state_dict()
    for key, value in state.items():
        if key not in own:
            unexpected.append(key)
        elif own[key].shape != value.shape:
            raise ShapeLabError(f"{path}: parameter '{key}' has shape {tuple(value.shape)}, the model expects {tuple(own[key].shape)}")
    missing = [k for k in own if k not in state]
    if missing or unexpected:
        raise ShapeLabError(f"{path}: does not match the model (missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")
    model.load_state_dict(state, strict=True)
