"""``gateway staff``: add, passwd, disable, enable, list and token for console accounts."""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from gateway.admin.staff import StaffError, StaffStore, generate_password
from gateway.config import Settings


def store(settings: Settings) -> StaffStore:
    """The staff store the configuration names."""
    return StaffStore(settings.staff_path)


def _ask_password(stdin: TextIO) -> str:
    """Asked twice on a terminal; one line from a pipe; empty means: generate one."""
    if stdin.isatty():
        first = getpass.getpass("Password (empty: generate one): ")
        if first and getpass.getpass("Again: ") != first:
            raise StaffError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def _fail(action: str, exc: Exception) -> int:
    print(f"gateway staff {action}: {exc}", file=sys.stderr)
    return 1


def add(settings: Settings, user: str, role: str, stdin: TextIO, out: TextIO) -> int:
    """``gateway staff add USER --role ROLE``."""
    try:
        typed = _ask_password(stdin)
        password = typed or generate_password()
        staff = store(settings).add(user, role, password)
    except StaffError as exc:
        return _fail("add", exc)
    print(f"staff account {staff.user} added with role {staff.role.value}", file=out)
    if not typed:
        _show_once(password, out)
    return 0


def _show_once(password: str, out: TextIO) -> None:
    print(f"password (shown once, write it down): {password}", file=out)


def passwd(settings: Settings, user: str, stdin: TextIO, out: TextIO) -> int:
    """``gateway staff passwd USER``."""
    accounts = store(settings)
    try:
        if accounts.get(user) is None:
            raise StaffError(f"there is no staff account {user!r}")
        typed = _ask_password(stdin)
        password = typed or generate_password()
        accounts.set_password(user, password)
        print(f"password of {user} changed", file=out)
        if not typed:
            _show_once(password, out)
    except StaffError as exc:
        return _fail("passwd", exc)
    return 0


def set_disabled(settings: Settings, user: str, disabled: bool, out: TextIO) -> int:
    """``gateway staff disable|enable USER``: takes effect at the account's next request."""
    try:
        store(settings).set_disabled(user, disabled)
    except StaffError as exc:
        return _fail("disable" if disabled else "enable", exc)
    print(f"staff account {user} {'disabled' if disabled else 'enabled'}", file=out)
    return 0


def token(settings: Settings, user: str, out: TextIO) -> int:
    """``gateway staff token USER``: a new API token, replacing the old one."""
    try:
        value = store(settings).new_token(user)
    except StaffError as exc:
        return _fail("token", exc)
    print(value, file=out)
    print(f"API token for {user} (shown once; the previous one no longer works). Send it as "
          "'Authorization: Bearer <token>' to /admin/api/.", file=sys.stderr)  # fmt: skip
    return 0


def list_staff(settings: Settings, out: TextIO) -> int:
    """``gateway staff list``."""
    for staff in store(settings).all():
        state = "disabled" if staff.disabled else "enabled"
        print(f"{staff.user:<24}{staff.role.value:<8}{state}", file=out)
    return 0


DEMO_STAFF = "librarian"


def ensure_demo_staff(settings: Settings) -> tuple[str, str]:
    """``serve --demo``: an admin account with a fresh password each start (printed)."""
    accounts = store(settings)
    password = generate_password()
    if accounts.get(DEMO_STAFF) is None:
        accounts.add(DEMO_STAFF, "admin", password)
    else:
        accounts.set_password(DEMO_STAFF, password)
    return DEMO_STAFF, password
