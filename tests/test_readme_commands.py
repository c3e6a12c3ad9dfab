"""The README cannot rot: every `python SCRIPT ...` line in its bash blocks names a script that exists and
flags that script's parser accepts, every config file it names exists, and a few quick commands run as
printed (with tiny settings where the README's own are long)."""
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
PLACEHOLDER = re.compile(r"\.\.\.|\[|\]|<|>|\$|~|\|")


def readme_commands():
    """[(line number, argv)] of `python X.py ...` lines in ```bash blocks (comments stripped)."""
    out, in_bash, pending = [], False, ""
    with open(README) as f:
        for number, line in enumerate(f, 1):
            stripped = line.strip()
            if stripped.startswith("```"):
                in_bash, pending = stripped in ("```bash", "```sh"), ""
                continue
            if not in_bash:
                continue
            if stripped.endswith("\\"):                  # a continued command
                pending += stripped[:-1] + " "
                continue
            stripped, pending = pending + stripped, ""
            command = stripped.split("  #")[0].split(" # ")[0].strip()
            if command.startswith(("python ", ".venv/bin/python ")):
                argv = shlex.split(command)[1:]
                if argv and argv[0] != "-m":
                    out.append((number, argv))
    return out


COMMANDS = readme_commands()


def test_the_readme_has_commands():
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("number,argv", COMMANDS, ids=[f"line{n}" for n, _ in COMMANDS])
def test_readme_command_parses(number, argv):
    script = argv[0]
    assert os.path.isfile(os.path.join(ROOT, script)), f"README line {number}: {script} does not exist"
    for i, arg in enumerate(argv):
        if arg in ("-cfg", "--cfg", "-cfg_file") and i + 1 < len(argv) and not PLACEHOLDER.search(argv[i + 1]):
            assert os.path.isfile(os.path.join(ROOT, argv[i + 1])), f"README line {number}: {argv[i + 1]} missing"
    if any(PLACEHOLDER.search(a) for a in argv[1:]) or not script.endswith(".py") or "/" in script:
        return                                     # a template line (PATH, [...]) or a benchmark: existence only
    module = importlib.import_module(script[:-3])
    if not hasattr(module, "parse_args"):
        return
    stderr = io.StringIO()
    try:
        with redirect_stdout(io.StringIO()), redirect_stderr(stderr):
            module.parse_args(argv[1:])
    except SystemExit as exit_:
        assert exit_.code == 0, f"README line {number}: {' '.join(argv)}: {stderr.getvalue().strip()[-300:]}"


def run(argv, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable] + argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_quick_readme_commands_run(tmp_path):
    """Commands the README prints, run from a scratch folder on tiny settings (the scripts take paths
    relative to the repository, so configs are given absolute)."""
    toy = os.path.join(ROOT, "configs", "toy", "regression.yaml")
    proc = run([os.path.join(ROOT, "train.py"), "-cfg", toy, "-exp_name", "toy", "training.lr=1e-3",
                "model.hidden=128", "training.max_steps=3", "training.progress=false"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert (tmp_path / "experiments" / "toy" / "checkpoints" / "latest.pt").is_file()
    proc = run([os.path.join(ROOT, "preprocess.py"), "parts", "--category", "lamp"], tmp_path)
    assert proc.returncode == 0 and "25 lampshade" in proc.stdout, proc.stderr[-1000:]
