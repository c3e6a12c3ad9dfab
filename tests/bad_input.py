"""Shared helpers of the bad-input tables (tests/test_bad_input_*.py): values that break a spec, the specs of a
script's flags, a listing of folders, and `run_bad`, the one assertion every case makes: exit code 2 (or the
code given), exactly one non-empty line on stderr matching a pattern, no traceback, and no new or removed file
under the watched folders.

The tables are generated from the declarations themselves: `bad_values(spec)` for each config key's spec
(modules.config) and `flag_specs(parse_args)` for each flag declared with `type=flag_type(spec)`.
"""
import argparse
import os
import re

import pytest

from modules.config import Spec, parse_value
from modules.utils import ROOT

SKIP_DIRS = (".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis")


def unwritable(folder):
    """True when this user cannot create a file in `folder` (a real probe: os.access says yes to root)."""
    try:
        open(os.path.join(folder, ".shapelab_probe"), "w").close()
    except OSError:
        return True
    os.remove(os.path.join(folder, ".shapelab_probe"))
    return False


NOT_WRITABLE = "/sys/shapelab_not_writable"     # an output place under a read-only file system
READ_ONLY_SYS = os.path.isdir("/sys") and unwritable("/sys")   # machines where /sys is writable skip those cases


def bad_values(text):
    """Values that break a spec: just outside each bound, the wrong type, not a choice."""
    spec = Spec(text)
    out = []
    for term in spec.terms:
        kind = term["type"]
        if kind in ("int", "float"):
            step = 1 if kind == "int" else 0.5
            if term["low"] is not None:
                low = term["low"] if kind == "float" else int(term["low"])
                out.append(low if term["low_open"] else low - step)
            if term["high"] is not None:
                high = term["high"] if kind == "float" else int(term["high"])
                out.append(high if term["high_open"] else high + step)
            out.append("abc")
        elif kind == "list":
            out.append(5)
            if "length" in term:
                out.append("[" + ",".join(["0.5"] * (term["length"] + 1)) + "]")
        elif kind == "bool":
            out.append("maybe")
    if spec.choices and not spec.terms:
        out += ["not_a_choice", 3]
    return [v for v in out if not spec.check(v if not isinstance(v, str) else parse_value(v))[0]]


def bad_flag_values(text):
    """bad_values plus the ones every numeric flag must refuse: nan, inf, -inf and a huge integer where an
    upper bound exists (flag values are strings)."""
    spec = Spec(text)
    out = [str(v) for v in bad_values(text)]
    numeric = [t for t in spec.terms if t["type"] in ("int", "float")]
    if numeric:
        out += ["nan", "inf", "-inf"] if any(t["type"] == "float" for t in numeric) else ["1.5", "nan"]
        if any(t["high"] is not None for t in numeric):
            out.append("1e30" if any(t["type"] == "float" for t in numeric) else str(10 ** 30))
    seen = []
    for v in out:
        if v not in seen and not spec.check(parse_value(v))[0]:
            seen.append(v)
    return seen


def _parser(parse_args):
    """The ArgumentParser that `parse_args([])` builds (captured before it parses)."""
    captured = {}
    originals = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_intermixed_args

    def grab(self, *a, **k):
        captured.setdefault("p", self)
        raise SystemExit(0)
    argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_intermixed_args = grab
    try:
        parse_args([])
    except SystemExit:
        pass
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_intermixed_args = originals
    return captured["p"]


def flag_specs(parse_args):
    """{flag: spec text} of every option whose type is a flag_type (its __name__ is the spec) with a range."""
    out = {}
    for action in _parser(parse_args)._actions:
        name = getattr(action.type, "__name__", "")
        if action.option_strings and any(op in name for op in ("<", ">", " in ")):
            out[action.option_strings[0]] = name
    return out


def listing(*roots):
    """Every path under the roots (folders and files), minus caches."""
    out = set()
    for root in roots:
        for base, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            out.update(os.path.join(base, n) for n in dirs + files)
    return out


def top_level():
    """Names at the repository's top level, where a script's default output would appear; dot entries are left
    out (caches and locks of other processes that use the same checkout)."""
    return {n for n in os.listdir(ROOT) if not n.startswith(".")}


def run_bad(main, argv, capture, must_name, roots, code=2):
    """main(argv) must exit with `code`, print exactly one line on stderr matching the regex `must_name` and
    no traceback, and leave the listing of `roots` unchanged. `capture`: pytest's capsys or capfd. -> the line."""
    before = listing(*roots)
    capture.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capture.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_info.value.code == code, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.search(must_name, lines[0]), lines[0]
    assert listing(*roots) == before, sorted(listing(*roots) ^ before)
    return lines[0]
