"""train.py on a table of bad inputs: exit code 2, exactly one line on stderr naming the flag/key/file and
what was expected, and no new file anywhere (listings of the output root and the repository compared).

The config cases are generated from the schema itself (configs/default.yaml `_schema` and the specs the
toy family registers): for every declared key, values just outside its range, of the wrong type, or not
among its choices. Runs train.main(argv) in-process (no interpreter start per case).
"""
import os
import re

import pytest
import torch

import modules.families  # noqa: F401
import train
from bad_input import bad_values
from bad_input import run_bad as shared_run_bad
from modules.config import engine_defaults, load_config, section_specs
from modules.engine.checkpoint import save_checkpoint
from modules.registry import MODELS, DATASETS, TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join(ROOT, "configs", "toy", "regression.yaml")
GAN = os.path.join(ROOT, "configs", "toy", "gan.yaml")


def schema_cases():
    """(cfg path, override, key) for every declared spec of the engine and the toy sections."""
    _, engine = engine_defaults()
    cases = []
    for key, text in sorted(engine.items()):
        if key in ("training.best_metric",):
            continue                              # any string is a valid name; checked against the task below
        for value in bad_values(text):
            cases.append((TOY, f"{key}={value}", key))
    for cfg, sections in ((TOY, {"model": "toy_mlp", "data": "toy_regression"}),
                          (GAN, {"model": "toy_gan", "data": "toy_gaussian", "task": "gan"})):
        for section, name in sections.items():
            registry = {"model": MODELS, "data": DATASETS, "task": TASKS}[section]
            defaults = {"name": name, **registry.defaults(name)}
            for key, text in sorted(section_specs(section, name, defaults, engine).items()):
                for value in bad_values(text):
                    cases.append((cfg, f"{section}.{key}={value}", f"{section}.{key}"))
    return cases


SCHEMA_CASES = schema_cases()


def run_bad(argv, capsys, must_name, roots, code=2):
    shared_run_bad(train.main, argv, capsys, must_name, roots, code)


def test_the_schema_table_is_large():
    assert len(SCHEMA_CASES) >= 60


@pytest.mark.parametrize("cfg, override, key", SCHEMA_CASES, ids=[c[1] for c in SCHEMA_CASES])
def test_out_of_range_config_values(tmp_path, capsys, cfg, override, key):
    run_bad(["-cfg", cfg, "-exp_name", "x", "--exp_root", str(tmp_path), override], capsys,
            re.escape(f"'{key}'") + " must be", [tmp_path])


def _binary(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    return str(path)


def _text(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# (argv builder, what the one line must contain)
CASES = {
    "missing config": (lambda t: ["-cfg", str(t / "nope.yaml")], "config file not found"),
    "config is a folder": (lambda t: ["-cfg", str(t)], "config file not found"),
    "binary config": (lambda t: ["-cfg", _binary(t)], "not a text"),
    "invalid YAML": (lambda t: ["-cfg", _text(t, "bad.yaml", "a: [1, 2\n")], "not valid YAML"),
    "top-level list": (lambda t: ["-cfg", _text(t, "list.yaml", "- 1\n- 2\n")], "mapping at the top level"),
    "inherit not a file name": (lambda t: ["-cfg", _text(t, "inh.yaml", "inherit: [a]\n")], "'inherit' must be"),
    "circular inherit": (lambda t: ["-cfg", _text(t, "self.yaml", "inherit: self.yaml\n")], "circular"),
    "no model name": (lambda t: ["-cfg", _text(t, "empty.yaml", f"inherit: {ROOT}/configs/default.yaml\n")],
                      "'model.name' is required"),
    "override without =": (lambda t: ["-cfg", TOY, "training.lr"], "expected key.sub=value"),
    "override into a scalar": (lambda t: ["-cfg", TOY, "training.lr.x=1"], "'training.lr' is not a section"),
    "section replaced by a scalar": (lambda t: ["-cfg", TOY, "training=3"], "'training' must be a mapping"),
    "unknown key": (lambda t: ["-cfg", TOY, "training.learning_rate=1"], "unknown config key 'training.learning_rate'"),
    "unknown section": (lambda t: ["-cfg", TOY, "trainig.lr=1"], "unknown config key 'trainig'"),
    "unknown model": (lambda t: ["-cfg", TOY, "model.name=toy_mpl"], "unknown model name 'toy_mpl'"),
    "_schema in a user config": (lambda t: ["-cfg", TOY, "_schema.x=1"], "reserved"),
    "step schedule without every": (lambda t: ["-cfg", TOY, "training.lr_schedule.name=step"], "lr_schedule.every"),
    "best metric the task lacks": (lambda t: ["-cfg", TOY, "training.best_metric=val/acc"], "best_metric 'val/acc'"),
    "batch larger than the data": (lambda t: ["-cfg", TOY, "training.batch_size=100000"], "fewer than training.batch_size"),
    "exp_name ..": (lambda t: ["-cfg", TOY, "-exp_name", ".."], "-exp_name '..'"),
    "exp_name ../x": (lambda t: ["-cfg", TOY, "-exp_name", "../x"], "-exp_name '../x'"),
    "exp_name a/b": (lambda t: ["-cfg", TOY, "-exp_name", "a/b"], "-exp_name 'a/b'"),
    "exp_name empty": (lambda t: ["-cfg", TOY, "-exp_name", ""], "-exp_name ''"),
    "exp_name .": (lambda t: ["-cfg", TOY, "-exp_name", "."], "-exp_name '.'"),
    "exp_root is a file": (lambda t: ["-cfg", TOY, "--exp_root", _text(t, "file", "x")], "--exp_root .*is a file"),
    "exp_root under a file": (lambda t: ["-cfg", TOY, "--exp_root", os.path.join(_text(t, "f2", "x"), "sub")],
                              "--exp_root .*cannot be created"),
    "device tpu": (lambda t: ["-cfg", TOY, "--device", "tpu"], "experiment.device"),
    "data_type human": (lambda t: ["-cfg", TOY, "-data_type", "human"], "-data_type human"),
    "data_type unknown": (lambda t: ["-cfg", TOY, "-data_type", "shapenet"], "-data_type shapenet"),
    "data_type on a dataset without format": (lambda t: ["-cfg", TOY, "-data_type", "onet"], "data.format"),
    "resume_config unknown": (lambda t: ["-cfg", TOY, "--resume_config", "both"], "--resume_config"),
    "missing -cfg": (lambda t: [], "-cfg"),
}
if not torch.cuda.is_available():
    CASES["device cuda without a GPU"] = (lambda t: ["-cfg", TOY, "--device", "cuda"], "--device cuda")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_arguments(tmp_path, capsys, name):
    build, message = CASES[name]
    argv = build(tmp_path)
    if "-exp_name" not in argv and argv:
        argv += ["-exp_name", "x"]
    if "--exp_root" not in argv and argv:
        argv += ["--exp_root", str(tmp_path / "root")]
    run_bad(argv, capsys, message, [tmp_path, os.path.join(ROOT, "experiments")])


def _existing_experiment(tmp_path, latest_bytes=None, state=None):
    exp = tmp_path / "root" / "x"
    (exp / "checkpoints").mkdir(parents=True)
    latest = exp / "checkpoints" / "latest.pt"
    if latest_bytes is not None:
        latest.write_bytes(latest_bytes)
    else:
        save_checkpoint(str(latest), state)
    return exp


def _argv(tmp_path, *extra):
    return ["-cfg", TOY, "-exp_name", "x", "--exp_root", str(tmp_path / "root"), *extra]


def test_empty_checkpoint_file(tmp_path, capsys):
    _existing_experiment(tmp_path, latest_bytes=b"")
    run_bad(_argv(tmp_path), capsys, "latest.pt: is empty", [tmp_path])


def test_garbage_checkpoint_file(tmp_path, capsys):
    _existing_experiment(tmp_path, latest_bytes=b"not a checkpoint at all")
    run_bad(_argv(tmp_path), capsys, "cannot be loaded", [tmp_path])


def test_checkpoint_of_another_model(tmp_path, capsys):
    _existing_experiment(tmp_path, state={"model": {}, "model_name": "pointnet_seg"})
    run_bad(_argv(tmp_path), capsys, "holds a 'pointnet_seg' model", [tmp_path])


def test_resume_with_a_changed_config(tmp_path, capsys):
    cfg = load_config(TOY, ["training.max_steps=2", "training.progress=false"])
    train.train(cfg, str(tmp_path / "root" / "x"))
    capsys.readouterr()
    run_bad(_argv(tmp_path, "training.lr=0.01", "model.hidden=64"), capsys,
            r"different config \(training\.lr: 0\.003 -> 0\.01\).*--resume_config new", [tmp_path])


def test_a_live_run_holds_the_folder(tmp_path, capsys):
    exp = tmp_path / "root" / "x"
    exp.mkdir(parents=True)
    import socket
    (exp / "LOCK").write_text(f"pid: {os.getppid()}\nhost: {socket.gethostname()}\n")   # a live process
    run_bad(_argv(tmp_path), capsys, "in use by another run", [tmp_path])


@pytest.mark.parametrize("name", ["checkpoints", "summary"])
def test_an_output_path_that_is_a_file(tmp_path, capsys, name):
    exp = tmp_path / "root" / "x"
    exp.mkdir(parents=True)
    (exp / name).write_text("in the way")
    run_bad(_argv(tmp_path), capsys, f"{name}: is a file, expected a folder", [tmp_path])


def test_config_yaml_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "root" / "x" / "config.yaml").mkdir(parents=True)
    run_bad(_argv(tmp_path), capsys, "config.yaml: is a folder", [tmp_path])
