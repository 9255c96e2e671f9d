"""``monitor dashboards install``: the Kibana dashboards and the index templates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from monitor.ops.kibana import ImportRequest
    from monitor.settings import Settings


@click.group("dashboards")
def dashboards_group() -> None:
    """Kibana dashboards for PR teams and on-call staff."""


@dashboards_group.command("install")
@click.option(
    "--kibana",
    "kibana_url",
    required=True,
    help="Kibana's URL, e.g. http://localhost:5601.",
)
@click.option("--space", default=None, help="Kibana space id (else the default space).")
@click.option(
    "--api-key",
    default=None,
    help="Kibana API key (the encoded id:key), sent as 'Authorization: ApiKey'.",
)
@click.option(
    "--api-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the Kibana API key from this file (keeps it out of the process list).",
)
@click.option(
    "--es",
    "es_url",
    default=None,
    help="Elasticsearch URL for the index templates (else MONITOR_ES_URL; "
    "with neither they are not checked).",
)
@click.option(
    "--topics",
    "create_topics",
    is_flag=True,
    help="Also create the Kafka topics (MONITOR_KAFKA_URL) that are missing, "
    "with MONITOR_TOPIC_PARTITIONS partitions, as a worker does at start.",
)
@click.option(
    "--objects",
    "objects_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of the *.ndjson saved objects (default: dashboards/kibana).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Seconds per request.",
)
@click.pass_context
def install(
    ctx: click.Context,
    kibana_url: str,
    space: str | None,
    api_key: str | None,
    api_key_file: Path | None,
    es_url: str | None,
    create_topics: bool,
    objects_dir: Path | None,
    timeout: float,
) -> None:
    """Import the saved objects into Kibana, overwriting; put missing templates.

    Data views (posts, window counts, bursts, tickets, ticket events) point at
    MONITOR_INDEX_PREFIX's indices. Each file goes through Kibana's saved
    objects import API; an object Kibana refuses is listed with its reason
    and the command exits 1. With --topics, the Kafka topics are made first
    (a stack's one-shot set-up: topics, index templates, dashboards).
    """
    from monitor.cli.context import load_settings, run
    from monitor.ops import kibana

    if api_key is not None and api_key_file is not None:
        raise click.UsageError("give --api-key or --api-key-file, not both")
    if api_key_file is not None:
        api_key = api_key_file.read_text(encoding="utf-8").strip()
    settings = load_settings(ctx)
    if create_topics and settings.kafka_url is None:
        raise click.UsageError("--topics needs MONITOR_KAFKA_URL")
    try:
        files = kibana.with_index_prefix(
            kibana.load_objects(objects_dir or kibana.default_objects_dir()),
            settings.index_prefix,
        )
        requests = [
            kibana.build_import_request(kibana_url, f, space=space, api_key=api_key)
            for f in files
        ]
    except kibana.InstallError as exc:
        raise click.UsageError(str(exc)) from None
    es = es_url or settings.es_url
    where = f"Kibana {kibana.redact_url(kibana_url)}"
    if space is not None:
        where += f" space {space}"
    if create_topics:
        run(_create_topics(settings, timeout=timeout))
    failed = run(
        _install(
            requests,
            [f.name for f in files],
            kibana_where=where,
            es_url=es,
            es_api_key=settings.es_api_key,
            templates=_templates(settings) if es else {},
            timeout=timeout,
        )
    )
    if failed:
        ctx.exit(1)


async def _create_topics(settings: Settings, *, timeout: float) -> None:
    """Create the missing topics (waiting up to ``timeout`` s for Kafka); say so."""
    from monitor.cli.output import safe_text
    from monitor.topics import bootstrap_servers, prepare_topics, topic_partitions

    assert settings.kafka_url is not None
    await prepare_topics(settings, timeout=timeout)
    partitions = topic_partitions(settings)
    listed = ", ".join(f"{name} ({count})" for name, count in partitions.items())
    click.echo(
        safe_text(
            f"Kafka {bootstrap_servers(settings.kafka_url)}: topics present "
            f"(partitions; replicas {settings.topic_replicas}): {listed}",
            markup=False,
        )
    )


def _templates(settings: Settings) -> dict[str, dict[str, Any]]:
    from monitor.app import index_templates
    from monitor.sinks.elasticsearch.templates import ticket_index_templates

    return {
        **index_templates(settings),
        **ticket_index_templates(settings.index_prefix),
    }


async def _install(
    requests: list[ImportRequest],
    names: list[str],
    *,
    kibana_where: str,
    es_url: str | None,
    es_api_key: str | None,
    templates: dict[str, dict[str, Any]],
    timeout: float,
) -> int:
    """Put the templates, import each file; return how many objects failed."""
    import aiohttp

    from monitor.cli.output import safe_text
    from monitor.ops import kibana

    def say(line: str, *, err: bool = False) -> None:
        click.echo(safe_text(line, markup=False), err=err)

    if es_url is None:
        say(
            "Elasticsearch: no address (--es or MONITOR_ES_URL): "
            "index templates not checked",
            err=True,
        )
    else:
        where = kibana.redact_url(es_url)
        done = await kibana.ensure_index_templates(
            es_url, templates, api_key=es_api_key, timeout=timeout
        )
        for result in done:
            state = "created" if result.created else "already present"
            say(f"Elasticsearch {where}: index template {result.name} {state}")
    failed = 0
    async with aiohttp.ClientSession() as session:
        for name, request in zip(names, requests, strict=True):
            outcome = await kibana.send_import(session, request, timeout=timeout)
            where = kibana_where
            for warning in outcome.warnings:
                say(f"{where}: {name}: warning: {warning}", err=True)
            if outcome.success:
                say(f"{where}: {name}: {outcome.success_count} objects imported")
                continue
            failed += max(len(outcome.errors), 1)
            say(
                f"{where}: {name}: {outcome.success_count} imported, "
                f"{len(outcome.errors)} refused:",
                err=True,
            )
            for error in outcome.errors:
                say(f"  {error.describe()}", err=True)
    return failed
