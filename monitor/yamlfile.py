"""Reading YAML config files so that errors can name the line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file and the line of every key and list item in it.

    Attributes:
        path: Where it was read from.
        data: The parsed document.
        lines: 1-based line of each location, keyed by the path of keys and
            list indexes that leads to it (``("topics", "空调", "keywords", 0)``).

    """

    path: Path
    data: Any
    lines: dict[tuple[Any, ...], int]

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


def load_yaml(path: Path) -> YamlDocument:
    """Parse a YAML file, remembering the line of every key.

    Raises:
        ConfigError: If the file cannot be read or is not valid YAML; the
            message names the file and line.

    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not UTF-8 (byte {exc.start}); save it as UTF-8"]
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _collect_lines(node, (), lines, yaml.SafeLoader(""))
    return YamlDocument(path=path, data=data, lines=lines)


def _collect_lines(
    node: yaml.Node, prefix: tuple[Any, ...], lines: dict, loader: yaml.SafeLoader
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
