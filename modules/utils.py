"""Small helpers every script and module shares: user-facing errors, atomic writes, devices, seeds."""
import argparse
import contextlib
import functools
import os
import random
import signal
import sys
import tempfile

import numpy as np
import torch
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository root


class ShapeLabError(Exception):
    """A problem with the user's input (file, flag, config key). Scripts print it on one line and exit 2."""


EXIT_USAGE = 2         # bad input: one line on stderr, nothing written
EXIT_PARTIAL = 1       # a batch job finished but some items failed (the summary says which)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), as shells report it


class PartialFailure(ShapeLabError):
    """A batch job finished but some items failed (already named in its summary): exit code EXIT_PARTIAL."""


def cli_main(main=None, *, on_interrupt=""):
    """Wrap a script's main(): ShapeLabError -> one-line message on stderr and exit code 2; Ctrl-C outside
    the places that handle it -> one line (plus `on_interrupt`, e.g. how to resume) and exit code 130, no
    traceback. Use as `@cli_main` or `@cli_main(on_interrupt="...")`."""
    if main is None:
        return functools.partial(cli_main, on_interrupt=on_interrupt)

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        if getattr(signal.getsignal(signal.SIGINT), "__name__", "") == "_interrupted_while_starting":
            signal.signal(signal.SIGINT, signal.default_int_handler)   # modules.startup's part is over
        try:
            return main(*args, **kwargs)
        except PartialFailure as err:   # a batch that ran: its summary is printed, some items failed
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_PARTIAL)
        except ShapeLabError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:   # the newline ends a progress bar's line
            print(f"\ninterrupted (Ctrl-C){'; ' + on_interrupt if on_interrupt else ''}", file=sys.stderr)
            if getattr(sys.modules.get("__main__"), "main", None) is wrapped:
                # run as a script: skip the interpreter's teardown, which frees a large model or dataset for up to
                # a minute on a busy machine (every file is written through atomic_write, so none is half-written)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(EXIT_INTERRUPTED)
            sys.exit(EXIT_INTERRUPTED)
    return wrapped


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error convention: one line on stderr (no usage block), exit code 2."""

    def error(self, message):
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def plain_name(name, flag):
    """A name used as one folder under an output root: no separators, not '.' or '..', not empty."""
    text = str(name)
    bad = (not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text
           or (os.altsep and os.altsep in text) or text != text.strip())
    if bad:
        raise ShapeLabError(f"{flag} '{name}': expected a plain folder name (no '/', not '.' or '..'), "
                            f"which is created under the output root")
    return text


def check_output_dir(path, flag):
    """Raise ShapeLabError unless `path` is, or can be created as, a writable folder. Writes nothing."""
    path = os.path.abspath(os.fspath(path))
    probe = path
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        where = "is a file" if probe == path else f"cannot be created: {probe} is a file"
        raise ShapeLabError(f"{flag} {path}: {where}, expected a folder")
    try:    # os.access says yes to root on a read-only folder or file system; a real (removed) file does not lie
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise ShapeLabError(f"{flag} {path}: {probe} is not writable ({err.strerror})") from None
    return path


def check_output_file(path, flag):
    """The file `path` can be written: its folder is writable (or creatable) and it is not a folder."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ShapeLabError(f"{flag} {path}: is a folder, expected a file path")
    check_output_dir(os.path.dirname(path), flag)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ShapeLabError(f"{flag} {path}: exists and is not writable")
    return path


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
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ShapeLabError(f"--device {spec}: expected auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ShapeLabError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def require_file(path, what="file"):
    if not os.path.exists(path):
        raise ShapeLabError(f"{what} not found: {path}")
    return path
