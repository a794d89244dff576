"""A CAS server's ticket validation answer (``/p3/serviceValidate``, CAS 3.0 section 2.5),
read into plain values: who the ticket is for and the attributes released with it, or the
failure code.

The XML comes from the network, so it is read with expat and nothing more: a document type
declaration (where entities, and so billion-laughs expansions and external files, would be
declared) is refused before anything is expanded, and the answer is size-capped by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

CAS_NS = "http://www.yale.edu/tp/cas"
MAX_VALUES = 256
"""Attribute values kept at most (all attributes together): a patron has a few dozen."""


class CasAnswerError(ValueError):
    """The answer is not a CAS validation response (not XML, a DTD, no user...)."""


@dataclass(frozen=True)
class CasSuccess:
    """``authenticationSuccess``: the user name and the attributes, each a string or, when the
    server sent it more than once (a multi-valued attribute), a list of strings."""

    user: str
    attributes: dict[str, str | list[str]]


@dataclass(frozen=True)
class CasFailure:
    """``authenticationFailure``: its code (``INVALID_TICKET``, ``INVALID_SERVICE``...)."""

    code: str


def _refuse_dtd(*_: object) -> NoReturn:
    raise CasAnswerError("the answer declares a document type (entities are not accepted)")


def _tree(body: bytes) -> Element:
    builder = TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def start(tag: str, attrs: dict[str, str]) -> None:
        builder.start("{" + tag if "}" in tag else tag, attrs)

    def end(tag: str) -> None:
        builder.end("{" + tag if "}" in tag else tag)

    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise CasAnswerError(f"not XML: {exc}") from None
    return builder.close()


def _cas(name: str) -> str:
    return f"{{{CAS_NS}}}{name}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attributes(success: Element) -> dict[str, str | list[str]]:
    values: dict[str, list[str]] = {}
    found = success.find(_cas("attributes"))
    for count, child in enumerate(found if found is not None else ()):
        if count >= MAX_VALUES:
            break
        values.setdefault(_local(child.tag), []).append((child.text or "").strip())
    return {name: v[0] if len(v) == 1 else v for name, v in values.items()}


def parse_validation(body: bytes) -> CasSuccess | CasFailure:
    """The CAS server's validation answer ``body``; ``CasAnswerError`` when it is not one."""
    root = _tree(body)
    if root.tag != _cas("serviceResponse"):
        raise CasAnswerError(f"the answer is {_local(root.tag)[:40]!r}, not a serviceResponse")
    failure = root.find(_cas("authenticationFailure"))
    if failure is not None:
        return CasFailure(str(failure.get("code", "")).strip()[:64] or "no code")
    success = root.find(_cas("authenticationSuccess"))
    user = success.findtext(_cas("user"), "").strip() if success is not None else ""
    if success is None or not user:
        raise CasAnswerError("the answer holds neither a success with a user nor a failure")
    return CasSuccess(user, _attributes(success))
