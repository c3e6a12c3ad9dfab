"""YAML experiment configs: `inherit:` another file (deep merge), `key.sub=value` overrides,
validation of every key and type against configs/default.yaml and the registered builders.
"""
import copy
import difflib
import os

import yaml

from modules.registry import DATASETS, MODELS, TASKS
from modules.utils import ROOT, ShapeLabError, save_yaml

DEFAULT_CONFIG = os.path.join(ROOT, "configs", "default.yaml")
SECTION_REGISTRIES = {"model": MODELS, "data": DATASETS, "task": TASKS}


def read_yaml(path):
    if not os.path.isfile(path):
        raise ShapeLabError(f"config file not found: {path}")
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
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
    if path in seen:
        raise ShapeLabError(f"config {path}: circular inherit")
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    parent_path = parent if os.path.isabs(parent) else os.path.join(os.path.dirname(path), parent)
    return deep_merge(load_yaml_chain(parent_path, seen + (path,)), data)


def parse_value(text):
    """Parse a command-line value as YAML; '1e-3' (a string in YAML 1.1) becomes a float."""
    value = yaml.safe_load(text) if text != "" else ""
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
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ShapeLabError(f"override '{item}': '{part}' is not a section")
        node[parts[-1]] = parse_value(text)
    return cfg


def _type_name(value):
    return type(value).__name__


def validate(cfg, schema, where="", source="config"):
    """Every key of cfg must be in schema, with a compatible type; returns cfg with coerced floats."""
    for key, value in list(cfg.items()):
        name = f"{where}.{key}" if where else key
        if key not in schema:
            close = difflib.get_close_matches(key, list(schema), n=3, cutoff=0.5)
            hint = f"; closest valid: {', '.join((where + '.' if where else '') + c for c in close)}" if close else ""
            valid = ", ".join(sorted(schema))
            raise ShapeLabError(f"{source}: unknown config key '{name}'{hint} (valid keys here: {valid})")
        default = schema[key]
        if default is None or value is None:
            continue
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ShapeLabError(f"{source}: config key '{name}' must be a mapping, got {_type_name(value)}")
            validate(value, default, name, source)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ShapeLabError(f"{source}: config key '{name}' must be true/false, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    pass
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ShapeLabError(f"{source}: config key '{name}' must be a number, got {value!r}")
            cfg[key] = float(value)
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ShapeLabError(f"{source}: config key '{name}' must be an integer, got {value!r}")
        elif isinstance(default, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise ShapeLabError(f"{source}: config key '{name}' must be a list, got {value!r}")
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise ShapeLabError(f"{source}: config key '{name}' must be a string, got {value!r}")
    return cfg


def resolve(raw, source="config"):
    """Merge raw onto the engine defaults and the registered section defaults, then validate."""
    base = read_yaml(DEFAULT_CONFIG)
    schema = copy.deepcopy(base)
    for section, registry in SECTION_REGISTRIES.items():
        name = (raw.get(section) or {}).get("name")
        if name is None:
            continue
        section_defaults = {"name": name, **registry.defaults(name)}
        schema[section] = section_defaults
        base[section] = section_defaults
    raw = validate(copy.deepcopy(raw), schema, "", source)
    return deep_merge(base, raw)


def load_config(path, overrides=()):
    """Load `path` (following `inherit:`), apply `key.sub=value` overrides, validate, return a dict."""
    raw = load_yaml_chain(path)
    raw = apply_overrides(raw, overrides)
    return resolve(raw, source=path)


def save_config(cfg, path):
    save_yaml(cfg, path)
