import os
import subprocess
import sys

import pytest
import yaml

from modules.config import apply_overrides, deep_merge, load_config, parse_value
from modules.utils import ShapeLabError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "configs", "toy", "regression.yaml")


def write(path, data):
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return str(path)


def test_deep_merge_recurses_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    out = deep_merge(base, {"a": {"c": [9]}, "e": 4})
    assert out == {"a": {"b": 1, "c": [9]}, "d": 3, "e": 4}
    assert base["a"]["c"] == [1, 2]


def test_parse_value_types():
    assert parse_value("1e-3") == pytest.approx(1e-3)
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("true") is True
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("adam") == "adam"
    assert parse_value("null") is None


def test_inherit_chain_and_overrides(tmp_path):
    child = write(tmp_path / "child.yaml", {"inherit": TOY, "training": {"lr": 0.5, "batch_size": 8}})
    cfg = load_config(child, ["training.lr_schedule.name=step", "model.hidden=16", "training.lr=1e-4"])
    assert cfg["training"]["batch_size"] == 8                   # child beats parent
    assert cfg["training"]["max_epochs"] == 5                   # from toy.yaml
    assert cfg["training"]["optimizer"] == "adam"               # from default.yaml
    assert cfg["training"]["lr"] == pytest.approx(1e-4)         # override beats file
    assert cfg["training"]["lr_schedule"]["name"] == "step"
    assert cfg["model"] == {"name": "toy_mlp", "hidden": 16, "depth": 2, "dropout": 0.0}


def test_unknown_key_names_key_and_closest(tmp_path):
    with pytest.raises(ShapeLabError) as err:
        load_config(TOY, ["training.learning_rat=0.1"])
    assert "training.learning_rat" in str(err.value)
    with pytest.raises(ShapeLabError) as err:
        load_config(TOY, ["model.hiden=3"])
    assert "'model.hiden'" in str(err.value) and "model.hidden" in str(err.value)


def test_wrong_type_and_missing_file(tmp_path):
    with pytest.raises(ShapeLabError, match="training.batch_size.*integer"):
        load_config(TOY, ["training.batch_size=abc"])
    with pytest.raises(ShapeLabError, match="must be a number"):
        load_config(TOY, ["training.lr=fast"])
    with pytest.raises(ShapeLabError, match="config file not found"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ShapeLabError, match="unknown model name 'toy_mlpp'.*toy_mlp"):
        load_config(TOY, ["model.name=toy_mlpp"])


def test_circular_inherit(tmp_path):
    write(tmp_path / "a.yaml", {"inherit": "b.yaml"})
    write(tmp_path / "b.yaml", {"inherit": "a.yaml"})
    with pytest.raises(ShapeLabError, match="circular"):
        load_config(str(tmp_path / "a.yaml"))


def test_override_syntax_error():
    with pytest.raises(ShapeLabError, match="key.sub=value"):
        apply_overrides({}, ["training.lr"])


@pytest.mark.parametrize("args, message", [
    (["-cfg", "missing.yaml"], "config file not found: missing.yaml"),
    (["-cfg", TOY, "training.lrr=1"], "unknown config key 'training.lrr'"),
    (["-cfg", TOY, "training.max_epochs=two"], "training.max_epochs"),
])
def test_train_cli_bad_input_exit_2_nothing_written(tmp_path, args, message):
    root = tmp_path / "exps"
    proc = subprocess.run([sys.executable, "train.py", *args, "-exp_name", "x", "--exp_root", str(root)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not root.exists()
