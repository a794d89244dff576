"""Which rewriting a response gets, from the database whose rules allow its URL (pure)."""

from __future__ import annotations

import mimetypes

from gateway.hostmap import Origin
from gateway.rewrite.body import BodyRewriter, Passthrough, body_rewriter
from gateway.rewrite.headers import HeaderContext
from gateway.rewrite.target import HostIndex
from gateway.rules.model import Database

CSP = "content-security-policy"


def blocked_response_headers(database: Database | None) -> frozenset[str]:
    """Lower-case names of response headers the database's ``HTTPHeader -block`` lines drop."""
    return database.header_policy.response if database is not None else frozenset()


def header_context(index: HostIndex, origin: Origin, database: Database | None) -> HeaderContext:
    """The header-rewriting context for a response from ``origin``, allowed by ``database``."""
    blocked = blocked_response_headers(database)
    return HeaderContext(index, origin, drop_csp=CSP in blocked, blocked=blocked)


def response_rewriter(index: HostIndex, url: str, content_type: str) -> BodyRewriter:
    """The body rewriter for a response to ``url``, with its database's Find/Replace rules."""
    origin = Origin.from_url(url)
    allowed = index.ruleset.allows(origin) if origin else None
    if origin is None or allowed is None:
        return Passthrough()
    return database_rewriter(index, url, origin, content_type, allowed.database)


def database_rewriter(
    index: HostIndex, url: str, origin: Origin, content_type: str, database: Database
) -> BodyRewriter:
    """The body rewriter for a response to ``url`` (from ``origin``), which ``database``
    allows."""
    return body_rewriter(
        index,
        url,
        content_type,
        find_replace=database.find_replace,
        mime_filters=database.mime_filters,
        drop_csp=CSP in blocked_response_headers(database),
        page=origin,
    )


def guess_content_type(name: str, head: bytes) -> str:
    """A content type from a file name, else from the first bytes."""
    guessed, _ = mimetypes.guess_type(name)
    if guessed:
        return guessed
    start = head.lstrip()[:100].lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<head" in start:
        return "text/html"
    if start.startswith((b"{", b"[")):
        return "application/json"
    if start.startswith(b"<?xml") or start.startswith(b"<svg"):
        return "application/xml"
    return "application/octet-stream"
