"""The layer order of modules/, as a test: every project import (also those inside functions) may only
reach its own package or a lower one; project imports inside functions need a comment saying why they
are deferred.

    utils -> geometry -> vis -> data -> {models, losses, metrics} -> {evaluation, attribution}
          -> {registry, config} -> engine -> families -> scripts (train.py, ..., benchmarks/, tests/)

models, losses and metrics sit above data in the order but use only geometry and utils: a network or a
loss does not read files.
"""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOWED = {
    "utils": set(),
    "startup": set(),
    "geometry": {"utils"},
    "vis": {"utils", "geometry"},
    "data": {"utils", "geometry", "vis"},
    "models": {"utils", "geometry"},
    "losses": {"utils", "geometry"},
    "metrics": {"utils", "geometry"},
    "evaluation": {"utils", "geometry", "vis", "data", "metrics"},
    "attribution": {"utils", "geometry", "models"},
    "registry": {"utils"},
    "config": {"utils", "registry"},
    "engine": {"utils", "geometry", "vis", "data", "models", "losses", "metrics", "evaluation", "attribution",
               "registry", "config"},
    "families": {"utils", "geometry", "vis", "data", "models", "losses", "metrics", "evaluation", "attribution",
                 "registry", "config", "engine"},
}


def package_of(module):
    """'modules.geometry.knn' -> 'geometry'; 'modules' itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "modules" else None


def project_imports(path):
    """[(line, imported module, inside a function, the source line)] for every import of modules.*"""
    with open(path) as f:
        source = f.read()
    lines = source.splitlines()
    tree = ast.parse(source)
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module] if child.module != "modules" else [f"modules.{a.name}" for a in child.names]
            else:
                visit(child, inner)
                continue
            for name in names:
                if name == "modules" or name.startswith("modules."):
                    found.append((child.lineno, name, in_function, lines[child.lineno - 1]))
    visit(tree, False)
    return found


def module_files():
    for folder, _, files in os.walk(os.path.join(ROOT, "modules")):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, ROOT)
                parts = rel[:-3].split(os.sep)
                yield path, rel, (parts[1] if len(parts) > 2 else parts[1])


def violations():
    bad = []
    for path, rel, own in module_files():
        if own == "__init__":
            continue
        assert own in ALLOWED, f"{rel}: package '{own}' has no place in the layer order (add it to ALLOWED)"
        for line, name, in_function, text in project_imports(path):
            target = package_of(name)
            if target is None or target == own:
                continue
            if target not in ALLOWED[own]:
                bad.append(f"{rel}:{line}: {own} imports {name} ({target} is not below {own})")
            if in_function and "deferred" not in text:
                bad.append(f"{rel}:{line}: project import inside a function without a 'deferred: why' comment")
    return bad


def test_every_import_goes_down_the_layers():
    bad = violations()
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_the_checker_finds_an_upward_and_a_hidden_import(tmp_path, monkeypatch):
    fake_root = tmp_path
    (fake_root / "modules" / "geometry").mkdir(parents=True)
    (fake_root / "modules" / "geometry" / "bad.py").write_text(
        "from modules.engine.trainer import Trainer\n\ndef f():\n    from modules.utils import ShapeLabError\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", str(fake_root))
    bad = violations()
    assert any("bad.py:1: geometry imports modules.engine.trainer" in b for b in bad)
    assert any("bad.py:4: project import inside a function" in b for b in bad)
