"""Small helpers every script and module shares: user-facing errors, atomic writes, devices, seeds."""
import contextlib
import functools
import os
import random
import sys
import tempfile

import numpy as np
import torch
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository root


class ShapeLabError(Exception):
    """A problem with the user's input (file, flag, config key). Scripts print it on one line and exit 2."""


def cli_main(main):
    """Wrap a script's main(): ShapeLabError -> one-line message on stderr and exit code 2."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except ShapeLabError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
    return wrapped


@contextlib.contextmanager
def atomic_write(path, suffix=None):
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    Usage: `with atomic_write(out) as tmp: np.savez(tmp, ...)`. The temporary name keeps the
    extension of `path` (or `suffix`) so libraries that dispatch on it still work.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    ext = suffix if suffix is not None else os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=ext, dir=directory)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_yaml(data, path, sort_keys=False):
    """Write `data` as YAML (safe_dump) to `path` atomically: the one YAML writer of the project."""
    with atomic_write(path) as tmp:
        with open(tmp, "w") as f:
            yaml.safe_dump(data, f, sort_keys=sort_keys)


def get_device(spec="auto"):
    """'auto' picks CUDA when available, else CPU; 'cuda' without a GPU is a user error."""
    if spec in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(spec).startswith("cuda") and not torch.cuda.is_available():
        raise ShapeLabError(f"--device {spec}: CUDA was requested but torch.cuda.is_available() is False")
    if spec not in ("cpu",) and not str(spec).startswith("cuda"):
        raise ShapeLabError(f"--device {spec}: expected auto, cpu or cuda[:N]")
    return torch.device(spec)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def require_file(path, what="file"):
    if not os.path.exists(path):
        raise ShapeLabError(f"{what} not found: {path}")
    return path
