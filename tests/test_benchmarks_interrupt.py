"""Ctrl-C in a benchmark ends with one line and exit code 130, as in the scripts at the repository root: every
benchmarks/*.py imports modules.startup before anything heavy (after its sys.path line, if it has one) and runs
main() through modules.utils.cli_main. A source check of every file, and one real SIGINT to a running benchmark."""
import ast
import glob
import os
import signal
import subprocess
import sys

import pytest

from modules.utils import ROOT

BENCHMARKS = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "*.py")))


def _module_imports(tree):
    """[(statement index, top-level module name)] of the module-level imports, in order."""
    out = []
    for i, node in enumerate(tree.body):
        if isinstance(node, ast.Import):
            out += [(i, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.append((i, node.module))
    return out


def _is_sys_path_insert(node):
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "sys.path.insert")


def _decorated_with_cli_main(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            return any("cli_main" in ast.unparse(d) for d in node.decorator_list)
    return False


def _main_block(tree):
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ('__name__ == "__main__"', "__name__ == '__main__'"):
            return node
    return None


def test_there_are_benchmarks():
    assert len(BENCHMARKS) >= 10


@pytest.mark.parametrize("path", BENCHMARKS, ids=[os.path.basename(p) for p in BENCHMARKS])
def test_benchmark_imports_startup_first_and_runs_main_through_cli_main(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    imports = _module_imports(tree)
    project = [(i, name) for i, name in imports if name == "modules" or name.startswith("modules.")]
    assert project and project[0][1] == "modules.startup", \
        f"{os.path.basename(path)}: the first project import must be `import modules.startup`"
    startup_at = project[0][0]
    # nothing but the standard library loads before it (a Ctrl-C during `import torch` would print a traceback)
    heavy = [name for i, name in imports if i < startup_at and name.split(".")[0] not in sys.stdlib_module_names]
    assert not heavy, f"{os.path.basename(path)}: {', '.join(heavy)} imported before modules.startup"
    inserts = [i for i, node in enumerate(tree.body) if _is_sys_path_insert(node)]
    assert all(i < startup_at for i in inserts), f"{os.path.basename(path)}: modules.startup before the sys.path line"
    block = _main_block(tree)
    assert block is not None, f"{os.path.basename(path)}: no `if __name__ == \"__main__\":` block"
    text = ast.unparse(block)
    assert "main()" in text
    assert _decorated_with_cli_main(tree) or "cli_main(main)" in text, \
        f"{os.path.basename(path)}: main() is not run through modules.utils.cli_main"


def test_ctrl_c_in_a_running_benchmark_is_one_line_and_exit_130():
    """render_speed prints its header once main() runs, then times renders for minutes at these settings."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "benchmarks", "render_speed.py"), "--levels", "6",
                             "--sizes", "512", "--repeats", "1000"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("threads=1")     # inside main(): the imports are done
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["interrupted (Ctrl-C)"]
