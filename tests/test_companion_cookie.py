"""What the cookie path (gateway/companion/cookie.py) takes from a page's request body; who may
write there, and what the jar does with it, is shown in Chromium
(tests/test_browser_companion_dom.py)."""

from __future__ import annotations

import pytest

from gateway.companion.cookie import MAX_PATH, _written
from gateway.rewrite.cookies import MAX_COOKIE_BYTES


@pytest.mark.parametrize(
    ("body", "taken"),
    [
        ({"cookie": "a=1; Domain=.v.com", "path": "/x/y"}, ("a=1; Domain=.v.com", "/x/y")),
        ({"cookie": "a=1"}, ("a=1", "/")),
        ({"cookie": "a=1", "path": "relative"}, ("a=1", "/")),  # not a path: the root's
        ({"cookie": "a=1", "path": "/" + "p" * MAX_PATH}, ("a=1", "/")),
        ({"cookie": "a=1\r\nX-Injected: 1"}, None),
        ({"cookie": "a=\x001"}, None),
        ({"cookie": "a=" + "x" * MAX_COOKIE_BYTES}, None),
        ({"cookie": ""}, None),
        ({"cookie": 7}, None),
        ({"cookie": "a=1", "path": 7}, None),
        (["a=1"], None),
    ],
)
def test_a_written_cookie_is_one_line_of_bounded_size(body: object, taken: object) -> None:
    assert _written(body) == taken
