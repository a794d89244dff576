"""Staff accounts: SQLite in the state dir, passwords as Argon2id hashes, roles as a table.

Staff are not patrons: their own store, their own (memory-hard, stronger) hashes, their own
sessions and lockout. API tokens are 256 random bits; only their SHA-256 is stored.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway import sqlite_file

# Staff passwords open the whole console: 64 MiB and 3 passes (RFC 9106's second choice).
_HASHER = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1)
_DUMMY = _HASHER.hash("not a password anyone has")

MIN_PASSWORD = 12
USER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
TOKEN_PREFIX = "carrel_"


class Role(enum.Enum):
    """What a staff member may do; each role includes the one before it."""

    DESK = "desk"
    EDITOR = "editor"
    ADMIN = "admin"


class Permission(enum.Enum):
    """The console's areas."""

    SESSIONS = "sessions"
    CARDS = "cards"
    RULES = "rules"
    AUDIT = "audit"
    STAFF = "staff"
    USAGE = "usage"
    SIGNIN = "signin"
    """Test sign-ins: what a provider sends about a person (the admin role only)."""


_DESK = frozenset({Permission.SESSIONS, Permission.CARDS, Permission.USAGE})
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.DESK: _DESK,
    Role.EDITOR: _DESK | {Permission.RULES},
    Role.ADMIN: frozenset(Permission),
}


class StaffError(ValueError):
    """An account that cannot be stored as asked; the message says why."""


@dataclass(frozen=True)
class Staff:
    """One staff account (never its password)."""

    user: str
    role: Role
    disabled: bool

    def may(self, permission: Permission) -> bool:
        """Whether this account may use ``permission``."""
        return not self.disabled and permission in PERMISSIONS[self.role]


def password_problem(password: str, user: str) -> str | None:
    """Why a password will not do, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a staff password needs at least {MIN_PASSWORD} characters"
    if user and user in password.lower():
        return "a staff password must not contain the user name"
    return None


def generate_password() -> str:
    """A random password to print once (about 120 bits)."""
    return secrets.token_urlsafe(15)


def token_digest(token: str) -> str:
    """What the store keeps of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


SCHEMA = """
CREATE TABLE IF NOT EXISTS staff (
    user TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    token_hash TEXT UNIQUE,
    updated TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


class StaffStore:
    """The staff accounts. SQLite and Argon2 block: async callers use ``asyncio.to_thread``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        sqlite_file.create(path, SCHEMA)

    @staticmethod
    def _row(row: sqlite3.Row) -> Staff:
        return Staff(row["user"], Role(row["role"]), bool(row["disabled"]))

    def add(self, user: str, role: str, password: str) -> Staff:
        """Create an account (an existing user name is refused)."""
        if not USER_NAME.fullmatch(user):
            raise StaffError(
                "a user name is 1-32 lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        try:
            chosen = Role(role)
        except ValueError:
            raise StaffError(f"role must be one of {', '.join(r.value for r in Role)}") from None
        problem = password_problem(password, user)
        if problem:
            raise StaffError(problem)
        try:
            with sqlite_file.connection(self.path) as db:
                db.execute(
                    "INSERT INTO staff (user, role, password_hash) VALUES (?, ?, ?)",
                    (user, chosen.value, _HASHER.hash(password)),
                )
        except sqlite3.IntegrityError:
            raise StaffError(f"there is already a staff account {user!r}") from None
        return Staff(user, chosen, False)

    def get(self, user: str) -> Staff | None:
        """The account, or None."""
        with sqlite_file.connection(self.path) as db:
            row = db.execute("SELECT * FROM staff WHERE user = ?", (user,)).fetchone()
        return self._row(row) if row else None

    def all(self) -> list[Staff]:
        """Every account, by name."""
        with sqlite_file.connection(self.path) as db:
            return [self._row(r) for r in db.execute("SELECT * FROM staff ORDER BY user")]

    def _update(self, user: str, assignments: str, values: tuple[object, ...]) -> Staff:
        with sqlite_file.connection(self.path) as db:
            changed = db.execute(
                f"UPDATE staff SET {assignments}, updated = CURRENT_TIMESTAMP WHERE user = ?",  # noqa: S608 - fixed column names
                (*values, user),
            ).rowcount
        found = self.get(user) if changed else None
        if found is None:
            raise StaffError(f"there is no staff account {user!r}")
        return found

    def set_password(self, user: str, password: str) -> Staff:
        """A new password (the policy applies)."""
        problem = password_problem(password, user)
        if problem:
            raise StaffError(problem)
        return self._update(user, "password_hash = ?", (_HASHER.hash(password),))

    def set_disabled(self, user: str, disabled: bool) -> Staff:
        """Disable an account (its token stops working too) or enable it again."""
        return self._update(user, "disabled = ?", (int(disabled),))

    def new_token(self, user: str) -> str:
        """A new API token for ``user``, replacing the previous one; shown once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._update(user, "token_hash = ?", (token_digest(token),))
        return token

    def by_token(self, token: str) -> Staff | None:
        """The enabled account an API token belongs to, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
            return None
        with sqlite_file.connection(self.path) as db:
            row = db.execute(
                "SELECT * FROM staff WHERE token_hash = ?", (token_digest(token),)
            ).fetchone()
        staff = self._row(row) if row else None
        return staff if staff and not staff.disabled else None

    def verify(self, user: str, password: str) -> Staff | None:
        """The enabled account when the password is right; unknown users cost the same work."""
        with sqlite_file.connection(self.path) as db:
            row = db.execute("SELECT * FROM staff WHERE user = ?", (user,)).fetchone()
        ok: bool
        try:
            ok = _HASHER.verify(row["password_hash"] if row else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None or row["disabled"]:
            return None
        return self._row(row)
