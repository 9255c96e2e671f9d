"""The console's static page: served at every client route, assets under
/static/, nothing else; strict security headers on every response."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.web.console import CONTENT_SECURITY_POLICY, STATIC_DIR, console_app

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@pytest.fixture
async def client() -> TestClient:
    root = web.Application()
    root.add_subapp("/console", console_app())
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


def assert_secure(response) -> None:  # type: ignore[no-untyped-def]
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_policy_is_the_documented_one() -> None:
    assert CONTENT_SECURITY_POLICY == CSP


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/tickets/T-2026-0001",
        "/console/tickets/%E7%A9%BA%E8%B0%83",
        "/console/board",
        "/console/reviews",
    ],
)
async def test_every_route_serves_the_single_page(
    client: TestClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == "no-store"
    assert_secure(response)
    text = await response.text()
    assert '<main id="main"' in text
    assert 'src="/console/static/console.js"' in text


async def test_action_link_page(client: TestClient) -> None:
    response = await client.get("/console/a")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert_secure(response)
    assert 'src="/console/static/a.js"' in await response.text()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("console.js", "text/javascript"),
        ("a.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("i18n.js", "text/javascript"),
        ("console.css", "text/css"),
    ],
)
async def test_assets(client: TestClient, name: str, content_type: str) -> None:
    response = await client.get(f"/console/static/{name}")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith(content_type)
    assert_secure(response)
    assert await response.read() == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/missing.js",
        "/console/static/..%2Fconsole.py",
        "/console/static/../console.py",
        "/console/static/.hidden",
        "/console/tickets/a/b",
        "/console/nothing",
    ],
)
async def test_nothing_else_is_served(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    assert_secure(response)
    assert (await response.json())["error"]["status"] == 404


async def test_get_only(client: TestClient) -> None:
    response = await client.post("/console/", data=b"x")
    assert response.status == 405
    assert_secure(response)


def test_every_asset_the_pages_name_exists_and_no_inline_code() -> None:
    names = {p.name for p in STATIC_DIR.iterdir()}
    for page in ("index.html", "a.html"):
        text = (STATIC_DIR / page).read_text(encoding="utf-8")
        for ref in re.findall(r'(?:src|href)="/console/static/([^"]+)"', text):
            assert ref in names, (page, ref)
        # The CSP allows no inline script or style.
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), page
        assert "<style" not in text and " style=" not in text, page
    for module in STATIC_DIR.glob("*.js"):
        source = module.read_text(encoding="utf-8")
        for ref in re.findall(r'from "\./([^"]+)"', source):
            assert ref in names, (module.name, ref)
        # Data goes in as text, never as HTML.
        assert "innerHTML" not in source and "outerHTML" not in source, module.name
        assert "insertAdjacentHTML" not in source, module.name


def test_assets_ship_as_package_data() -> None:
    # Every asset is one of the types the glob "web/console/*" ships.
    for path in STATIC_DIR.iterdir():
        assert path.is_file() and not path.name.startswith("."), path
    assert Path(STATIC_DIR).parent.name == "web"
