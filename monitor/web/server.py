"""What the worker's web server serves: ``/metrics``, ``/api`` and ``/console``.

Faust's web server comes with its own pages: ``/router`` (the cluster's
workers), ``/table`` (table data), ``/`` (sensor statistics or a status
page), ``/graph``, ``/assignment`` and ``/performance``. None asks for a
token, so the worker turns them off with Faust's own settings
(:data:`FAUST_PAGES_OFF`) and, because the status page at ``/`` has no
setting, answers 404 to every path outside :data:`SERVED_PREFIXES` with a
middleware (:func:`served_paths_only`), which also covers any page a later
Faust adds. Nothing here uses ``@app.table_route``, the one Faust feature
that needs ``/router``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from monitor.web.api import error_response

#: Path prefixes the worker serves: Prometheus' scrape, the ticket API, the
#: console and the webhook push (only mounted with webhook sources).
SERVED_PREFIXES = ("/metrics", "/api", "/console", "/ingest")
#: Addresses people type, sent where the page is (the console is ``/console/``).
REDIRECTS: Mapping[str, str] = {"/console": "/console/"}

#: Faust settings that switch its built-in pages off (faust-streaming 0.15).
FAUST_PAGES_OFF: Mapping[str, bool] = {
    "web_router_enabled": False,
    "web_tables_enabled": False,
    "web_stats_enabled": False,
    "web_graph_enabled": False,
    "web_metrics_enabled": False,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def served_paths_only(
    prefixes: tuple[str, ...] = SERVED_PREFIXES,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Return a middleware that answers a JSON 404 outside ``prefixes``.

    A path is served if it is a prefix or lies under one (``/api`` and
    ``/api/tickets``, not ``/apix``).
    """

    @web.middleware
    async def only_served(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in REDIRECTS and request.method in ("GET", "HEAD"):
            raise web.HTTPPermanentRedirect(REDIRECTS[path])
        if any(path == p or path.startswith(p + "/") for p in prefixes):
            return await handler(request)
        return error_response(404, "Not Found")

    return only_served


def faust_web_settings() -> dict[str, Any]:
    """Return the ``faust.App`` settings that limit its web server to our paths.

    Pass them to ``faust.App(...)``: they turn Faust's pages off and install
    :func:`served_paths_only` in its aiohttp application
    (``web_application_options``).
    """
    return {
        **FAUST_PAGES_OFF,
        "web_application_options": {"middlewares": [served_paths_only()]},
    }
