"""The C URL scanner gives exactly what its Python reference gives (hypothesis)."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.hostmap import Origin
from gateway.rewrite import urlscan
from gateway.rewrite.body import Mode, UrlRewriter
from tests.rewrite_support import INDEX

# Pieces that make URLs, near-URLs and their edges: every slash and colon form, hosts of every
# label length around the limits, ports around five digits, attribute contexts.
TOKENS = [
    "https", "http", "HTTPS", "ftp", "x", ":", "//", "/", "\\/\\/", "\\", "%2f%2f", "%2F%2F",
    "%3a", "%3A", "\\u002f\\u002f", "\\U002F\\u002f", "&#47;", "&#0047;", "&#x2f;", "&#X02F;",
    "&sol;", "&SOL;", "&colon;", "&#58;", "&#00058;", "&#x3a;", "&#x003A;", "&#", ";", "&",
    "www", ".", "jstor", "org", "example", "net", "h", "-", "_", "a" * 63, "b" * 64,
    ":443", ":8443", ":123456", "%3a80", "0", "9", " ", "\n", "\t", '"', "'", "=", "(", ",",
    ">", "<", " href=", " HREF=", "\nsrc=", " src='", "xhref=", " data=", "url(", "@import ",
]  # fmt: skip
documents = st.lists(st.sampled_from(TOKENS), max_size=60).map(lambda ts: "".join(ts).encode())
ENDS = b"=\"'( \t\r\n,>"

needs_accelerator = pytest.mark.skipif(
    not urlscan.ACCELERATED, reason="the C scanner was not built (no C compiler at install)"
)


def test_the_accelerator_is_built_where_there_is_a_compiler() -> None:
    if shutil.which("cc") or shutil.which("gcc"):
        assert urlscan.ACCELERATED, "pip install -e . should have built gateway/rewrite/_urlscan"


@needs_accelerator
@settings(max_examples=400, deadline=None)
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
    ],
)
def test_scan_table(scan: urlscan.Scan, document: bytes, expected: list[tuple[int, int]]) -> None:
    _, _, unknown = scan(document, 0, len(document), {}, ENDS, True)
    assert [(begin, end) for begin, _at, end in unknown] == expected
