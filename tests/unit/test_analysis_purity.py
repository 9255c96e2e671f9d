"""monitor.analysis stays pure: no stream, HTTP or Elasticsearch libraries, no files.

Checked statically, from each module's syntax tree, so that nothing depends
on what happens to be imported already. Modules are discovered with pkgutil,
so a new module under monitor/analysis/ is covered without editing this file.

File I/O belongs to the loaders (cli/datasets.py, config/, sources/), which
pass data in: an analysis module may not call ``open``, the ``Path`` or file
methods that read or write (``read_text``, ``write_bytes``, ``glob``...),
``json.load``-style functions on file objects, nor import a module whose
purpose is files (``csv``, ``pathlib``, ``os``, ``io``, ``gzip``...). Imports
under ``if TYPE_CHECKING:`` are annotations only and are allowed.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import pytest

FORBIDDEN = frozenset({"faust", "aiohttp", "elasticsearch", "aiokafka", "mode"})
PACKAGE = "monitor.analysis"

#: Methods and functions, called by their last name, that touch the file system.
FILE_CALLS = frozenset(
    {
        "open",
        "read_text",
        "read_bytes",
        "write_text",
        "write_bytes",
        "iterdir",
        "glob",
        "rglob",
        "mkdir",
        "rmdir",
        "unlink",
        "touch",
    }
)
#: Module functions that read or write a file object, by qualified name.
FILE_FUNCTIONS = frozenset(
    f"{module}.{function}"
    for module in ("json", "marshal", "pickle")
    for function in ("load", "dump")
)
#: Modules whose purpose is files (os also holds the environment: settings.py's).
FILE_MODULES = frozenset(
    {
        "csv",
        "pathlib",
        "os",
        "io",
        "shutil",
        "tempfile",
        "glob",
        "fileinput",
        "gzip",
        "bz2",
        "lzma",
        "zipfile",
        "tarfile",
    }
)


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


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """Nodes inside ``if TYPE_CHECKING:`` blocks (annotations, never run)."""
    nodes: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        }:
            for child in node.body:
                nodes.update(ast.walk(child))
    return nodes


def _file_access(path: Path) -> list[str]:
    """Each place a module touches files: ``line N: what``, in line order."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    annotations_only = _type_checking_only(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if node in annotations_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FILE_MODULES:
                    found.append((node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] in FILE_MODULES:
                found.append((node.lineno, f"from {node.module} import"))
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            last = called.rpartition(".")[2]
            if last in FILE_CALLS or called in FILE_FUNCTIONS:
                found.append((node.lineno, f"{called}()"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_analysis_module_does_no_file_io(module: str) -> None:
    assert _file_access(MODULES[module]) == []


def test_the_sentiment_models_are_read_by_the_loader() -> None:
    # The scanner would see the reading if it came back into analysis: it
    # sees it in the loader that now does it for the sentiment modules.
    assert {
        f"{PACKAGE}.sentiment.snowfast",
        f"{PACKAGE}.sentiment.model",
    } <= set(MODULES)
    found = _file_access(ROOT / "config" / "models.py")
    assert any("marshal" in what for what in found)
    assert any("open()" in what for what in found)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("with open(p) as f:\n    pass\n", ["line 1: open()"]),
        ("text = path.read_text()\n", ["line 1: path.read_text()"]),
        ("data = Path(p).read_bytes()\n", ["line 1: Path(p).read_bytes()"]),
        ("out.write_text('x')\n", ["line 1: out.write_text()"]),
        ("f = gzip.open(p)\n", ["line 1: gzip.open()"]),
        ("with path.open() as f:\n    pass\n", ["line 1: path.open()"]),
        ("files = sorted(d.glob('*.csv'))\n", ["line 1: d.glob()"]),
        ("x = json.load(f)\n", ["line 1: json.load()"]),
        ("x = marshal.load(f)\n", ["line 1: marshal.load()"]),
        ("import csv\n", ["line 1: import csv"]),
        ("import os.path\n", ["line 1: import os.path"]),
        ("from pathlib import Path\n", ["line 1: from pathlib import"]),
        ("def f():\n    import io\n", ["line 2: import io"]),
        ("x = json.loads(s)\n", []),
        ("y = text.replace('a', 'b')\n", []),
        ("self._open(t)\n", []),
        (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pathlib import Path\n",
            [],
        ),
    ],
)
def test_file_access_scanner_sees_every_form(
    tmp_path: Path, source: str, found: list[str]
) -> None:
    path = tmp_path / "x.py"
    path.write_text(source, encoding="utf-8")
    assert _file_access(path) == found


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
