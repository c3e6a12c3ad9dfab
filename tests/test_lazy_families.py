"""Families load lazily (modules/families/__init__.py FAMILIES -> modules.registry): a script reports a bad flag
or a missing config file without importing any family (nor captum / torchvision / sympy, which cost most of a
start-up), a config imports only the family it names, and the table agrees with what every family registers."""
import glob
import importlib
import json
import os
import subprocess
import sys

import pytest

import modules.families  # noqa: F401  (declares every family's names)
from modules.config import load_config, load_yaml_chain
from modules.families import FAMILIES
from modules.registry import DATASETS, MODELS, REGISTRIES, TASKS, Registry
from modules.utils import ROOT, ShapeLabError

HEAVY = ("captum", "torchvision", "sympy")
SECTIONS = {"model": MODELS, "data": DATASETS, "task": TASKS}

# Runs each script's main as `python script.py ARGS` would, in one interpreter, and prints after each one its
# exit code, the last stderr line, the heavy packages and the family modules imported so far.
RUN_SCRIPTS = r"""
import contextlib, io, json, runpy, sys
sys.path.insert(0, ".")
report = []
for script, args in json.loads(sys.argv[1]):
    sys.argv = [script] + args
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            code = e.code
    report.append({"script": script, "code": code, "stderr": err.getvalue().strip().splitlines()[-1:],
                   "heavy": [m for m in HEAVY if m in sys.modules],
                   "families": sorted(m for m in sys.modules if m.startswith("modules.families."))})
print(json.dumps(report))
"""


def run_python(code, *args):
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bad_input_is_reported_before_any_family_or_heavy_import():
    runs = [("train.py", ["-cfg", "missing.yaml", "-exp_name", "x"]),
            ("train.py", ["-cfg", "configs/toy/regression.yaml", "-exp_name", "x", "--no_such_flag"]),
            ("generate.py", ["-exp_name", "no_such_experiment_lazy_test"]),
            ("evaluate.py", ["-generation_path", "no_such_folder_lazy_test"])]
    report = run_python(f"HEAVY = {HEAVY!r}\n" + RUN_SCRIPTS, json.dumps(runs))
    assert [r["code"] for r in report] == [2, 2, 2, 2], report
    assert "missing.yaml" in report[0]["stderr"][0]
    assert "--no_such_flag" in report[1]["stderr"][0]
    for r in report:     # cumulative: nothing heavy was imported by any of them
        assert r["heavy"] == [] and r["families"] == [], r


def test_a_config_imports_only_the_family_it_names():
    code = (f"import json, sys\nHEAVY = {HEAVY!r}\nimport modules.families\nfrom modules.config import load_config\n"
            "out = []\n"
            "for path in sys.argv[1:]:\n"
            "    load_config(path)\n"
            "    out.append({'families': sorted({m.split('.')[2] for m in sys.modules\n"
            "                                     if m.startswith('modules.families.')}),\n"
            "                'heavy': [m for m in HEAVY if m in sys.modules]})\n"
            "print(json.dumps(out))\n")
    out = run_python(code, "configs/toy/regression.yaml", "configs/occupancy/airnet300.yaml")
    assert out == [{"families": ["toy"], "heavy": []}, {"families": ["occupancy", "toy"], "heavy": []}]


def test_every_family_registers_exactly_the_names_it_declares():
    for family in FAMILIES:
        importlib.import_module(f"modules.families.{family}")
    declared = {kind: {name: f"modules.families.{family}" for family, kinds in FAMILIES.items()
                       for name in kinds.get(kind, ())} for kind in REGISTRIES}
    for kind, registry in REGISTRIES.items():
        registered = {name: registry.registered_by(name) for name in registry.names()}
        assert registered == declared[kind], kind
        assert set(registry._entries) == set(declared[kind]), kind


def test_registry_refuses_a_table_that_drifts():
    registry = Registry("model")
    registry.declare("ghost", "modules.families.toy")          # toy registers no 'ghost' into this registry
    with pytest.raises(RuntimeError, match="did not register model 'ghost'"):
        registry.defaults("ghost")
    with pytest.raises(ValueError, match="not declared"):
        registry.register("undeclared")
    with pytest.raises(ValueError, match="registered by tests.test_lazy_families|registered by test_lazy_families"):
        registry.register("ghost")      # declared for toy, registered from here
    with pytest.raises(ValueError, match="declared in modules.families.toy and in"):
        registry.declare("ghost", "modules.families.svr")
    with pytest.raises(ShapeLabError, match="unknown model name 'ghostt'; did you mean ghost"):
        registry.defaults("ghostt")


TRAIN_CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True)
                       if os.sep + "nst" + os.sep not in p and not p.endswith("default.yaml"))   # nst: run_nst.py's


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: os.path.relpath(p, os.path.join(ROOT, "configs")))
def test_every_config_resolves_its_builders(path):
    raw = load_yaml_chain(path)
    named = {s: (raw.get(s) or {}).get("name") for s in SECTIONS}
    assert named["data"] and named["task"], f"{path} names no data/task"
    cfg = load_config(path)            # imports the families it names, validates every key
    for section, registry in SECTIONS.items():
        name = named[section]
        if name is None:                # a base file (svr/base.yaml) that the per-type files complete
            continue
        assert cfg[section]["name"] == name and callable(registry.builder(name))
        family = registry.registered_by(name).split(".")[2]
        assert name in FAMILIES[family][section]
