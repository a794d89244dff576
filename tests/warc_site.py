"""The recorded www.iana.org (a 2014 crawl) served again on loopback, under its own host name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from warcio.archiveiterator import ArchiveIterator

from tests.support import serve_on_loopback

Record = tuple[int, list[tuple[str, str]], bytes]
KEPT_HEADERS = ("content-type", "location")


def load_records(warc: Path, scheme: str = "http") -> dict[tuple[str, str], Record]:
    """(host, path?query) -> (status, headers, body) for every response of ``scheme``."""
    records: dict[tuple[str, str], Record] = {}
    with warc.open("rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            url = urlsplit(record.rec_headers.get_header("WARC-Target-URI"))
            if url.scheme != scheme:
                continue
            target = url.path + (f"?{url.query}" if url.query else "")
            headers = [(k, v) for k, v in record.http_headers.headers if k.lower() in KEPT_HEADERS]
            status = int(record.http_headers.get_statuscode())
            records.setdefault(
                (url.hostname or "", target), (status, headers, record.content_stream().read())
            )
    return records


def replay_app(records: dict[tuple[str, str], Record]) -> web.Application:
    async def replay(request: web.Request) -> web.Response:
        found = records.get((request.host.split(":")[0], request.path_qs))
        if found is None:
            raise web.HTTPNotFound()
        status, headers, body = found
        response = web.Response(status=status, body=body)
        for name, value in headers:
            response.headers[name] = value
        return response

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", replay)
    return app


async def serve_warc(warc: Path) -> AsyncIterator[int]:
    """Serve the http records of ``warc`` on a loopback port; yields the port."""
    async for port in serve_on_loopback(replay_app(load_records(warc))):
        yield port
