"""Streaming equals one-shot, for any chunking down to single bytes (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rewrite_support import run

J = "https://www-jstor-org.proxy.lib.org"
URLS = [
    ("https://www.jstor.org/a?b=1", J + "/a?b=1"),
    ("http://WWW.JSTOR.ORG/x", "https://www-jstor-org---http.proxy.lib.org/x"),
    ("//www.jstor.org/p", "//www-jstor-org.proxy.lib.org/p"),
    ("https:\\/\\/www.jstor.org\\/j", J.replace("/", "\\/") + "\\/j"),
    ("https%3A%2F%2Fwww.jstor.org%2Fq", J.replace("://", "%3A%2F%2F") + "%2Fq"),
    ("https&#x3a;&#x2f;&#x2f;ocr.jstor.org", "https&#x3a;&#x2f;&#x2f;ocr-jstor-org.proxy.lib.org"),
    ("https://www.jstor.org:8443/", "https://www-jstor-org---8443.proxy.lib.org/"),
    ("https://www.jstor.org.evil.com/", "https://www.jstor.org.evil.com/"),
    ("https://notjstor.org/", "https://notjstor.org/"),
    ("https://static.jstor.org/s.js", "https://static.jstor.org/s.js"),
    ("https://www.example.com/", "https://www.example.com/"),
    ('<script src="https://www.jstor.org/a.js" integrity="sha-1">', f'<script src="{J}/a.js">'),
    (
        "<LINK integrity=x href=//www.jstor.org/s.css>",
        "<LINK href=//www-jstor-org.proxy.lib.org/s.css>",
    ),
    (
        '<meta http-equiv="refresh" content="0; url=https://h.example.org/n">',
        '<meta http-equiv="refresh" content="0; url=https://h-example-org.proxy.lib.org/n">',
    ),
    ('<a href="https://h.example.org/x">', '<a href="https://h-example-org.proxy.lib.org/x">'),
    (
        "<script src=https://cdn.example.com/a.js integrity=y>",
        "<script src=https://cdn.example.com/a.js integrity=y>",
    ),
    ("https://h.example.org/text", "https://h.example.org/text"),
]
filler = st.text(alphabet="abcz019<>/=\"' :;%&#\\é\n", max_size=40).filter(
    lambda s: (
        not s.endswith(("/", "\\", "%", "&", ":", ";", "#"))
        and not s.startswith(("/", "\\", "%", "&", ":", ";"))
    )
)
piece = st.one_of(st.sampled_from(URLS), filler.map(lambda s: (s, s)))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(piece, min_size=1, max_size=120),
    st.lists(st.integers(1, 97), min_size=1, max_size=8),
    st.integers(0, 1500),
    st.integers(0, 1500),
)
def test_streamed_output_equals_one_shot_and_bytes_outside_urls_are_unchanged(
    pieces: list[tuple[str, str]], sizes: list[int], before: int, after: int
) -> None:
    # Padding on both sides makes the pieces cross the rewriter's hold-back boundary (TAIL
    # bytes) in the middle of the stream, not only at the final flush.
    source = ("." * before + " " + " ".join(p for p, _ in pieces) + " " + "." * after).encode()
    expected = ("." * before + " " + " ".join(e for _, e in pieces) + " " + "." * after).encode()
    whole = run(source)
    assert whole == expected
    assert run(source, sizes=sizes) == whole
    assert run(source, sizes=[1]) == whole
    as_json = run(source, content_type="application/json")  # no tags, no H hosts in JSON
    assert run(source, sizes=sizes, content_type="application/json") == as_json


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(1, 50), min_size=1, max_size=5))
def test_arbitrary_bytes_stream_like_one_shot(data: bytes, sizes: list[int]) -> None:
    seeded = (
        data
        + b" https://www.jstor.org/x <script src=https://www.jstor.org/a.js integrity=x> "
        + data
    )
    assert run(seeded, sizes=sizes) == run(seeded)
