"""Content codings as feed/flush stages: decode what the vendor sent, re-encode cheaply (pure)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import brotli

from gateway.rewrite.body import BodyRewriter, Passthrough

MAX_DECODED = 16 * 2**20
"""The most one piece of a compressed body may decode to. A piece is at most 64 KiB as read,
so this allows 256:1, far beyond real pages (5-20:1); a decompression bomb (1000:1 for gzip,
more for brotli) is refused instead of filling the gateway's memory."""


class UnreadableBody(ValueError):
    """The vendor's compressed body is corrupt, or decodes to more than ``MAX_DECODED`` per
    piece."""


def _corrupt(exc: Exception) -> UnreadableBody:
    return UnreadableBody(f"corrupt compressed body: {exc}")


_TOO_BIG = f"a piece of the body decodes to more than {MAX_DECODED} bytes"


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._obj: Any = zlib.decompressobj(wbits)

    def feed(self, chunk: bytes) -> bytes:
        try:
            out = self._obj.decompress(chunk, MAX_DECODED)
        except zlib.error as exc:
            raise _corrupt(exc) from None
        if self._obj.unconsumed_tail:
            raise UnreadableBody(_TOO_BIG)
        return bytes(out)

    def flush(self) -> bytes:
        try:
            return bytes(self._obj.flush())
        except zlib.error as exc:
            raise _corrupt(exc) from None


class DeflateDecoder:
    """``deflate``: zlib-wrapped as the RFC says, or raw as some servers send it."""

    def __init__(self) -> None:
        self._inner: _Zlib | None = None
        self._head = b""

    def feed(self, chunk: bytes) -> bytes:
        """Decode a chunk (the first two bytes decide zlib or raw)."""
        if self._inner is None:
            self._head += chunk
            if len(self._head) < 2:
                return b""
            zlib_header = (self._head[0] & 0x0F) == 8 and int.from_bytes(self._head[:2]) % 31 == 0
            self._inner = _Zlib(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
            chunk, self._head = self._head, b""
        return self._inner.feed(chunk)

    def flush(self) -> bytes:
        """The rest."""
        if self._inner is None:
            return _Zlib(-zlib.MAX_WBITS).feed(self._head) if self._head else b""
        return self._inner.flush()


class BrotliDecoder:
    """``br``."""

    def __init__(self) -> None:
        self._obj: Any = brotli.Decompressor()

    def feed(self, chunk: bytes) -> bytes:
        """Decode a chunk."""
        try:
            out = self._obj.process(chunk, output_buffer_limit=MAX_DECODED)
        except brotli.error as exc:
            raise _corrupt(exc) from None
        if not self._obj.can_accept_more_data():  # output left over: past the limit
            raise UnreadableBody(_TOO_BIG)
        return bytes(out)

    def flush(self) -> bytes:
        """Nothing is held back by the brotli decoder."""
        return b""


class GzipEncoder:
    """gzip at level 1: a rewritten page is sent compressed for little CPU."""

    def __init__(self) -> None:
        self._obj: Any = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> bytes:
        """Compress a chunk, and flush it so the patron's browser can start rendering."""
        return bytes(self._obj.compress(chunk) + self._obj.flush(zlib.Z_SYNC_FLUSH))

    def flush(self) -> bytes:
        """The end of the gzip stream."""
        return bytes(self._obj.flush(zlib.Z_FINISH))


DECODERS: dict[str, Callable[[], BodyRewriter]] = {
    "gzip": lambda: _Zlib(16 + zlib.MAX_WBITS),
    "x-gzip": lambda: _Zlib(16 + zlib.MAX_WBITS),
    "deflate": DeflateDecoder,
    "br": BrotliDecoder,
    "identity": Passthrough,
    "": Passthrough,
}
"""Content-Encoding values the gateway can decode."""

ACCEPTED = "gzip, deflate, br"
"""What the gateway asks vendors for."""


def decoder_for(content_encoding: str) -> BodyRewriter | None:
    """A decoder for a Content-Encoding value, or None when the gateway cannot decode it."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    if len(codings) > 1:
        return None  # stacked codings are rare enough to pass through untouched
    factory = DECODERS.get(codings[0] if codings else "")
    return factory() if factory else None


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether the patron's Accept-Encoding allows gzip (q=0 means no)."""
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
