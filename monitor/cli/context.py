"""What every ``monitor`` command starts from: settings, logging, servers.

Settings come from ``--config`` (kept on the click context by the root
group), ``MONITOR_*`` variables and per-command overrides; a bad value is a
usage error (exit 2). Commands that talk to Kafka or Elasticsearch get the
addresses from :func:`resolve_servers` and run their coroutine with
:func:`run`, which turns a :class:`~monitor.errors.MonitorError` into a clean
error (exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import click

from monitor.cli.output import safe_text
from monitor.errors import MonitorError
from monitor.local.embedded import EmbeddedServers
from monitor.settings import Settings


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def load_settings(ctx: click.Context, **overrides: Any) -> Settings:
    """Load settings from --config, MONITOR_* and CLI overrides; exit 2 if bad."""
    try:
        return Settings.load(config_file=ctx.obj.get("config"), **overrides)
    except MonitorError as exc:
        raise click.UsageError(safe_text(exc, markup=False)) from None


@contextlib.contextmanager
def resolve_servers(settings: Settings, *, start: bool = True) -> Iterator[Settings]:
    """Yield settings with server addresses.

    With no addresses configured: join the embedded server running under the
    data dir, or start one when ``start`` (long-running commands only). A
    one-shot command must not own it: stopping it on exit would pull the
    server from under a worker that joined it meanwhile.
    """
    if not settings.embedded:
        yield settings
        return
    if not start:
        running = EmbeddedServers(settings.data_dir).running()
        if running is None:
            raise click.ClickException(
                f"no embedded server is running under {settings.data_dir.resolve()}: "
                "start `monitor worker` (or `monitor demo`) first, from the same "
                "directory or with the same MONITOR_DATA_DIR, or set "
                "MONITOR_KAFKA_URL and MONITOR_ES_URL"
            )
        yield settings.model_copy(
            update={"kafka_url": running.kafka_url, "es_url": running.es_url}
        )
        return
    servers = EmbeddedServers(settings.data_dir)
    try:
        addresses = servers.start()
    except MonitorError as exc:
        raise click.ClickException(safe_text(exc, markup=False)) from None
    try:
        yield settings.model_copy(
            update={
                "kafka_url": addresses.kafka_url,
                "es_url": addresses.es_url,
                # One worker per embedded server: a fixed static-membership id
                # lets a crashed worker's successor take its place at once.
                "instance_id": settings.instance_id or f"{settings.app_id}-local",
            }
        )
    finally:
        servers.stop()


def run(coro: Any) -> Any:
    """Run a coroutine, turning MonitorError into a clean CLI error."""
    try:
        return asyncio.run(coro)
    except MonitorError as exc:
        raise click.ClickException(safe_text(exc, markup=False)) from None
