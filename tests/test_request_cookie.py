"""The proxy's quick read of one cookie gives what aiohttp's full parser gives."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.web.request_cookie import request_cookie

NAME = "carrel_session"
names = st.sampled_from([NAME, "a", f"{NAME}x", "Carrel_session", f" {NAME}", "", "x y"])
values = st.one_of(
    st.text(alphabet=st.sampled_from(list("abZ09-_=.")), max_size=12),  # the quick path
    st.text(alphabet=st.sampled_from(list('abZ09-_=.;, \t/%+é"[]\\')), max_size=12),
)
equals = st.sampled_from(["=", " = ", "", "=="])
separators = st.sampled_from(["; ", ";", " ;  ", ";;"])


@settings(max_examples=800, deadline=None)
@given(st.lists(st.tuples(names, equals, values), max_size=5), separators)
def test_the_session_cookie_is_what_aiohttp_parses(
    pairs: list[tuple[str, str, str]], separator: str
) -> None:
    header = separator.join(name + eq + value for name, eq, value in pairs)
    request = make_mocked_request("GET", "/", headers={"Cookie": header})
    assert request_cookie(request, NAME) == request.cookies.get(NAME), header


def test_plain_headers_take_the_quick_path_and_others_the_full_parser() -> None:
    token = "Qx3-_9aZ" * 5
    cases = {
        f"carrel_lang=es; {NAME}={token}": token,
        f"{NAME}=old; {NAME}={token}": token,  # the last one, as aiohttp
        f'{NAME}="quoted; value"': "quoted; value",  # quotes: the full parser
        f"a=1 2; {NAME}={token}": token,  # a space inside a value: the full parser
        "other=1": None,
        "": None,
    }
    for header, expected in cases.items():
        request = make_mocked_request("GET", "/", headers={"Cookie": header})
        assert request_cookie(request, NAME) == expected, header
