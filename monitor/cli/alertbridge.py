"""``monitor alert-bridge``: Alertmanager to DingTalk and Feishu, signed."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("alert-bridge")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The bridge's YAML file (see dashboards/alertmanager/alertbridge.yml).",
)
@click.option("--host", default=None, help="Listen address (else the file's).")
@click.option("--port", type=int, default=None, help="Listen port (else the file's).")
def alert_bridge(config_path: Path, host: str | None, port: int | None) -> None:
    """Take Alertmanager webhooks and post them, signed, to DingTalk and Feishu.

    Runs apart from the workers (a worker may be what is down). Secrets (robot
    URLs, signing secrets, the bearer token Alertmanager sends) are read from
    the files the configuration names.
    """
    import dataclasses
    import logging

    from monitor.ops.alertbridge import BridgeConfigError, load_config, run

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = load_config(config_path)
    except BridgeConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if host is not None:
        config = dataclasses.replace(config, host=host)
    if port is not None:
        config = dataclasses.replace(config, port=port)
    click.echo(
        f"alert bridge on http://{config.host}:{config.port} for "
        + ", ".join(f"/{kind}/{name}" for kind, name in sorted(config.receivers)),
        err=True,
    )
    run(config)
