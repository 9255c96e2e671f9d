"""monitor.stages runs without the stream engine: no Faust, Kafka, HTTP or ES.

The components may use the records (which are Faust *Record* data classes,
decoded and encoded without an app) but import nothing that needs a broker,
an event loop or a server; checked statically, following monitor imports
except through monitor.records.
"""

from __future__ import annotations

import pytest

from tests.unit.test_analysis_purity import (
    FORBIDDEN,
    _discover,
    _imports,
    _package_dir,
    _source_of,
)

PACKAGE = "monitor.stages"
MODULES = _discover(PACKAGE, _package_dir(PACKAGE))
#: The record module imports faust for its Record base class only.
RECORDS = "monitor.records"


def _engine_imports(module: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen or current == RECORDS:
            continue
        seen.add(current)
        path = _source_of(current)
        if path is None:
            continue
        for name in sorted(_imports(current, path)):
            if name.split(".")[0] in FORBIDDEN:
                found.setdefault(current, []).append(name)
            elif name.startswith("monitor"):
                todo.append(name)
    return found


def test_the_stage_components_are_discovered() -> None:
    expected = {"count", "detect", "score", "state", "chain"}
    assert {f"{PACKAGE}.{name}" for name in expected} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_stage_module_needs_no_stream_engine(module: str) -> None:
    assert _engine_imports(module) == {}


def test_the_checker_sees_an_engine_import_behind_a_monitor_module() -> None:
    # The Faust hosts import faust: the checker must notice.
    assert "monitor.pipelines.count" in _engine_imports("monitor.pipelines.count")
