"""Scripts start fast (issue 18): `--help` and a bad flag are answered without importing captum (the attribution
methods load it at their first call, modules/attribution/methods.captum_attr), and the scripts that do not build
an image model also without torchvision (which pulls torch._dynamo and sympy). Each script runs in a fresh
interpreter, as `python script.py ARGS` would (tests/test_lazy_families.py's runner)."""
import functools
import json
import os
import subprocess
import sys

import pytest

from modules.attribution import images, methods, pointcloud
from modules.utils import ROOT
from test_lazy_families import RUN_SCRIPTS, run_python

HEAVY = ("captum", "torchvision", "torch._dynamo", "sympy")
BAD = "--no_such_flag"
# script -> arguments that satisfy its required ones, so that the bad flag is what gets reported
SCRIPTS = {"eval_model.py": [], "attribution.py": ["--obj_path", "x.pts"],
           "deepdream3d.py": ["--obj_path", "x.pts", "--obj_cat", "lamp"], "run_nst.py": [], "fit_data.py": [],
           "train_model.py": [], "genren_train.py": ["synth", "out_x"],
           "genren_loadtest.py": ["m.pt", "out_x", "img_recon"], "preprocess.py": ["synth"]}
# their parsers read flag ranges from modules/families/<family>/config.py, and importing that module runs the
# family's __init__.py, which builds its torchvision models: out of reach until those load lazily (and slow: 10-15 s
# each on 2 busy cores)
FAMILY_FLAGS = {"eval_model.py": "svr", "fit_data.py": "svr", "train_model.py": "svr", "genren_loadtest.py": "genren"}
NO_TORCHVISION = pytest.mark.xfail(strict=True, reason="flag specs in a family whose __init__ imports torchvision")


def scripts(*family_marks):
    return [pytest.param(s, marks=(pytest.mark.slow,) + family_marks if s in FAMILY_FLAGS else ())
            for s in sorted(SCRIPTS)]


@functools.lru_cache(maxsize=None)
def startup(script):
    """[--help report, bad-flag report] of one fresh interpreter; `heavy` is cumulative over both."""
    runs = [(script, ["--help"]), (script, SCRIPTS[script] + [BAD])]
    return run_python(f"HEAVY = {HEAVY!r}\n" + RUN_SCRIPTS, json.dumps(runs))


@pytest.mark.parametrize("script", scripts())
def test_help_and_a_bad_flag_load_no_captum(script):
    help_run, bad_run = startup(script)
    assert help_run["code"] == 0, help_run
    assert bad_run["code"] == 2 and BAD in bad_run["stderr"][0], bad_run
    assert "captum" not in bad_run["heavy"], bad_run


@pytest.mark.parametrize("script", scripts(NO_TORCHVISION))
def test_help_and_a_bad_flag_load_no_torchvision_dynamo_sympy(script):
    assert startup(script)[1]["heavy"] == [], startup(script)[1]


@pytest.mark.parametrize("importer", ["modules.engine.attribution",     # what the image families' evaluation uses
                                      pytest.param("modules.families.neural_parts", marks=pytest.mark.slow)])
def test_attribution_loads_captum_at_the_first_call_only(importer):
    code = ("import json, sys, torch\n"
            f"import modules.attribution, modules.attribution.images, {importer}\n"
            "before = 'captum' in sys.modules\n"
            "from modules.attribution import guided_backprop\n"
            "model = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 1), torch.nn.ReLU())\n"
            "result = guided_backprop(model, torch.randn(1, 3, 5), lambda out: out.sum(dim=(1, 2)))\n"
            "print(json.dumps([before, 'captum' in sys.modules, list(result.map.shape)]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [False, True, [1, 5]]


def test_method_names_have_one_definition():
    assert pointcloud.METHODS is methods.POINT_METHODS
    assert images.METHODS is methods.IMAGE_METHODS and images.TARGETS is methods.IMAGE_TARGETS
