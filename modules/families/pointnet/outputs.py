"""Where the PointNet tools (run_nst.py, deepdream3d.py, attribution.py) write, checked before anything is
written: one output root (`experiments/<tool>/...` by default), names confined to it, no silent overwrite
(an existing non-empty folder gets a new numbered sibling, and the tool says so), and an output path that
is a file or not writable is a one-line error.
"""
import argparse
import os
import re
import sys

from modules.utils import ShapeLabError, check_output_dir

EXPERIMENTS = "experiments"          # relative to the working directory, as train.py's --exp_root
_NAME = re.compile(r"^[A-Za-z0-9_.+=-]+$")


def default_dir(tool, *names):
    """experiments/<tool>/<name>/... (names are checked by `check_name`)."""
    return os.path.join(EXPERIMENTS, tool, *[check_name(n, "output name") for n in names])


def check_name(name, what):
    """A relative sub-folder name ('a' or 'a/b') that stays inside its root: no absolute path, no '..',
    no empty or hidden components, only letters, digits and _.+=-."""
    name = str(name)
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or not name or any(p in ("", ".", "..") or p.startswith(".") or not _NAME.match(p)
                                              for p in parts):
        raise ShapeLabError(f"{what} '{name}': expected a relative folder name inside the output root "
                            "(letters, digits, _ . + = -, sub-folders with /; no '..', no absolute path)")
    return os.path.join(*parts)


def check_writable(path, what):
    """Raise unless `path` is (or can be created as) a writable folder. Creates nothing (modules.utils)."""
    return check_output_dir(path, what)


def is_empty_dir(path):
    return os.path.isdir(path) and not os.listdir(path)


def fresh_dir(path, what):
    """`path` if it does not exist or is an empty folder, else the first free `path_1`, `path_2`, ...
    Returns (folder, note): note says why another folder was chosen ('' when `path` itself is used)."""
    check_writable(path, what)
    if not os.path.exists(path) or is_empty_dir(path):
        return path, ""
    i = 1
    while os.path.exists(f"{path}_{i}") and not is_empty_dir(f"{path}_{i}"):
        i += 1
    new = f"{path}_{i}"
    check_writable(new, what)
    return new, f"{path} already holds a result (not overwritten): writing to {new}"


class OneLineParser(argparse.ArgumentParser):
    """argparse with the project's error contract: one line on stderr naming the flag, exit code 2
    (argparse's default prints the whole usage block first)."""

    def error(self, message):
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def file_stem(path):
    """A folder-safe name from a file's stem ('my chair (2).pts' -> 'my_chair__2_')."""
    stem = os.path.splitext(os.path.basename(str(path)))[0]
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", stem).lstrip(".") or "cloud"
