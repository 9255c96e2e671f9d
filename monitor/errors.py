"""Errors raised by monitor, each carrying its data as attributes."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of every error monitor raises on purpose."""


class ConfigError(MonitorError):
    """A setting or config file is invalid.

    Attributes:
        problems: One human-readable line per problem, each naming the
            setting (and the file line where there is one).

    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class InvalidRecordError(MonitorError):
    """A payload could not be decoded or validated as a record.

    Attributes:
        reason: What is wrong, for the dead letter and the operator.

    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SinkUnavailable(MonitorError):
    """A sink cannot take writes now; retry the same batch later.

    Attributes:
        retry_after: Seconds to wait before the next attempt.

    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class BatchAbandoned(MonitorError):
    """The worker is stopping and a batch could not be finished in time.

    The batch must not be acknowledged: it is redelivered after the restart.
    """


class EmbeddedServerError(MonitorError):
    """The embedded noida-db server could not be started or reached."""
