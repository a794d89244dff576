"""Translations: one JSON catalogue per language (``gateway/web/translations``), for pages, mail
and the command line; chosen per request and remembered in a cookie."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "carrel_lang"


@cache
def catalog(lang: str) -> dict[str, str]:
    """The messages of ``lang`` (English for unknown languages)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    text = resources.files("gateway.web").joinpath(f"translations/{lang}.json").read_text("utf-8")
    data: dict[str, str] = json.loads(text)
    return data


def translate(lang: str, key: str, **values: object) -> str:
    """The message ``key`` in ``lang``, falling back to English, with ``{name}`` filled in.

    With an integer ``count``, ``key_one`` (count 1) or ``key_other`` is used when the
    catalogue has it: "1 active session", "2 active sessions" (English and Spanish both
    have these two forms)."""
    count = values.get("count")
    if isinstance(count, int) and not isinstance(count, bool):
        plural = f"{key}_{'one' if count == 1 else 'other'}"
        if plural in catalog(DEFAULT_LANGUAGE):
            key = plural
    text = catalog(lang).get(key) or catalog(DEFAULT_LANGUAGE).get(key, key)
    return text.format(**values) if values else text


def from_accept_language(header: str) -> str | None:
    """The supported language the browser prefers most, from an Accept-Language header."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and quality > 0:
            choices.append((-quality, index, base))
    return min(choices)[2] if choices else None


def choose(query_lang: str | None, cookie_lang: str | None, accept_language: str) -> str:
    """Explicit choice first, then the remembered one, then the browser's, then English."""
    for lang in (query_lang, cookie_lang):
        if lang in LANGUAGES:
            return lang
    return from_accept_language(accept_language) or DEFAULT_LANGUAGE
