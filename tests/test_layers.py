"""The package is built in layers: every import points down, lazy imports inside functions too.

The imports are read from the source text (ast), not from `sys.modules`, so an import that Python
would run only inside a function still counts: it hides a circle from Python, not from a reader.
A package's `__init__` re-exporting its own modules is not counted as an arrow to them.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "toymodels"


def _module(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement may refer to (a module, or a name inside one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).rstrip(".")
        else:
            base = node.module or ""
        return [f"{base}.{a.name}" for a in node.names]
    return []


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, over every .py file of the package `root`."""
    paths = {_module(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in paths}
    for module, path in paths.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for name in _imported(node, module, is_package):
                while name and name not in paths:  # `from a.b import f` refers to module a.b
                    name = name.rpartition(".")[0]
                if not name or name == module:
                    continue
                if is_package and name.startswith(module + "."):
                    continue
                graph[module].add(name)
    return graph


def test_the_package_has_no_import_circles():
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")
    assert "toymodels.config" in order and "toymodels.sweep" in order


def test_the_checker_sees_a_lazy_import_circle(tmp_path):
    """The check must fail on the pattern it guards against: a config importing its trainer."""
    pkg = tmp_path / "toymodels"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "config.py").write_text("def trainer():\n    from toymodels.train import make\n")
    (pkg / "train.py").write_text("from toymodels.config import trainer\n")
    assert import_graph(pkg)["toymodels.config"] == {"toymodels.train"}
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(import_graph(pkg)).static_order())


@pytest.mark.parametrize("config", ["toymodels.config", "toymodels.sae.config"])
def test_configs_import_no_trainer_and_no_sweep(config):
    below = set()
    todo, graph = [config], import_graph()
    while todo:  # everything the config reaches, directly or not
        for m in graph[todo.pop()] - below:
            below.add(m)
            todo.append(m)
    assert not below & {"toymodels.train", "toymodels.sae.train", "toymodels.trainers",
                        "toymodels.sweep", "toymodels.runner", "toymodels.loop"}


def readme_layers() -> dict[str, int]:
    """{module: layer} from the README's "How the code is laid out" table."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("### How the code is laid out", 1)[1].split("\n\n| module |", 1)[0]
    layers = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            for name in cells[1].split(","):
                name = name.strip().strip("`")
                layers["toymodels" if name == "toymodels" else f"toymodels.{name}"] = int(cells[0])
    return layers


def _layer(module: str, layers: dict[str, int]) -> int:
    """The layer of a module: that of the longest listed name it is, or sits inside."""
    name = module
    while name not in layers:
        if "." not in name:
            raise AssertionError(f"{module} is in no layer of the README's table")
        name = name.rpartition(".")[0]
    return layers[name]


def test_every_import_points_down_the_readme_layers():
    layers = readme_layers()
    assert len(set(layers.values())) >= 6, layers
    upward = [f"{a} (layer {_layer(a, layers)}) imports {b} (layer {_layer(b, layers)})"
              for a, targets in import_graph().items() for b in sorted(targets)
              if _layer(b, layers) > _layer(a, layers)]
    assert not upward, "\n".join(upward)
