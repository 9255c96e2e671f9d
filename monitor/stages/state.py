"""State-log values with their schema version, and the store the stages log to.

The count and merge stages keep their state as keyed entries in a log (a
compacted Kafka topic in production, :class:`~monitor.sinks.statelog.StateLog`;
a dict in tests and backtests, :class:`MemoryStateStore`). Every value is
stored as ``{"schema": N, "state": value}`` so that a later version of the
code can tell old entries from new ones; a value without that envelope was
written before versions and is version 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson

from monitor.errors import MonitorError

#: Version of the state entries this code writes and reads.
STATE_SCHEMA_VERSION = 1
_ENVELOPE = frozenset({"schema", "state"})


class StateSchemaError(MonitorError):
    """A state entry was written by a newer version of the code.

    Attributes:
        key: The entry's key.
        version: Its schema version.

    """

    def __init__(self, key: str, version: object) -> None:
        """Name the entry and its version."""
        super().__init__(
            f"state entry {key!r} has schema {version!r}; this worker reads "
            f"{STATE_SCHEMA_VERSION} (upgrade every worker: README, Upgrades)"
        )
        self.key = key
        self.version = version


def encode_state(value: Any) -> bytes:
    """Return a state value as the versioned JSON the log stores."""
    return orjson.dumps({"schema": STATE_SCHEMA_VERSION, "state": value})


def decode_state(key: str, raw: bytes) -> Any:
    """Inverse of :func:`encode_state`; an unversioned value is version 1.

    Raises:
        StateSchemaError: The value is of another (newer) version.
        orjson.JSONDecodeError: It is not JSON.

    """
    data = orjson.loads(raw)
    if isinstance(data, dict) and data.keys() == _ENVELOPE:
        version = data["schema"]
        if version != STATE_SCHEMA_VERSION:
            raise StateSchemaError(key, version)
        return data["state"]
    return data


class StateStore(Protocol):
    """Where a stage logs its state: one keyed log per input partition."""

    async def entries(self, partition: int) -> list[tuple[str, Any]]:
        """Return the partition's entries, latest value per key, decoded."""
        ...

    async def write_in_order(
        self,
        partition: int,
        writes: Mapping[str, Any | None],
        commits: Callable[[str], bool],
    ) -> None:
        """Log ``writes`` (``None`` deletes): values, then commits, then deletes."""
        ...


def write_steps(
    writes: Mapping[str, Any | None], commits: Callable[[str], bool]
) -> list[dict[str, Any | None]]:
    """Split writes into the three steps a store acknowledges one after another.

    A restore trusts an entry for which ``commits(key)`` is true (the
    ledger's meta, the merge's progress) only as far as everything it covers:
    so those go after every other value has landed, and the deletes of what
    they replace go last.
    """
    values = {k: v for k, v in writes.items() if v is not None and not commits(k)}
    marks = {k: v for k, v in writes.items() if v is not None and commits(k)}
    deletes = {k: v for k, v in writes.items() if v is None}
    return [step for step in (values, marks, deletes) if step]


class MemoryStateStore:
    """A :class:`StateStore` in a dict, for tests and one-process backtests.

    Values go through :func:`encode_state` and back, so what a stage restores
    from it is exactly what it would restore from the Kafka log.
    """

    def __init__(self) -> None:
        """Start empty."""
        self.logs: dict[int, dict[str, bytes]] = {}

    async def entries(self, partition: int) -> list[tuple[str, Any]]:
        """Return the partition's entries, decoded."""
        log = self.logs.get(partition, {})
        return [(key, decode_state(key, raw)) for key, raw in log.items()]

    async def write_in_order(
        self,
        partition: int,
        writes: Mapping[str, Any | None],
        commits: Callable[[str], bool],
    ) -> None:
        """Apply ``writes`` in the order a Kafka log acknowledges them."""
        log = self.logs.setdefault(partition, {})
        for step in write_steps(writes, commits):
            for key, value in step.items():
                if value is None:
                    log.pop(key, None)
                else:
                    log[key] = encode_state(value)
