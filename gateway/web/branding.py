"""The library as its pages show it: name, logo, how to reach a person, catalogue links.

Built from ``[library]`` for one language; empty settings are left out, so a page never
shows an empty link, and an unnamed library gets the neutral title of the translations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway import i18n
from gateway.config import LibrarySettings

NOT_DIALLED = re.compile(r"[^0-9+]")
"""What a tel: link leaves out of a printed number (spaces, dots, dashes, brackets)."""


@dataclass(frozen=True)
class Library:
    """What the templates need to name the library and say how to reach a person."""

    name: str
    logo_url: str
    address_lines: tuple[str, ...]
    phone: str
    phone_href: str
    email: str
    chat_url: str
    catalogue_url: str
    account_url: str

    @property
    def reachable(self) -> bool:
        """Whether any way to reach a person is configured."""
        return bool(self.address_lines or self.phone or self.email or self.chat_url)


def library(settings: LibrarySettings, lang: str) -> Library:
    """The library's details for pages in ``lang``."""
    lines = tuple(line.strip() for line in settings.address.splitlines() if line.strip())
    return Library(
        name=settings.display_name(lang) or i18n.translate(lang, "library_name"),
        logo_url=settings.logo_url,
        address_lines=lines,
        phone=settings.phone,
        phone_href="tel:" + NOT_DIALLED.sub("", settings.phone) if settings.phone else "",
        email=settings.email,
        chat_url=settings.chat_url,
        catalogue_url=settings.catalogue_url,
        account_url=settings.account_url,
    )


def logo_origin(settings: LibrarySettings) -> str:
    """The logo's origin, for the pages' ``img-src`` (empty without a logo)."""
    parts = urlsplit(settings.logo_url)
    return f"{parts.scheme}://{parts.netloc}" if settings.logo_url else ""
