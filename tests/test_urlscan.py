"""The C URL scanner gives exactly what its Python reference gives (hypothesis)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.hostmap import Origin
from gateway.rewrite import urlscan
from gateway.rewrite.body import Mode, UrlRewriter
from tests.rewrite_support import INDEX

# URLs and near-URLs built from parts, each part valid or just off (a colon entity without its
# "&", a label of 64 bytes, ten labels, a six-digit port ...), between other bytes.
PARTS = [
    ["", " ", "=", "a", ":", ";", "/", "\\", '"', ' href="', " SRC=", "\nsrc='", "xhref=", "url("],
    ["", "https", "http", "HTTPS", "Http", "ftp", "xhttps", "ttps", "wss", "ws", "WsS", "news",
     "xwss", "-ws", "+wss", ".ws", "=ws", "wsss", "sws"],
    ["", ":", "%3a", "%3A", "&colon;", "&COLON;", "&#58;", "&#0058;", "&#x3a;", "&#X003A;",
     "#58;", "X#58;", "&58;", "&#x58;", "&#3a;", "&#x0;"],
    ["//", "\\/\\/", "%2f%2F", "\\u002f\\U002F", "&#47;&sol;", "&#x2f;&#0047;", "&SOL;&#X2F;",
     "/", "&#47;", "\\/", "%2f", "&#47&#47;"],
]  # fmt: skip
LABELS = st.one_of(
    st.sampled_from(["www", "jstor", "org", "example", "a", "a_b", "9", "-a", "a-", "_", ""]),
    st.integers(61, 65).map(lambda n: "a" * n),
    st.integers(61, 65).map(lambda n: "b" * (n - 1) + "-"),
)
PORTS = ["", ":443", ":8443", ":65535", ":123456", "%3a80", "%3A8", ":", ":x", "::1"]
AFTERS = ["", "/", ".", "-", "a", ":", '"', ".b", "-x", "_"]
urls = st.tuples(
    *(st.sampled_from(part) for part in PARTS),
    st.integers(0, 11).flatmap(lambda n: st.lists(LABELS, min_size=n, max_size=n)).map(".".join),
    st.sampled_from(PORTS),
    st.sampled_from(AFTERS),
).map("".join)
documents = st.lists(
    st.one_of(urls, st.sampled_from(["<", ">", " ", "x", "&", "%", "\\", "/"])), max_size=12
).map(lambda ts: "".join(ts).encode())
ENDS = b"=\"'( \t\r\n,>"

needs_accelerator = pytest.mark.skipif(
    not urlscan.ACCELERATED, reason="the C scanner was not built (no C compiler at install)"
)


def test_the_accelerator_is_built_where_there_is_a_compiler() -> None:
    if shutil.which("cc") or shutil.which("gcc"):
        assert urlscan.ACCELERATED, "pip install -e . should have built gateway/rewrite/_urlscan"


def test_the_python_reference_can_be_chosen() -> None:
    code = "from gateway.rewrite import urlscan as u; print(u.ACCELERATED, u.scan is u.scan_py)"
    env = {**os.environ, "CARREL_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True"], out.stderr


@needs_accelerator
@settings(max_examples=1000, deadline=None)
@given(documents, st.data())
def test_c_scan_equals_the_python_reference(document: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(document)))
    limit = data.draw(st.integers(start, len(document)))
    # The memo as a rule set would have it: each prefix found not ours, an HJ or an H host.
    _, _, found = urlscan.scan_py(document, 0, len(document), {}, ENDS, True)
    memo: urlscan.Memo = {}
    for begin, _at, end in found:
        kind = data.draw(st.sampled_from(["missing", "none", "hj", "h"]))
        if kind != "missing":
            memo[document[begin:end]] = None if kind == "none" else (b"NEW", kind == "hj")
    ends = data.draw(st.sampled_from([None, ENDS]))
    attributes = data.draw(st.booleans())
    expected = urlscan.scan_py(document, start, limit, memo, ends, attributes)
    assert urlscan.scan(document, start, limit, memo, ends, attributes) == expected


@needs_accelerator
@settings(max_examples=200, deadline=None)
@given(documents, st.sampled_from([Mode.HTML, Mode.CSS, Mode.XML, Mode.JAVASCRIPT]))
def test_whole_rewrites_agree(document: bytes, mode: Mode) -> None:
    page = Origin.from_url("https://www.jstor.org/page")
    assert page is not None
    outputs = []
    for scan in (urlscan.scan, urlscan.scan_py):
        rewriter = UrlRewriter(INDEX, page, mode, scan=scan)
        outputs.append(rewriter.feed(document) + rewriter.flush())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("scan", [urlscan.scan_py, urlscan.scan], ids=["python", "c"])
@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"https://www.jstor.org/", [(0, 21)]),
        (b"see https://www.jstor.org.", [(4, 25)]),  # a full stop ends the host
        (b"https://www.jstor.org-/", []),  # runs on into something else: not a host
        (b"https://www.jstor.org-x/", [(0, 23)]),  # org-x is a label
        (b"https://www.jstor.org:123456/", []),  # six digits: no port, no URL
        (b"https://www.jstor.org:443/", [(0, 25)]),
        (b"ftp://www.jstor.org/", []),
        (b"x//www.jstor.org/", []),  # a//b is a path, not a URL
        (b"=//www.jstor.org/", [(1, 16)]),
        (b"https%3A%2F%2Fwww.jstor.org", [(0, 27)]),
        (b"https&colon;&sol;&#47;www.jstor.org", [(0, 35)]),
        (b"https&#x003A;\\/\\/www.jstor.org", [(0, 30)]),
        (b"https:\\u002F\\u002fwww.jstor.org", [(0, 31)]),
        (b"//" + b"a" * 64 + b".org", []),  # a label longer than 63 bytes
        (b"//x." + b"a" * 64 + b"/", []),  # the same, later in the host
        (b"//x." + b"a" * 63 + b"/", [(0, 67)]),
        (b"//a.b.c.d.e.f.g.h.i.j/", [(0, 19)]),  # ten labels: the host is the first nine
        (b"//a.b.c.d.e.f.g.h.i/", [(0, 19)]),
        (b"httpsX#58;//a.b/", []),  # an entity needs its "&"
        (b"https&#00058;//a.b/", [(0, 18)]),
        (b"wss://www.jstor.org/", [(0, 19)]),  # WebSocket URLs
        (b"ws://www.jstor.org:8080/", [(0, 23)]),
        (b'"WSS://a.b"', [(1, 10)]),
        (b"wss%3A%2F%2Fa.b", [(0, 15)]),
        (b"ws&colon;//a.b", [(0, 14)]),
        (b"news://a.b/", []),  # another scheme that ends in "ws"
        (b"xwss://a.b/", []),
        (b"a.ws://a.b/", []),
        (b"news%3A%2F%2Fa.b", []),
        (b"=ws:\\/\\/a.b", [(1, 11)]),
    ],
)
def test_scan_table(scan: urlscan.Scan, document: bytes, expected: list[tuple[int, int]]) -> None:
    _, _, unknown = scan(document, 0, len(document), {}, ENDS, True)
    assert [(begin, end) for begin, _at, end in unknown] == expected


@needs_accelerator
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_c_splice_equals_the_python_reference(buf: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(buf)))
    stop = data.draw(st.integers(start, len(buf)))
    cuts = sorted(data.draw(st.lists(st.integers(start, stop), max_size=10)))
    hits: list[urlscan.Edit] = [
        (begin, end, data.draw(st.one_of(st.none(), st.binary(max_size=5))))
        for begin, end in zip(cuts[::2], cuts[1::2], strict=False)
    ]
    assert urlscan.splice(buf, start, stop, hits) == urlscan.splice_py(buf, start, stop, hits)


@needs_accelerator
def test_c_splice_refuses_hits_out_of_order() -> None:
    with pytest.raises(ValueError, match="in order"):
        urlscan.splice(b"abcdef", 0, 6, [(3, 4, b"x"), (1, 2, b"y")])
    with pytest.raises(TypeError):
        urlscan.splice(b"abcdef", 0, 6, [(1, 2, "text")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        urlscan.splice(b"abcdef", 0, 6, [(1.0, 2, b"x")])  # type: ignore[list-item]


@needs_accelerator
@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"<", b"<script", b"<LINK", b"<mEtA", b"<sc", b"s", b"x", b" ",
                                 b"<img", b"<IMG ", b"<video", b"<Audio", b"<imgs", b"crossorigin",
                                 b"CrossOrigin", b"crossori", b">", b"=", b"\n", b"_", b"-"]),
                max_size=20).map(b"".join), st.data())  # fmt: skip
def test_c_tag_starts_equal_the_python_reference(buf: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(buf)))
    limit = data.draw(st.integers(start, len(buf)))
    assert urlscan.tag_starts(buf, start, limit) == urlscan.tag_starts_py(buf, start, limit)


@pytest.mark.parametrize("tag_starts", [urlscan.tag_starts, urlscan.tag_starts_py])
def test_tag_starts_table(tag_starts: urlscan.TagStarts) -> None:
    page = b"<p><SCRIPT src=x><link\n<meta<mark <lin"
    assert tag_starts(page, 0, len(page)) == [3, 17, 23]  # <mark is no hint; <lin is cut off
    assert tag_starts(page, 4, 23) == [17]  # starts in [start, limit), runs past limit
    assert tag_starts(page, 0, 3) == []


@pytest.mark.parametrize("tag_starts", [urlscan.tag_starts, urlscan.tag_starts_py])
def test_tag_starts_finds_media_tags_only_with_crossorigin(tag_starts: urlscan.TagStarts) -> None:
    page = b"<img src=a><IMG\nCrossOrigin><video src=b><audio x crossorigin<p crossorigin><imgx crossorigin>"
    assert tag_starts(page, 0, len(page)) == [11, 41]  # <audio: "crossorigin" before the next "<"
    far = b"<img " + b"x" * urlscan.MEDIA_REACH + b"crossorigin>"
    assert tag_starts(far, 0, len(far)) == [] and tag_starts(far[1:] + b"<img", 0, 9) == []
    near = b"<img" + b"x" * 0 + b" " * (urlscan.MEDIA_REACH - 1) + b"crossorigin>"
    assert tag_starts(near, 0, 1) == [0]  # starts before the limit, runs past it
