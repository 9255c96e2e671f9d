"""Reading YAML config files so that errors can name the line.

Settings, rules and watch-list files all go through :func:`load_yaml`, which
refuses what a hand-written config never needs and a hostile one can abuse:
files over :data:`MAX_YAML_BYTES`, and anchors and aliases (``&a``, ``*a``,
``<<: *a``), which let a few hundred bytes expand into millions of nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

#: Largest config file read, in bytes (1 MiB): far above any real settings,
#: rules or watch-list file, small enough that parsing it stays quick.
MAX_YAML_BYTES = 1024 * 1024


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file and the line of every key and list item in it.

    Attributes:
        path: Where it was read from.
        data: The parsed document.
        lines: 1-based line of each location, keyed by the path of keys and
            list indexes that leads to it (``("topics", "空调", "keywords", 0)``).
        node: The composed node tree ``data`` was built from (``None`` for an
            empty file), for checks the parsed data cannot make, such as
            duplicate keys.

    """

    path: Path
    data: Any
    lines: dict[tuple[Any, ...], int]
    node: yaml.Node | None = None

    def line_of(self, location: Sequence[Any]) -> int | None:
        """Return the line of a location, or of its nearest enclosing one."""
        location = tuple(location)
        while location:
            if location in self.lines:
                return self.lines[location]
            location = location[:-1]
        return None

    def where(self, location: Sequence[Any]) -> str:
        """Return ``file line N`` (or just the file) for an error message."""
        line = self.line_of(location)
        return f"{self.path} line {line}" if line else str(self.path)


class _AliasFound(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


# PyYAML ships no type stubs (types-PyYAML is not installed), so the base is Any.
class _NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc]
    """The safe loader, refusing anchors and aliases before they are expanded."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _AliasFound(event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(path: Path) -> YamlDocument:
    """Parse a YAML file, remembering the line of every key.

    Raises:
        ConfigError: If the file cannot be read, is larger than
            :data:`MAX_YAML_BYTES`, is not UTF-8, is not valid YAML, uses
            anchors or aliases, or nests too deeply; the message names the
            file and, where there is one, the line.

    """
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(
            [f"{path}: larger than {MAX_YAML_BYTES // 1024} KiB; not a config file?"]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8"]
        ) from None
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            _collect_lines(node, (), lines, yaml.SafeLoader(""))
    except _AliasFound as exc:
        raise ConfigError(
            [
                f"{path} line {exc.mark.line + 1}: "
                "YAML anchors and aliases are not allowed"
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply"]) from None
    finally:
        loader.dispose()
    return YamlDocument(path=path, data=data, lines=lines, node=node)


def _collect_lines(
    node: yaml.Node,
    prefix: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    loader: yaml.SafeLoader,
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            # Key the lines as the parsed data keys them: `2024:` is an int.
            try:
                key = loader.construct_object(key_node, deep=True)
                hash(key)
            except (yaml.YAMLError, TypeError):
                key = key_node.value
            lines[(*prefix, key)] = key_node.start_mark.line + 1
            _collect_lines(value_node, (*prefix, key), lines, loader)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*prefix, index)] = item.start_mark.line + 1
            _collect_lines(item, (*prefix, index), lines, loader)
