"""Checkpoints: written atomically, loaded with weights_only=True, checked against the model name."""
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


def load_checkpoint(path, model_name=None, map_location="cpu"):
    """Load a checkpoint dict; `model_name` (the config's model.name) must match the stored one."""
    if not os.path.isfile(path):
        raise ShapeLabError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt file, pickle with code objects, ...
        raise ShapeLabError(f"checkpoint {path}: cannot be loaded with weights_only=True ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ShapeLabError(f"checkpoint {path}: expected a dict with a 'model' state dict")
    stored = state.get("model_name")
    if model_name is not None and stored is not None and stored != model_name:
        raise ShapeLabError(f"checkpoint {path} holds a '{stored}' model, but the config asks for model.name '{model_name}'")
    return state


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
        raise ShapeLabError(f"{path}: weights do not match the model (missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")
    model.load_state_dict(state, strict=True)
