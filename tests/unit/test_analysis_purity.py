"""monitor.analysis stays pure: no stream, HTTP or Elasticsearch libraries.

Checked statically, from each module's syntax tree, so that nothing depends
on what happens to be imported already. Modules are discovered with pkgutil,
so a new module under monitor/analysis/ is covered without editing this file.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import pytest

FORBIDDEN = frozenset({"faust", "aiohttp", "elasticsearch", "aiokafka", "mode"})
PACKAGE = "monitor.analysis"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def _discover(package: str, directory: Path) -> dict[str, Path]:
    """Module name -> source file of a package and everything under it."""
    modules = {package: directory / "__init__.py"}
    for info in pkgutil.iter_modules([str(directory)]):
        name = f"{package}.{info.name}"
        if info.ispkg:
            modules.update(_discover(name, directory / info.name))
        else:
            modules[name] = directory / f"{info.name}.py"
    return modules


ROOT = _package_dir("monitor")
MODULES = _discover(PACKAGE, _package_dir(PACKAGE))


def _source_of(module: str) -> Path | None:
    """Source file of a monitor.* module, found on disk without importing."""
    parts = module.split(".")
    if parts[0] != "monitor":
        return None
    base = ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Fully qualified names a module imports (statically, anywhere in it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            # "from monitor import records" imports the module monitor.records.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _is_forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN


def _forbidden_imports(module: str) -> dict[str, list[str]]:
    """Forbidden imports reachable from a module through monitor's own modules."""
    found: dict[str, list[str]] = {}
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        path = _source_of(current)
        if path is None:
            continue
        for name in sorted(_imports(current, path)):
            if _is_forbidden(name):
                found.setdefault(current, []).append(name)
            elif name.startswith("monitor"):
                todo.append(name)
    return found


def test_discovery_finds_the_analysis_modules() -> None:
    expected = {"text", "sentiment", "topics", "evaluation.classification"}
    assert {f"{PACKAGE}.{name}" for name in expected} <= set(MODULES)
    assert all(path.is_file() for path in MODULES.values())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_analysis_module_imports_no_io_library(module: str) -> None:
    assert _forbidden_imports(module) == {}


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import faust\n", "monitor.analysis.x", {"faust"}),
        ("from aiohttp import web\n", "monitor.analysis.x", {"aiohttp", "aiohttp.web"}),
        ("def f():\n    import mode.utils\n", "monitor.analysis.x", {"mode.utils"}),
        (
            "from ..sinks import elasticsearch\n",
            "monitor.analysis.x",
            {"monitor.sinks", "monitor.sinks.elasticsearch"},
        ),
        (
            "from . import text\n",
            "monitor.analysis.x",
            {"monitor.analysis", "monitor.analysis.text"},
        ),
    ],
)
def test_import_scanner_sees_every_form(
    tmp_path: Path, source: str, module: str, expected: set[str]
) -> None:
    path = tmp_path / "x.py"
    path.write_text(source, encoding="utf-8")
    assert _imports(module, path) == expected


def test_checker_follows_monitor_imports_to_forbidden_ones() -> None:
    # monitor.records imports faust, so a module importing it would be impure.
    assert "faust" in _forbidden_imports("monitor.records").get("monitor.records", [])
    assert _forbidden_imports("monitor.errors") == {}
