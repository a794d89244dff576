"""Reading a CAS server's validation answer: users, attributes (one value or several),
failure codes, and what is refused before it is read (DTDs, so no entities)."""

from __future__ import annotations

import pytest

from gateway.auth.cas_response import (
    MAX_VALUES,
    CasAnswerError,
    CasFailure,
    CasSuccess,
    parse_validation,
)

NS = 'xmlns:cas="http://www.yale.edu/tp/cas"'


def success(inner: str, user: str = "alice") -> bytes:
    return (f"<cas:serviceResponse {NS}><cas:authenticationSuccess><cas:user>{user}</cas:user>"
            f"{inner}</cas:authenticationSuccess></cas:serviceResponse>").encode()  # fmt: skip


def test_a_success_gives_the_user_and_the_attributes() -> None:
    body = success("<cas:attributes><cas:mail>alice@campus.test</cas:mail>"
                   "<cas:groups>Default</cas:groups><cas:groups>Licensed</cas:groups>"
                   "</cas:attributes>")  # fmt: skip
    assert parse_validation(body) == CasSuccess(
        "alice", {"mail": "alice@campus.test", "groups": ["Default", "Licensed"]}
    )


def test_attributes_in_another_namespace_keep_their_local_name() -> None:
    body = success(
        '<cas:attributes><x:eppn xmlns:x="urn:x">a@campus.test</x:eppn></cas:attributes>'
    )
    assert parse_validation(body) == CasSuccess("alice", {"eppn": "a@campus.test"})


def test_a_success_without_attributes_is_the_user_alone() -> None:
    assert parse_validation(success("")) == CasSuccess("alice", {})


def test_attribute_values_are_capped() -> None:
    body = success(
        "<cas:attributes>" + "<cas:g>v</cas:g>" * (MAX_VALUES + 10) + "</cas:attributes>"
    )
    answer = parse_validation(body)
    assert isinstance(answer, CasSuccess) and len(answer.attributes["g"]) == MAX_VALUES


@pytest.mark.parametrize("code", ["INVALID_TICKET", "INVALID_SERVICE", "INTERNAL_ERROR"])
def test_a_failure_gives_its_code(code: str) -> None:
    body = (f'<cas:serviceResponse {NS}><cas:authenticationFailure code="{code}">'
            "ticket not found</cas:authenticationFailure></cas:serviceResponse>").encode()  # fmt: skip
    assert parse_validation(body) == CasFailure(code)


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    f"<cas:serviceResponse {NS}><cas:authenticationSuccess><cas:user>&lol3;</cas:user>"
    "</cas:authenticationSuccess></cas:serviceResponse>"
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f"<cas:serviceResponse {NS}><cas:authenticationSuccess><cas:user>&x;</cas:user>"
    "</cas:authenticationSuccess></cas:serviceResponse>"
)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(BILLION_LAUGHS, "document type", id="billion-laughs"),
        pytest.param(EXTERNAL, "document type", id="external-entity"),
        pytest.param("<html><body>Service Unavailable</body></html>", "not a serviceResponse", id="html"),
        pytest.param("not xml at all", "not XML", id="not-xml"),
        pytest.param(success("", user="  ").decode(), "neither", id="empty-user"),
        pytest.param(f"<cas:serviceResponse {NS}/>", "neither", id="empty-response"),
        pytest.param("<serviceResponse><authenticationSuccess><user>a</user>"
                     "</authenticationSuccess></serviceResponse>", "not a serviceResponse", id="no-namespace"),
    ],
)  # fmt: skip
def test_what_is_not_a_validation_answer_is_refused(body: str, words: str) -> None:
    with pytest.raises(CasAnswerError, match=words):
        parse_validation(body.encode())
