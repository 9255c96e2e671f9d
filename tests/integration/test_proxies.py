"""Outbound HTTP through a forward proxy, as behind a corporate firewall.

A real forward proxy (an aiohttp server that takes absolute-form requests,
checks ``Proxy-Authorization`` and forwards them) and a real origin (a feed
and a webhook receiver) run on free ports of 127.0.0.1. With
``MONITOR_HTTP_PROXY_FROM_ENV`` on, a polled source and a notification
channel go through the proxy named by ``HTTP_PROXY``, except to the hosts of
``NO_PROXY``; off (the default), they go direct whatever the environment
says.
"""

from __future__ import annotations

import base64
import pathlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from monitor.config.rules import Channel
from monitor.local.embedded import free_port
from monitor.settings import Settings
from monitor.sinks.notifiers import Notifier
from monitor.sources.config import RssSource, SourcesConfig
from monitor.sources.http import FetchError, HttpClient
from monitor.sources.rss import RssFetcher
from monitor.sources.runner import SourcePollers, build_poller
from tests.unit.test_notifiers import make_ticket

pytestmark = pytest.mark.integration

PROXY_USER, PROXY_PASSWORD = "corp", "proxy-pa55"
FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><guid>1</guid><title>\xe6\x8a\x95\xe8\xaf\x89</title><description>
\xe5\xae\xa2\xe6\x9c\x8d\xe4\xb8\x8d\xe5\x9b\x9e</description>
<pubDate>Sun, 01 Feb 2026 10:00:00 GMT</pubDate></item></channel></rss>"""


@dataclass
class Network:
    """The origin's and the proxy's base URLs and what each one saw."""

    origin: str = ""
    proxy_port: int = 0
    forwarded: list[str] = field(default_factory=list)
    proxy_auth: list[str | None] = field(default_factory=list)
    direct: list[str] = field(default_factory=list)
    hooks: list[bytes] = field(default_factory=list)

    def proxy_url(self, *, credentials: bool = True) -> str:
        auth = f"{PROXY_USER}:{PROXY_PASSWORD}@" if credentials else ""
        return f"http://{auth}127.0.0.1:{self.proxy_port}"


@pytest.fixture
async def network() -> AsyncIterator[Network]:
    net = Network()

    async def feed(request: web.Request) -> web.Response:
        net.direct.append(request.headers.get("Via", "direct"))
        return web.Response(body=FEED, content_type="application/rss+xml")

    async def hook(request: web.Request) -> web.Response:
        net.direct.append(request.headers.get("Via", "direct"))
        net.hooks.append(await request.read())
        return web.json_response({"ok": True})

    origin = web.Application()
    origin.router.add_get("/feed.xml", feed)
    origin.router.add_post("/hooks/ops", hook)

    expected = "Basic " + base64.b64encode(
        f"{PROXY_USER}:{PROXY_PASSWORD}".encode()
    ).decode("ascii")

    async def forward(request: web.Request) -> web.StreamResponse:
        # A forward proxy receives the absolute URL as the request target.
        net.forwarded.append(str(request.url))
        net.proxy_auth.append(request.headers.get("Proxy-Authorization"))
        if request.headers.get("Proxy-Authorization") != expected:
            return web.Response(status=407, headers={"Proxy-Authenticate": "Basic"})
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "proxy-authorization", "proxy-connection")
        }
        headers["Via"] = "1.1 test-proxy"
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=await request.read(),
            ) as answer,
        ):
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )

    proxy = web.Application()
    proxy.router.add_route("*", "/{tail:.*}", forward)
    runners = []
    for app, port in ((origin, free_port()), (proxy, free_port())):
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        if app is origin:
            net.origin = f"http://127.0.0.1:{port}"
        else:
            net.proxy_port = port
    yield net
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch, network: Network) -> Network:
    """The environment names the proxy, with credentials; nothing bypasses it."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", network.proxy_url())
    return network


def _rss(net: Network) -> RssSource:
    return RssSource.model_validate(
        {
            "name": "forum",
            "kind": "rss",
            "url": net.origin + "/feed.xml",
            "interval": "1m",
        }
    )


async def test_a_polled_source_goes_through_the_proxy_when_told(
    proxied: Network,
) -> None:
    poller = build_poller(_rss(proxied), trust_env=True)
    fetcher = poller.fetcher
    assert isinstance(fetcher, RssFetcher) and fetcher.client.trust_env
    try:
        page = await fetcher.fetch(None)
    finally:
        await fetcher.client.close()
    assert len(page.posts) == 1 and "客服不回" in page.posts[0].text
    assert proxied.forwarded == [proxied.origin + "/feed.xml"]
    assert proxied.direct == ["1.1 test-proxy"]  # the origin saw the proxy's hop


async def test_by_default_the_environment_s_proxy_is_ignored(proxied: Network) -> None:
    poller = build_poller(_rss(proxied))
    fetcher = poller.fetcher
    assert isinstance(fetcher, RssFetcher) and not fetcher.client.trust_env
    try:
        page = await fetcher.fetch(None)
    finally:
        await fetcher.client.close()
    assert page.posts
    assert proxied.forwarded == [] and proxied.direct == ["direct"]


async def test_no_proxy_hosts_go_direct(
    proxied: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = HttpClient("forum", trust_env=True, retries=0)
    try:
        answer = await client.get(proxied.origin + "/feed.xml")
    finally:
        await client.close()
    assert answer.status == 200
    assert proxied.forwarded == [] and proxied.direct == ["direct"]


async def test_a_refused_or_dead_proxy_fails_clearly_without_its_password(
    proxied: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wrong credentials: the proxy answers 407, a plain failure of the poll.
    monkeypatch.setenv(
        "HTTP_PROXY", proxied.proxy_url().replace(PROXY_PASSWORD, "wrong-pa55")
    )
    client = HttpClient("forum", trust_env=True, retries=0)
    try:
        with pytest.raises(FetchError) as refused:
            await client.get(proxied.origin + "/feed.xml")
    finally:
        await client.close()
    assert "407" in str(refused.value) and "wrong-pa55" not in str(refused.value)
    # No proxy listening: a connection error, retried, then reported.
    monkeypatch.setenv(
        "HTTP_PROXY", f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{free_port()}"
    )
    client = HttpClient("forum", trust_env=True, retries=1, backoff_base=0.01)
    try:
        with pytest.raises(FetchError) as dead:
            await client.get(proxied.origin + "/feed.xml")
    finally:
        await client.close()
    assert PROXY_PASSWORD not in str(dead.value)
    assert PROXY_PASSWORD not in repr(dead.value)
    assert proxied.direct == []  # nothing went round the proxy


@pytest.mark.parametrize("trust_env", [True, False])
async def test_a_webhook_channel_follows_the_setting(
    proxied: Network, trust_env: bool
) -> None:
    channel = Channel("ops", "webhook", {"url": proxied.origin + "/hooks/ops"})
    notifier = Notifier({"ops": channel}, {}, retries=0, trust_env=trust_env)
    async with notifier:
        delivery = await notifier.send(
            "ops", make_ticket(), "opened", delivery_id="n-1@ops"
        )
    assert delivery.status == "sent", delivery.error
    assert len(proxied.hooks) == 1
    if trust_env:
        assert proxied.forwarded == [proxied.origin + "/hooks/ops"]
        assert proxied.direct == ["1.1 test-proxy"]
    else:
        assert proxied.forwarded == [] and proxied.direct == ["direct"]


def test_the_setting_is_off_unless_set() -> None:
    assert Settings.load({}).http_proxy_from_env is False
    on = Settings.load({"MONITOR_HTTP_PROXY_FROM_ENV": "true"})
    assert on.http_proxy_from_env is True


@pytest.mark.parametrize("setting", ["true", "false"])
def test_the_worker_s_pollers_take_the_setting(
    setting: str, tmp_path: pathlib.Path, network: Network
) -> None:
    settings = Settings.load(
        {
            "MONITOR_KAFKA_URL": f"kafka://127.0.0.1:{free_port()}",
            "MONITOR_ES_URL": f"http://127.0.0.1:{free_port()}",
            "MONITOR_HTTP_PROXY_FROM_ENV": setting,
        }
    )
    source = _rss(network)
    config = SourcesConfig(
        path=tmp_path / "sources.yaml", webhooks={}, pollers={"forum": source}
    )
    service = SourcePollers(settings, config, leases=False)  # connects nothing yet
    fetcher = service.runner.poller_factory(source).fetcher
    assert isinstance(fetcher, RssFetcher)
    assert fetcher.client.trust_env is (setting == "true")
