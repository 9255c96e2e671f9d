"""Install the Kibana dashboards: saved objects through Kibana's import API.

``monitor dashboards install`` reads every ``*.ndjson`` file of
``dashboards/kibana/`` (:func:`load_objects`, ordered so that a file comes
after the files holding the objects it refers to), points the data views at
the configured index prefix (:func:`with_index_prefix`), and sends each file
to Kibana's saved objects import API with ``overwrite=true``
(:func:`build_import_request`, then :func:`send_import`). Kibana answers 200
even when some objects failed; :func:`parse_import_response` turns the answer
into an :class:`ImportOutcome` listing each object's error. Before that,
:func:`ensure_index_templates` puts the Elasticsearch index templates that
are missing, so that no index the data views read is created without its
mapping.

Request building and answer parsing are pure; only :func:`send_import` and
:func:`ensure_index_templates` do I/O, each with a bounded timeout. The API
key travels only in the request headers: :class:`ImportRequest` leaves them
out of its ``repr``, and URLs are printed through :func:`redact_url`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from monitor.errors import MonitorError

#: The index prefix the saved objects are written with.
DEFAULT_PREFIX = "monitor"
IMPORT_PATH = "/api/saved_objects/_import"
#: Kibana space ids: lowercase letters, digits, ``_`` and ``-``.
SPACE_ID = re.compile(r"^[a-z0-9_-]+$")
#: Names sent as the multipart file name (Kibana wants ``.ndjson``).
FILE_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.ndjson$")
#: Longest part of a non-JSON answer quoted in an error.
MAX_QUOTED_CHARS = 300


class InstallError(MonitorError):
    """Kibana or Elasticsearch refused the install, or could not be reached.

    Attributes:
        status: The HTTP status of the refusal, None if there was no answer.

    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


# --- the saved objects ----------------------------------------------------------------


@dataclass(frozen=True)
class ObjectsFile:
    """One NDJSON file of saved objects.

    Attributes:
        name: The file name (sent as the multipart file name).
        objects: Its saved objects, in file order.

    """

    name: str
    objects: tuple[dict[str, Any], ...]

    @property
    def keys(self) -> set[tuple[str, str]]:
        """``(type, id)`` of every object in the file."""
        return {(obj["type"], obj["id"]) for obj in self.objects}

    def content(self) -> bytes:
        """Return the objects as NDJSON, one per line, keys sorted as Kibana does."""
        return "".join(
            json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            + "\n"
            for obj in self.objects
        ).encode("utf-8")


def default_objects_dir() -> Path:
    """Return ``dashboards/kibana`` of the source tree this package runs from.

    Falls back to ``dashboards/kibana`` under the working directory (an
    installed package carries no dashboards).
    """
    beside = Path(__file__).resolve().parents[2] / "dashboards" / "kibana"
    return beside if beside.is_dir() else Path("dashboards") / "kibana"


def parse_objects(name: str, text: str) -> ObjectsFile:
    """Parse one NDJSON file of saved objects.

    Raises:
        InstallError: If a line is not a JSON object with ``type`` and ``id``,
            the name is not a plain ``*.ndjson`` name, or there is no object.

    """
    if not FILE_NAME.match(name):
        raise InstallError(f"{name}: want a file name of [A-Za-z0-9_.-] ending .ndjson")
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InstallError(f"{name} line {number}: not JSON: {exc}") from None
        if not isinstance(obj, dict) or not {"type", "id"} <= obj.keys():
            raise InstallError(f"{name} line {number}: not a saved object")
        objects.append(obj)
    if not objects:
        raise InstallError(f"{name}: no saved objects")
    return ObjectsFile(name, tuple(objects))


def load_objects(directory: Path) -> list[ObjectsFile]:
    """Read every ``*.ndjson`` of ``directory``, in import order (:func:`import_order`).

    Raises:
        InstallError: If there is no such file or one is malformed.

    """
    paths = sorted(directory.glob("*.ndjson"))
    if not paths:
        raise InstallError(f"no *.ndjson files in {directory}")
    return import_order(
        [parse_objects(path.name, path.read_text(encoding="utf-8")) for path in paths]
    )


def import_order(files: Sequence[ObjectsFile]) -> list[ObjectsFile]:
    """Order files so that each comes after the files it refers to.

    Kibana resolves a reference against the same file or objects already
    saved, so a dashboard's file must come after its data views' file. Ties
    keep the given order.

    Raises:
        InstallError: If two files refer to each other.

    """
    owner = {key: f.name for f in files for key in f.keys}
    needs = {
        f.name: {
            owner[(ref["type"], ref["id"])]
            for obj in f.objects
            for ref in obj.get("references", [])
            if owner.get((ref["type"], ref["id"]), f.name) != f.name
        }
        for f in files
    }
    ordered: list[ObjectsFile] = []
    placed: set[str] = set()
    pending = list(files)
    while pending:
        ready = [f for f in pending if needs[f.name] <= placed]
        if not ready:
            names = ", ".join(f.name for f in pending)
            raise InstallError(f"saved object files refer to each other: {names}")
        ordered.append(ready[0])
        placed.add(ready[0].name)
        pending.remove(ready[0])
    return ordered


def with_index_prefix(files: Iterable[ObjectsFile], prefix: str) -> list[ObjectsFile]:
    """Return the files with each data view's title on ``prefix`` instead of monitor.

    The files are written for the default prefix (``monitor-posts-*``); a
    worker with ``MONITOR_INDEX_PREFIX=acme`` writes ``acme-posts-*``. Only
    data view titles name indices; ids and everything else stay.
    """
    if prefix == DEFAULT_PREFIX:
        return list(files)
    rewritten = []
    for f in files:
        objects = []
        for obj in f.objects:
            title = obj.get("attributes", {}).get("title", "")
            if obj["type"] == "index-pattern" and title.startswith(
                DEFAULT_PREFIX + "-"
            ):
                attributes = {
                    **obj["attributes"],
                    "title": prefix + title[len(DEFAULT_PREFIX) :],
                }
                obj = {**obj, "attributes": attributes}
            objects.append(obj)
        rewritten.append(ObjectsFile(f.name, tuple(objects)))
    return rewritten


# --- the import request and its answer ------------------------------------------------


@dataclass(frozen=True)
class ImportRequest:
    """A ready-to-send ``POST .../api/saved_objects/_import?overwrite=true``.

    Attributes:
        url: The full URL (space path and query included).
        headers: ``kbn-xsrf``, the multipart content type and, with an API key,
            ``Authorization`` (left out of ``repr``).
        body: The ``multipart/form-data`` body with the one ``file`` part.

    """

    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)


def import_url(kibana_url: str, space: str | None = None) -> str:
    """Return the import URL, in ``space`` (``/s/<space>``) unless default.

    Raises:
        InstallError: If ``space`` is not a Kibana space id or the URL is not
            ``http(s)://host...``.

    """
    parts = urlsplit(kibana_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InstallError(f"want an http(s):// Kibana URL, not {kibana_url!r}")
    if parts.query or parts.fragment:
        raise InstallError("the Kibana URL takes no query or fragment")
    path = parts.path.rstrip("/")
    if space is not None and space != "default":
        if not SPACE_ID.match(space):
            raise InstallError(
                f"bad Kibana space id {space!r}: use a-z, 0-9, '_' and '-'"
            )
        path += f"/s/{space}"
    path += IMPORT_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "overwrite=true", ""))


def multipart_body(file_name: str, content: bytes, boundary: str) -> bytes:
    """Return a ``multipart/form-data`` body with one ``file`` part.

    Raises:
        InstallError: If ``file_name`` is not a plain ``*.ndjson`` name (it
            goes into a header), or ``boundary`` occurs in ``content``.

    """
    if not FILE_NAME.match(file_name):
        raise InstallError(f"{file_name}: want a file name ending .ndjson")
    if boundary.encode() in content:
        raise InstallError("the multipart boundary occurs in the file")
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: application/ndjson\r\n"
        "\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode()


def build_import_request(
    kibana_url: str,
    objects: ObjectsFile,
    *,
    space: str | None = None,
    api_key: str | None = None,
    boundary: str | None = None,
) -> ImportRequest:
    """Shape the import of one file of saved objects, overwriting existing ones.

    Args:
        kibana_url: Kibana's base URL, e.g. ``http://localhost:5601``.
        objects: The file to import.
        space: Kibana space id; None or ``default`` for the default space.
        api_key: Kibana API key (the encoded ``id:key`` Kibana shows),
            sent as ``Authorization: ApiKey <key>``.
        boundary: Multipart boundary (random if None).

    Raises:
        InstallError: On a bad URL, space id, file name or API key.

    """
    url = import_url(kibana_url, space)
    content = objects.content()
    boundary = boundary or f"monitor-{secrets.token_hex(16)}"
    headers = {
        "kbn-xsrf": "true",
        "Accept": "application/json",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    if api_key is not None:
        key = api_key.strip()
        if not key or any(c.isspace() for c in key) or not key.isprintable():
            raise InstallError("the Kibana API key is empty or holds spaces")
        if urlsplit(kibana_url).username is not None:
            raise InstallError("give either an API key or credentials in the URL")
        headers["Authorization"] = f"ApiKey {key}"
    return ImportRequest(url, headers, multipart_body(objects.name, content, boundary))


@dataclass(frozen=True)
class ObjectError:
    """One saved object Kibana did not import.

    Attributes:
        type: Saved object type.
        id: Saved object id.
        title: Its title, if Kibana gave one.
        kind: Kibana's error type (``missing_references``, ``conflict``,
            ``unsupported_type``, ``unknown``, ...).
        detail: The message or the missing references, for the operator.

    """

    type: str
    id: str
    title: str
    kind: str
    detail: str

    def describe(self) -> str:
        """Return one line: ``lens monitor-x "Title": missing_references: ...``."""
        title = f' "{self.title}"' if self.title else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.type} {self.id}{title}: {self.kind}{detail}"


@dataclass(frozen=True)
class ImportOutcome:
    """Kibana's answer to one import.

    Attributes:
        success: Every object was imported.
        success_count: How many were.
        errors: The objects that were not, with why.
        warnings: Kibana's warnings (e.g. an action needed after import).

    """

    success: bool
    success_count: int
    errors: tuple[ObjectError, ...] = ()
    warnings: tuple[str, ...] = ()


def parse_import_response(status: int, body: bytes) -> ImportOutcome:
    """Read Kibana's answer to an import.

    Raises:
        InstallError: If the status is not 200 (the request as a whole was
            refused: bad file, no permission, ...) or the body is not
            Kibana's JSON.

    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status != 200:
        message = data.get("message") if isinstance(data, dict) else None
        text = message or body.decode("utf-8", "replace")[:MAX_QUOTED_CHARS]
        raise InstallError(f"Kibana refused the import ({status}): {text}", status)
    if not isinstance(data, dict) or not isinstance(data.get("success"), bool):
        text = body.decode("utf-8", "replace")[:MAX_QUOTED_CHARS]
        raise InstallError(f"Kibana's answer is not an import result: {text}", status)
    errors = tuple(_object_error(item) for item in data.get("errors") or ())
    warnings = tuple(
        str(item.get("message", item)) if isinstance(item, dict) else str(item)
        for item in data.get("warnings") or ()
    )
    return ImportOutcome(
        success=data["success"] and not errors,
        success_count=int(data.get("successCount", 0)),
        errors=errors,
        warnings=warnings,
    )


def _object_error(item: Any) -> ObjectError:
    if not isinstance(item, Mapping):
        return ObjectError("?", "?", "", "unknown", str(item))
    error = item.get("error") or {}
    kind = str(error.get("type", "unknown"))
    if kind == "missing_references":
        detail = ", ".join(
            f"{ref.get('type')} {ref.get('id')}" for ref in error.get("references", [])
        )
    elif kind == "conflict" and error.get("destinationId"):
        detail = f"destination {error['destinationId']}"
    else:
        detail = str(error.get("message") or error.get("reason") or "")
        if error.get("statusCode"):
            detail = f"{detail} ({error['statusCode']})".strip()
    title = item.get("title") or (item.get("meta") or {}).get("title") or ""
    return ObjectError(
        str(item.get("type", "?")), str(item.get("id", "?")), str(title), kind, detail
    )


def redact_url(url: str) -> str:
    """Return ``url`` without user name or password, for printing."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --- I/O ------------------------------------------------------------------------------


async def send_import(
    session: aiohttp.ClientSession, request: ImportRequest, *, timeout: float = 60.0
) -> ImportOutcome:
    """POST one import and read Kibana's answer.

    Args:
        session: The session to send with (one per install).
        request: From :func:`build_import_request`.
        timeout: Seconds for the whole request.

    Raises:
        InstallError: If Kibana cannot be reached, does not answer in time,
            or refuses the request (:func:`parse_import_response`).

    """
    try:
        async with session.post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=aiohttp.ClientTimeout(total=timeout, connect=min(10.0, timeout)),
            allow_redirects=False,
        ) as response:
            body = await response.read()
            status = response.status
    except TimeoutError:
        raise InstallError(
            f"Kibana at {redact_url(request.url)} did not answer in {timeout:g} s"
        ) from None
    except aiohttp.ClientError as exc:
        raise InstallError(
            f"cannot reach Kibana at {redact_url(request.url)}: {exc}"
        ) from None
    return parse_import_response(status, body)


@dataclass(frozen=True)
class TemplateResult:
    """What :func:`ensure_index_templates` did with one index template.

    Attributes:
        name: Template name.
        created: True if it was missing and was put, False if it existed.

    """

    name: str
    created: bool


async def ensure_index_templates(
    es_url: str,
    templates: Mapping[str, Mapping[str, Any]],
    *,
    api_key: str | None = None,
    timeout: float = 30.0,
) -> list[TemplateResult]:
    """Put each index template that does not exist yet; leave existing ones.

    The worker puts its templates again at start (updating them); this only
    makes sure that no index is created without a mapping before then.

    Args:
        es_url: Elasticsearch URL.
        templates: Template name -> body (``indices.put_index_template``).
        api_key: Elasticsearch API key, if required.
        timeout: Seconds per request.

    Raises:
        InstallError: If Elasticsearch cannot be reached or refuses a request.

    """
    from elasticsearch import ApiError, TransportError

    from monitor.sinks.elasticsearch.bulk import es_client

    client = es_client(es_url, api_key=api_key, request_timeout=timeout)
    results = []
    try:
        for name, body in templates.items():
            if await client.indices.exists_index_template(name=name):
                results.append(TemplateResult(name, created=False))
                continue
            await client.indices.put_index_template(name=name, **body)
            results.append(TemplateResult(name, created=True))
    except ApiError as exc:
        raise InstallError(
            f"Elasticsearch refused index template work ({exc.meta.status}): "
            f"{exc.message}",
            exc.meta.status,
        ) from None
    except TransportError as exc:
        raise InstallError(
            f"cannot reach Elasticsearch at {redact_url(es_url)}: {exc.message}"
        ) from None
    finally:
        await client.close()
    return results
