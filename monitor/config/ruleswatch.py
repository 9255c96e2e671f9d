"""Hot reload of the rules file: a changed file is used without a restart.

A file that fails to load at start-up stops the worker (bad config fails
fast). A bad edit later keeps the rules that were working and says why, so a
typo at 3 a.m. never switches alerting off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from monitor.config.rules import RuleSet, load_rules
from monitor.errors import ConfigError

log = logging.getLogger(__name__)


class RulesWatcher:
    """Holds the current :class:`RuleSet` and reloads it when the file changes.

    Args:
        path: The rules file (``MONITOR_RULES``).
        on_change: Called with the new rule set after a successful reload.
        bucket_seconds: The worker's count bucket (``Settings.bucket_seconds``),
            for :func:`load_rules`.
        detector_window_seconds: The burst detector's window
            (``Settings.window_seconds``), for :func:`load_rules`.

    Raises:
        ConfigError: If the file does not load at start-up.

    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[RuleSet], None] | None = None,
        *,
        bucket_seconds: int = 60,
        detector_window_seconds: int = 300,
    ) -> None:
        """Load the file now; later changes are picked up by :meth:`check`."""
        self.path = path
        self.on_change = on_change
        self._windows = {
            "bucket_seconds": bucket_seconds,
            "detector_window_seconds": detector_window_seconds,
        }
        self._stamp = self._read_stamp()
        self.current = load_rules(path, **self._windows)
        #: Problems of the last failed reload, empty once a reload succeeds.
        self.problems: list[str] = []

    def __call__(self) -> RuleSet:
        """Return the current rule set."""
        return self.current

    def _read_stamp(self) -> tuple[int, int, int, int] | None:
        # The file is parsed again only when this stamp changes. The inode
        # catches a file replaced by rename (editors, ConfigMap symlink swaps)
        # whose copy kept the old size and modification time.
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev

    def check(self) -> bool:
        """Reload if the file changed; return True if new rules are in use."""
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            rules = load_rules(self.path, **self._windows)
        except ConfigError as exc:
            self.problems = list(exc.problems)
            log.error(
                "rules file %s changed but has errors; keeping the previous rules:"
                "\n  %s",
                self.path,
                "\n  ".join(self.problems),
            )
            return False
        except OSError as exc:
            self.problems = [f"{self.path}: {exc}"]
            log.error(
                "rules file %s unreadable; keeping the previous rules: %s",
                self.path,
                exc,
            )
            return False
        self.current = rules
        self.problems = []
        log.info(
            "rules reloaded from %s: %d topics, %d rules",
            self.path,
            len(rules.topics),
            len(rules.rules),
        )
        if self.on_change is not None:
            self.on_change(rules)
        return True
