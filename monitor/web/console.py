"""The on-call console: one static page served by the worker at ``/console``.

No build step: ``monitor/web/console/`` holds the HTML, the CSS and plain
JavaScript modules, shipped as package data. The page routes on the client
(history API), so every console path answers the same ``index.html``:
``/console/``, ``/console/tickets/{id}``, ``/console/board`` and
``/console/reviews``. ``/console/a`` is the page of one-tap action links
(its token travels in the URL fragment, never to the server). Assets are
under ``/console/static/``.

Every response carries a strict Content-Security-Policy (scripts, styles
and connections from this origin only, no framing), ``Referrer-Policy:
no-referrer`` and ``X-Content-Type-Options: nosniff``; HTML is
``Cache-Control: no-store``. The page reads its data from ``/api`` with the
bearer token the user signs in with (kept in ``sessionStorage``).

Mount with ``web_app.add_subapp("/console", console_app())``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import web

#: The page's files, shipped in the wheel.
STATIC_DIR = Path(__file__).resolve().parent / "console"

#: The Content-Security-Policy of every console response.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)

#: Headers on every console response.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

#: Content types of the asset files (by suffix); others are not served.
CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

#: Client-side routes that answer the single page.
PAGE_ROUTES = ("/", "/tickets/{ticket_id}", "/board", "/reviews")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _file_response(path: Path) -> web.Response:
    content_type = CONTENT_TYPES[path.suffix]
    headers = {"Content-Type": content_type}
    if path.suffix == ".html":
        headers["Cache-Control"] = "no-store"
    else:
        headers["Cache-Control"] = "no-cache"
    return web.Response(body=path.read_bytes(), headers=headers)


def _not_found() -> web.Response:
    return web.json_response(
        {"error": {"status": 404, "message": "Not Found"}},
        status=404,
        headers={"Cache-Control": "no-store"},
    )


async def _index(request: web.Request) -> web.Response:
    return _file_response(STATIC_DIR / "index.html")


async def _action_page(request: web.Request) -> web.Response:
    return _file_response(STATIC_DIR / "a.html")


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    # One flat directory: no separators, no hidden files, a known type.
    if "/" in name or "\\" in name or name.startswith(".") or not name:
        return _not_found()
    path = STATIC_DIR / name
    if path.suffix not in CONTENT_TYPES or not path.is_file():
        return _not_found()
    return _file_response(path)


@web.middleware
async def _security_headers(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status != 404:
            _secure(exc)
            raise
        response = _not_found()
    _secure(response)
    return response


def _secure(response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if response.content_type in ("text/html", "application/json"):
        response.headers["Cache-Control"] = "no-store"


def console_app() -> web.Application:
    """Return the console's aiohttp application, for ``add_subapp("/console", ...)``."""
    app = web.Application(middlewares=[_security_headers])
    app.router.add_get("/", _index, name="index")
    for route in PAGE_ROUTES[1:]:
        app.router.add_get(route, _index)
    app.router.add_get("/a", _action_page)
    app.router.add_get("/static/{name}", _asset)
    return app
