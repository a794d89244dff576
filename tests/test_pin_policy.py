"""The library's PIN rules, as a table, with a plain-language reason in both languages."""

from __future__ import annotations

import pytest

from gateway.auth.pin_policy import PinRefusal, check_pin
from gateway.i18n import LANGUAGES, catalog

CARD = "21234000005831"


@pytest.mark.parametrize(
    ("pin", "refusal"),
    [
        ("5830", None),
        ("4827", None),
        ("0912", None),
        ("2222", PinRefusal.REPEATED_DIGIT),
        ("0000", PinRefusal.REPEATED_DIGIT),
        ("1212", PinRefusal.REPEATED_PAIR),
        ("7373", PinRefusal.REPEATED_PAIR),
        ("1234", PinRefusal.SEQUENCE),
        ("4321", PinRefusal.SEQUENCE),
        ("0123", PinRefusal.SEQUENCE),
        ("9876", PinRefusal.SEQUENCE),
        ("6789", PinRefusal.SEQUENCE),
        ("5831", PinRefusal.CARD_DIGITS),
        ("2580", PinRefusal.COMMON),
        ("1004", PinRefusal.COMMON),
        ("١٢٣٤", PinRefusal.FORMAT),
        ("４８２７", PinRefusal.FORMAT),
        ("123", PinRefusal.FORMAT),
        ("12345", PinRefusal.FORMAT),
        (" 482", PinRefusal.FORMAT),
        ("4827 ", PinRefusal.FORMAT),
        ("48 7", PinRefusal.FORMAT),
        ("48a7", PinRefusal.FORMAT),
        ("-482", PinRefusal.FORMAT),
        ("", PinRefusal.FORMAT),
    ],
)
def test_pin_rules(pin: str, refusal: PinRefusal | None) -> None:
    assert check_pin(pin, CARD) is refusal


@pytest.mark.parametrize("refusal", list(PinRefusal))
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_refusal_has_a_reason_in_every_language(refusal: PinRefusal, lang: str) -> None:
    reason = catalog(lang).get(refusal.value, "")
    assert len(reason) > 20 and reason != catalog("en" if lang == "es" else "es")[refusal.value]
