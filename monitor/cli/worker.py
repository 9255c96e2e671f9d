"""``monitor worker``: the Faust worker with every agent."""

from __future__ import annotations

import asyncio
import logging

import click

from monitor.cli.context import (
    configure_logging,
    load_settings,
    resolve_servers,
    run,
)
from monitor.cli.output import console, safe_text
from monitor.errors import MonitorError


@click.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the Faust worker (all agents) against the configured servers.

    With no MONITOR_KAFKA_URL / MONITOR_ES_URL it starts (or joins) the
    embedded noida-db server under the data dir and stops it on exit.
    """
    settings = load_settings(ctx)  # before the heavy imports: a bad value fails fast
    configure_logging(settings.log_level)

    import faust

    from monitor.app import create_app
    from monitor.topics import prepare_topics

    with resolve_servers(settings) as resolved:
        run(prepare_topics(resolved))
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            app = create_app(resolved)
        except MonitorError as exc:
            raise click.ClickException(str(exc)) from None
        console.print(
            f"worker: Kafka {resolved.kafka_url}  Elasticsearch {resolved.es_url}  "
            f"metrics http://{resolved.web_host}:{resolved.web_port}/metrics"
        )
        model = app.monitor_pipeline.scorer.model  # type: ignore[attr-defined]
        logging.getLogger(__name__).info("sentiment model: %s", model.describe())
        console.print(f"worker: sentiment model {safe_text(model.describe())}")
        worker = _stopping_worker(faust.Worker)(app, loglevel=resolved.log_level)
        # Faust's progress spinner sets the root logger to DEBUG so that every
        # record turns it; building those records cost a busy worker ~7% CPU.
        worker.spinner = None
        worker.execute_from_commandline()


def _stopping_worker(base: type) -> type:
    """Return a Faust worker class whose SIGTERM/SIGINT bound the shutdown.

    On the signal the pipeline's retry loops learn that the worker is
    stopping (a batch that cannot finish is abandoned unacknowledged) and a
    clock starts: after ``MONITOR_SHUTDOWN_SECONDS`` the process exits
    whatever is still running (see
    :func:`monitor.pipelines.start_shutdown_clock`).
    """
    from monitor.pipelines.batches import start_shutdown_clock

    class StoppingWorker(base):  # type: ignore[misc, valid-type]
        def _begin_stopping(self) -> None:
            pipeline = self.app.monitor_pipeline
            start_shutdown_clock(pipeline.shutdown, pipeline.settings.shutdown_seconds)

        def _on_sigterm(self) -> None:
            self._begin_stopping()
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            self._begin_stopping()
            super()._on_sigint()

    return StoppingWorker
