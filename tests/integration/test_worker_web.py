"""The worker's own web server serves /metrics, /api, /console and /ingest only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from monitor.app import create_app
from monitor.local.embedded import free_port
from monitor.settings import Settings
from monitor.web.auth import hash_token

pytestmark = pytest.mark.integration

VIEWER = "view-token"

#: Faust's built-in pages (faust-streaming 0.15), each with and without "/".
FAUST_PAGES = [
    "/",
    "/router/",
    "/router",
    "/router/some-table/get/",
    "/table/",
    "/table",
    "/table/some-table/",
    "/stats/",
    "/graph/",
    "/assignment/",
    "/performance/",
    "/apix",
]


@pytest.fixture
async def worker_web(tmp_path: Path) -> AsyncIterator[tuple[str, web.Application]]:
    """The web server of a worker built by ``create_app``, on a free port.

    The app's aiohttp application is the one ``faust worker`` serves; the
    Kafka and Elasticsearch addresses are never contacted by these requests.
    """
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  - {name: crm-push, kind: webhook, secret: '${SOURCE_CRM}'}\n"
    )
    settings = Settings(
        kafka_url=f"kafka://127.0.0.1:{free_port()}",
        es_url=f"http://127.0.0.1:{free_port()}",
        data_dir=tmp_path / "data",
        api_tokens=f"kibana:viewer:{hash_token(VIEWER)}",
        sources=sources,
    )
    app = create_app(settings, env={"SOURCE_CRM": "s"})
    app.web.init_server()  # Faust's blueprints and views, as on start-up
    runner = web.AppRunner(app.web.web_app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", app.web.web_app
    finally:
        await runner.cleanup()
        await app.monitor_pipeline.posts_sink.close()
        await app.monitor_tickets.store.close()


@pytest.mark.parametrize("path", FAUST_PAGES)
async def test_faust_pages_are_not_served(
    worker_web: tuple[str, web.Application], path: str
) -> None:
    base, _ = worker_web
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "POST"):
            async with session.request(method, base + path) as response:
                assert response.status == 404, (method, path, await response.text())
                body = await response.json()
                assert body == {"error": {"status": 404, "message": "Not Found"}}


async def test_faust_pages_are_switched_off_not_just_hidden(
    worker_web: tuple[str, web.Application],
) -> None:
    _, application = worker_web
    paths = {resource.canonical for resource in application.router.resources()}
    # "/" is Faust's status page, which no setting turns off: the
    # middleware answers it (test_faust_pages_are_not_served).
    assert {path for path in paths if not path.startswith("/api")} == {
        "/metrics",
        "/",
        "/console",  # the on-call console (test_console_static)
        "/ingest",  # webhook sources, POST /ingest/{source} (test_ingest)
    }


async def test_metrics_and_the_api_are_still_served(
    worker_web: tuple[str, web.Application],
) -> None:
    base, _ = worker_web
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/metrics") as response:
            assert response.status == 200
            assert "monitor_faust_" in await response.text()
        async with session.get(base + "/api/openapi.json") as response:
            assert response.status == 200
            assert (await response.json())["servers"] == [{"url": "/api"}]
        async with session.get(base + "/api/tickets") as response:
            assert response.status == 401  # the API asks for a token
        async with session.get(base + "/api/nothing") as response:
            assert response.status == 404  # the API's own JSON 404
        async with session.post(base + "/ingest/crm-push", json={}) as response:
            assert response.status == 401  # a webhook asks for a signature
        async with session.get(base + "/console", allow_redirects=False) as response:
            assert response.status == 308  # the address people type
            assert response.headers["Location"] == "/console/"
