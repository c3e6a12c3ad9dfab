"""YAML experiment configs: `inherit:` another file (deep merge), `key.sub=value` overrides, and
validation of every key against one schema.

The schema of a key is its default (configs/default.yaml for the engine sections, the registered
builder's defaults for `model`, `data`, `task`) plus, where the default alone does not say it, a
spec string declared once next to the defaults (`_schema:` in configs/default.yaml, `schema=` at
registration). The spec syntax, alternatives separated by `|`:

    int >= 1          float > 0          float in [0, 1)        bool      str      dict
    null | int >= 1   (null allowed)     adam | adamw | sgd     (a choice; `cuda:*` is an fnmatch pattern)
    list of 2 float in [0, 1)            list of str            list

A key with no spec takes the type of its default (a float accepts integers; every float must be
finite). A key whose default is null and has no spec accepts anything, so every null default
declares a spec (tests/test_config.py checks it). Errors name the key and the spec:
`config: training.batch_size must be int >= 1, got 0`.
"""
import argparse
import copy
import difflib
import fnmatch
import math
import os
import re

import yaml

from modules.registry import DATASETS, MODELS, TASKS
from modules.utils import ROOT, ShapeLabError, save_yaml

DEFAULT_CONFIG = os.path.join(ROOT, "configs", "default.yaml")
SECTION_REGISTRIES = {"model": MODELS, "data": DATASETS, "task": TASKS}
SCHEMA_KEY = "_schema"

# Keys that mean the same thing in every family; used when a family declares no spec of its own.
COMMON_SPECS = {
    "dropout": "float in [0, 1)",
    "num_points": "int >= 1",
    "num_classes": "int >= 1",
    "num_shapes": "int >= 1",
    "width_multiplier": "float > 0",
    "pc_samples": "int >= 1",
    "jitter_sigma": "float >= 0",
    "jitter_clip": "float >= 0",
    "noise": "float >= 0",
    "num_train": "int >= 1",
    "num_val": "int >= 0",
    "hidden": "int >= 1",
    "depth": "int >= 0",
    "feature_transform_weight": "float >= 0",
}
# Settings of a named optimizer (task.optimizers.<name>.<key>) take the spec of training.<key>, or null.
OPTIMIZER_KEYS = ("optimizer", "lr", "betas", "weight_decay", "momentum", "grad_clip")


# ----------------------------------------------------------------------------------------- files

def read_yaml(path):
    if not os.path.isfile(path):
        raise ShapeLabError(f"config file not found: {path}")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        data = yaml.safe_load(text) or {}
    except UnicodeDecodeError:
        raise ShapeLabError(f"config {path}: not a text (UTF-8 YAML) file") from None
    except OSError as err:
        raise ShapeLabError(f"config {path}: cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ShapeLabError(f"config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ShapeLabError(f"config {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base, update):
    """Return base updated by update, recursing into dicts (lists and scalars are replaced)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml_chain(path, seen=()):
    data = read_yaml(path)
    path = os.path.abspath(path)
    if path == os.path.abspath(DEFAULT_CONFIG):
        data.pop(SCHEMA_KEY, None)          # the engine's schema, read by engine_defaults()
    if path in seen:
        raise ShapeLabError(f"config {path}: circular inherit")
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ShapeLabError(f"config {path}: 'inherit' must be a file name, got {parent!r}")
    parent_path = parent if os.path.isabs(parent) else os.path.join(os.path.dirname(path), parent)
    return deep_merge(load_yaml_chain(parent_path, seen + (path,)), data)


def parse_value(text):
    """Parse a command-line value as YAML; '1e-3' (a string in YAML 1.1) becomes a float."""
    try:
        value = yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        value = text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(cfg, overrides):
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ShapeLabError(f"override '{item}': expected key.sub=value")
        key, text = item.split("=", 1)
        node = cfg
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ShapeLabError(f"override '{item}': '{'.'.join(parts[:i + 1])}' is not a section")
        node[parts[-1]] = parse_value(text)
    return cfg


# ----------------------------------------------------------------------------------------- specs

_TYPES = {"int", "float", "bool", "str", "list", "dict"}
_RANGE = re.compile(r"^(>=|>|<=|<)\s*(\S+)$")
_INTERVAL = re.compile(r"^in\s*([\[(])\s*([^,]+),\s*([^\])]+)([\])])$")


class Spec:
    """One parsed spec string (see the module docstring)."""

    def __init__(self, text):
        self.text = text.strip()
        self.nullable, self.terms, self.choices = False, [], []
        for part in (p.strip() for p in self.text.split("|")):
            first = part.split(" ", 1)[0]
            if part == "null":
                self.nullable = True
            elif first in _TYPES:
                self.terms.append(_parse_term(part, self.text))
            elif part:
                self.choices.append(part)
            else:
                raise ValueError(f"spec '{text}': empty alternative")

    def check(self, value):
        """-> (ok, value coerced: ints to floats for float terms, numeric strings to floats)."""
        if value is None:
            return self.nullable, value
        if isinstance(value, str) and any(fnmatch.fnmatchcase(value, c) for c in self.choices):
            return True, value
        for term in self.terms:
            ok, coerced = _check_term(term, value)
            if ok:
                return True, coerced
        return False, value


def _parse_term(part, text):
    words = part.split(None, 1)
    kind, rest = words[0], (words[1].strip() if len(words) > 1 else "")
    term = {"type": kind, "low": None, "high": None, "low_open": False, "high_open": False}
    if kind == "list":
        if rest.startswith("of "):
            rest = rest[3:].strip()
            count, _, elem = rest.partition(" ")
            if count.isdigit():
                term["length"] = int(count)
                rest = elem.strip()
            term["item"] = _parse_term(rest, text)
        elif rest:
            raise ValueError(f"spec '{text}': cannot read '{part}'")
        return term
    for clause in (c.strip() for c in rest.split(",") if c.strip()) if not rest.startswith("in") else [rest]:
        interval, bound = _INTERVAL.match(clause), _RANGE.match(clause)
        if interval:
            term.update(low=float(interval.group(2)), high=float(interval.group(3)),
                        low_open=interval.group(1) == "(", high_open=interval.group(4) == ")")
        elif bound:
            op, number = bound.group(1), float(bound.group(2))
            if op.startswith(">"):
                term.update(low=number, low_open=op == ">")
            else:
                term.update(high=number, high_open=op == "<")
        else:
            raise ValueError(f"spec '{text}': cannot read '{clause}'")
    return term


def _check_term(term, value):
    kind = term["type"]
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "str":
        return isinstance(value, str), value
    if kind == "dict":
        return isinstance(value, dict), value
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            return False, value
        if "length" in term and len(value) != term["length"]:
            return False, value
        if "item" in term:
            out = []
            for item in value:
                ok, item = _check_term(term["item"], item)
                if not ok:
                    return False, value
                out.append(item)
            return True, out
        return True, list(value)
    if isinstance(value, bool):
        return False, value
    if kind == "int":
        if not isinstance(value, int):
            return False, value
    else:  # float
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return False, value
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False, value
        value = float(value)
    low, high = term["low"], term["high"]
    if low is not None and (value < low or (term["low_open"] and value == low)):
        return False, value
    if high is not None and (value > high or (term["high_open"] and value == high)):
        return False, value
    return True, value


def flag_type(text):
    """An argparse `type=` that checks a command-line value against a spec: `type=flag_type("int >= 1")`,
    so flags declare their range once in the same syntax as config keys."""
    spec = Spec(text)

    def convert(value):
        parsed = parse_value(value)
        if any(t["type"] == "str" for t in spec.terms) and not isinstance(parsed, str):
            parsed = value
        ok, coerced = spec.check(parsed)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {text}, got {value!r}")
        return coerced
    convert.__name__ = text           # argparse names the type in its messages
    return convert


def spec_of_default(default):
    """The spec a default implies when none is declared (None: anything goes)."""
    if default is None or isinstance(default, dict):
        return None
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", (list, tuple))):
        if isinstance(default, types):
            return kind
    return None


def check_specs(specs, defaults, where):
    """Each declared spec names a key that has a default and parses (a programming error otherwise)."""
    for key, text in specs.items():
        node = defaults
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"schema of {where}: '{key}' is not a key of the defaults")
            node = node[part]
        Spec(text)


# ------------------------------------------------------------------------------------ validation

def _type_name(value):
    return type(value).__name__


def validate(cfg, schema, where="", source="config", specs=None):
    """Every key of cfg must be in schema (the defaults) and satisfy its spec; returns cfg with coerced values.

    specs: {dotted key relative to `where`: spec string}; keys without one take their default's type."""
    specs = specs or {}
    for key, value in list(cfg.items()):
        name = f"{where}.{key}" if where else key
        if key not in schema:
            close = difflib.get_close_matches(str(key), list(schema), n=3, cutoff=0.5)
            hint = f"; closest valid: {', '.join((where + '.' if where else '') + c for c in close)}" if close else ""
            valid = ", ".join(sorted(map(str, schema)))
            raise ShapeLabError(f"{source}: unknown config key '{name}'{hint} (valid keys here: {valid})")
        default = schema[key]
        text = specs.get(key)
        if isinstance(default, dict) and text is None:
            if value is None:
                raise ShapeLabError(f"{source}: config key '{name}' must be a mapping, got null")
            if not isinstance(value, dict):
                raise ShapeLabError(f"{source}: config key '{name}' must be a mapping, got {_type_name(value)}")
            sub = {k[len(key) + 1:]: v for k, v in specs.items() if k.startswith(key + ".")}
            validate(value, default, name, source, sub)
            continue
        text = text or spec_of_default(default)
        if text is None:
            continue
        ok, coerced = Spec(text).check(value)
        if not ok:
            expected = {"bool": "true/false", "int": "an integer", "float": "a number", "str": "a string",
                        "list": "a list"}.get(text, text)
            raise ShapeLabError(f"{source}: config key '{name}' must be {expected}, got {value!r}")
        cfg[key] = coerced
    return cfg


def engine_defaults():
    """(configs/default.yaml without its schema, {dotted key: spec} of the engine keys)."""
    base = read_yaml(DEFAULT_CONFIG)
    specs = base.pop(SCHEMA_KEY, {}) or {}
    return base, specs


def section_specs(section, name, defaults, engine_specs):
    """Declared specs of a registered section, the common ones for undeclared keys, and the optimizer keys."""
    registry = SECTION_REGISTRIES[section]
    specs = {k: v for k, v in COMMON_SPECS.items()
             if k in defaults and spec_of_default(defaults[k]) == v.split()[0]}
    specs.update(registry.schema(name))
    if section == "task" and isinstance(defaults.get("optimizers"), dict):
        for opt_name, settings in defaults["optimizers"].items():
            for key in OPTIMIZER_KEYS:
                if isinstance(settings, dict) and key in settings and f"optimizers.{opt_name}.{key}" not in specs:
                    specs[f"optimizers.{opt_name}.{key}"] = "null | " + engine_specs[f"training.{key}"]
    return specs


def resolve(raw, source="config"):
    """Merge raw onto the engine defaults and the registered section defaults, then validate."""
    base, engine_specs = engine_defaults()
    if SCHEMA_KEY in raw:
        raise ShapeLabError(f"{source}: '{SCHEMA_KEY}' is reserved for configs/default.yaml")
    schema = copy.deepcopy(base)
    specs = dict(engine_specs)
    for section, registry in SECTION_REGISTRIES.items():
        value = raw.get(section)
        if value is not None and not isinstance(value, dict):
            raise ShapeLabError(f"{source}: config key '{section}' must be a mapping, got {_type_name(value)}")
        name = (value or {}).get("name")
        if name is None:
            continue
        if not isinstance(name, str):
            raise ShapeLabError(f"{source}: config key '{section}.name' must be a string, got {name!r}")
        section_defaults = {"name": name, **registry.defaults(name)}
        schema[section] = section_defaults
        base[section] = section_defaults
        specs.update({f"{section}.{k}": v for k, v in
                      section_specs(section, name, section_defaults, engine_specs).items()})
    raw = validate(copy.deepcopy(raw), schema, "", source, specs)
    cfg = deep_merge(base, raw)
    check_consistency(cfg, source)
    return cfg


def check_consistency(cfg, source="config"):
    """Rules that involve two keys."""
    t = cfg.get("training") or {}
    schedule = t.get("lr_schedule") or {}
    if schedule.get("name") == "step" and not schedule.get("every"):
        raise ShapeLabError(f"{source}: training.lr_schedule.name is 'step' but training.lr_schedule.every is "
                            f"{schedule.get('every')}; expected an integer >= 1")


def load_config(path, overrides=()):
    """Load `path` (following `inherit:`), apply `key.sub=value` overrides, validate, return a dict."""
    raw = load_yaml_chain(path)
    raw = apply_overrides(raw, overrides)
    return resolve(raw, source=path)


def config_differences(old, new, ignore=(), where=""):
    """Dotted keys whose values differ between two resolved configs -> [(key, old, new)]."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        name = f"{where}.{key}" if where else str(key)
        if name in ignore:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, ignore, name)
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            out.append((name, a, b))
    return out


def save_config(cfg, path):
    save_yaml(cfg, path)
