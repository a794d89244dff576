"""The proxy's quick read of one cookie gives what aiohttp's full parser gives, and refuses
a header that holds the cookie twice instead of picking one."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.edge.request_cookie import DuplicateCookie, request_cookie

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
    try:
        found = request_cookie(request, NAME)
    except DuplicateCookie:
        assert header.count(NAME) >= 2, header
    else:
        assert found == request.cookies.get(NAME), header


def test_plain_headers_take_the_quick_path_and_others_the_full_parser() -> None:
    token = "Qx3-_9aZ" * 5
    cases = {
        f"carrel_lang=es; {NAME}={token}": token,
        f'{NAME}="quoted; value"': "quoted; value",  # quotes: the full parser
        f"a=1 2; {NAME}={token}": token,  # a space inside a value: the full parser
        "other=1": None,
        "": None,
    }
    for header, expected in cases.items():
        request = make_mocked_request("GET", "/", headers={"Cookie": header})
        assert request_cookie(request, NAME) == expected, header


@pytest.mark.parametrize(
    "header",
    [
        f"{NAME}=mine; {NAME}=planted",  # the quick path
        f"{NAME}=mine;{NAME}=planted",
        f'{NAME}=mine; a="x y"; {NAME}=planted',  # the full parser
        f"{NAME}=mine; {NAME}=",
    ],
)
def test_two_values_of_one_cookie_are_refused_not_picked(header: str) -> None:
    request = make_mocked_request("GET", "/", headers={"Cookie": header})
    with pytest.raises(DuplicateCookie):
        request_cookie(request, NAME)
