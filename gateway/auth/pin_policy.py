"""The library's PIN rules, pure: which PINs are refused and why, in words for patrons."""

from __future__ import annotations

import enum
from itertools import pairwise

COMMON_PINS = frozenset(
    {
        "1234", "1111", "0000", "1212", "7777", "1004", "2000", "4444", "2222", "6969",
        "9999", "3333", "5555", "6666", "1122", "1313", "8888", "4321", "2001", "1010",
        "0852", "1984", "1986", "2580", "0007", "1230", "0101", "1001", "5683", "0911",
    }
)  # fmt: skip
"""The most often chosen four-digit PINs (published analyses of leaked PIN sets)."""


class PinRefusal(enum.Enum):
    """Why a PIN is refused; the value is the translation key of the patron-facing reason."""

    FORMAT = "pin_rule_format"
    REPEATED_DIGIT = "pin_rule_repeated_digit"
    REPEATED_PAIR = "pin_rule_repeated_pair"
    SEQUENCE = "pin_rule_sequence"
    CARD_DIGITS = "pin_rule_card_digits"
    COMMON = "pin_rule_common"


_ASCII_DIGITS = frozenset("0123456789")


def _is_run(pin: str) -> bool:
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(pin)}
    # 1234, 4321, 0123, 9876 -- and the wrap-arounds 7890 and 8901 that people type the same way
    return steps in ({1}, {9})


def check_pin(pin: str, card: str = "") -> PinRefusal | None:
    """None when ``pin`` is acceptable for ``card``, else the first rule it breaks.

    Exactly four ASCII digits: Unicode digits (``١٢٣٤``), spaces and signs are refused, since
    keypads at self-check machines only have 0-9.
    """
    if len(pin) != 4 or not set(pin) <= _ASCII_DIGITS:
        return PinRefusal.FORMAT
    if len(set(pin)) == 1:
        return PinRefusal.REPEATED_DIGIT
    if pin[:2] == pin[2:]:
        return PinRefusal.REPEATED_PAIR
    if _is_run(pin):
        return PinRefusal.SEQUENCE
    digits = "".join(c for c in card if c in _ASCII_DIGITS)
    if len(digits) >= 4 and pin == digits[-4:]:
        return PinRefusal.CARD_DIGITS
    if pin in COMMON_PINS:
        return PinRefusal.COMMON
    return None
