"""The ``monitor`` command line: the root group and its commands.

One module per command group: :mod:`~monitor.cli.worker`,
:mod:`~monitor.cli.replay`, :mod:`~monitor.cli.backfill`,
:mod:`~monitor.cli.deadletters`, :mod:`~monitor.cli.evaluate`,
:mod:`~monitor.cli.backtest`, :mod:`~monitor.cli.demo`,
:mod:`~monitor.cli.tickets`, :mod:`~monitor.cli.rules`,
:mod:`~monitor.cli.tokens`, :mod:`~monitor.cli.alertbridge`,
:mod:`~monitor.cli.dashboards`, :mod:`~monitor.cli.report` and
:mod:`~monitor.cli.sources`. They share
:mod:`~monitor.cli.output` (what is printed passes through
``safe_text``/``dump_json``) and
:mod:`~monitor.cli.context` (settings, logging, server addresses). Heavy
modules (faust, Elasticsearch, snownlp) are imported inside the commands
that use them, so that ``monitor --help`` and light commands start quickly.
"""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.alertbridge import alert_bridge
from monitor.cli.backfill import backfill
from monitor.cli.backtest import backtest
from monitor.cli.dashboards import dashboards_group
from monitor.cli.deadletters import dead_letters
from monitor.cli.demo import demo
from monitor.cli.evaluate import evaluate
from monitor.cli.replay import replay
from monitor.cli.report import report
from monitor.cli.rules import rules_group
from monitor.cli.sources import sources_group
from monitor.cli.tickets import tickets_group
from monitor.cli.tokens import tokens_group
from monitor.cli.train import train
from monitor.cli.worker import worker


@click.group()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML settings file (else $MONITOR_CONFIG).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Streaming public-opinion monitor: score, index and alert on posts."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


for _command in (
    worker,
    replay,
    dead_letters,
    evaluate,
    demo,
    tickets_group,
    rules_group,
    tokens_group,
    backtest,
    backfill,
    alert_bridge,
    dashboards_group,
    report,
    sources_group,
    train,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(obj={})
