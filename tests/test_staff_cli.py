"""``gateway staff`` as systems staff use it: passwords asked or generated once, never stored
in clear, tokens that replace each other, disabled accounts that stop working."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gateway import config
from gateway.admin.staff import Role, StaffStore
from tests.support import run_gateway


def staff(tmp_path: Path, *args: str, stdin: str = "") -> Any:
    result = run_gateway(
        "staff", *args, env={"GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state")},
        stdin=stdin.encode(),
    )  # fmt: skip
    return SimpleNamespace(
        returncode=result.returncode, stdout=result.stdout.decode(), stderr=result.stderr.decode()
    )


def store(tmp_path: Path) -> StaffStore:
    settings = config.build({"server": {"state_dir": str(tmp_path / "state")}}, env={})
    return StaffStore(settings.staff_path)


def test_add_with_a_typed_password_then_list(tmp_path: Path) -> None:
    added = staff(tmp_path, "add", "maria", "--role", "editor", stdin="a long enough secret\n")
    assert added.returncode == 0, added.stderr
    assert "password" not in added.stdout  # nothing to show: she typed it
    assert store(tmp_path).verify("maria", "a long enough secret") is not None
    listed = staff(tmp_path, "list")
    assert re.search(r"maria\s+editor\s+enabled", listed.stdout)
    raw = (
        sqlite3.connect(tmp_path / "state" / "staff.sqlite3")
        .execute("SELECT password_hash FROM staff")
        .fetchone()[0]
    )
    assert raw.startswith("$argon2id$v=19$m=65536,t=3") and "secret" not in raw


def test_add_without_a_password_generates_one_and_prints_it_once(tmp_path: Path) -> None:
    added = staff(tmp_path, "add", "desk1", "--role", "desk")
    assert added.returncode == 0, added.stderr
    password = re.search(r"shown once, write it down\): (\S+)", added.stdout)
    assert password and len(password[1]) >= 16
    found = store(tmp_path).verify("desk1", password[1])
    assert found is not None and found.role is Role.DESK


def test_refusals_say_why(tmp_path: Path) -> None:
    short = staff(tmp_path, "add", "maria", "--role", "admin", stdin="short\n")
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    staff(tmp_path, "add", "maria", "--role", "admin", stdin="a long enough secret\n")
    twice = staff(tmp_path, "add", "maria", "--role", "desk", stdin="a long enough secret\n")
    assert twice.returncode == 1 and "already a staff account" in twice.stderr
    role = staff(tmp_path, "add", "bob", "--role", "boss", stdin="a long enough secret\n")
    assert role.returncode == 2 and "invalid choice" in role.stderr
    name = staff(tmp_path, "add", "Bob Smith", "--role", "desk", stdin="a long enough secret\n")
    assert name.returncode == 1 and "user name" in name.stderr
    missing = staff(tmp_path, "passwd", "nobody", stdin="a long enough secret\n")
    assert missing.returncode == 1 and "no staff account" in missing.stderr


def test_passwd_disable_enable_and_tokens(tmp_path: Path) -> None:
    staff(tmp_path, "add", "maria", "--role", "admin", stdin="a long enough secret\n")
    changed = staff(tmp_path, "passwd", "maria", stdin="another long secret\n")
    assert changed.returncode == 0
    accounts = store(tmp_path)
    assert accounts.verify("maria", "a long enough secret") is None
    assert accounts.verify("maria", "another long secret") is not None
    first = staff(tmp_path, "token", "maria").stdout.strip()
    second = staff(tmp_path, "token", "maria").stdout.strip()
    assert first.startswith("carrel_") and first != second
    assert accounts.by_token(first) is None and accounts.by_token(second) is not None
    assert staff(tmp_path, "disable", "maria").returncode == 0
    assert accounts.verify("maria", "another long secret") is None
    assert accounts.by_token(second) is None
    assert staff(tmp_path, "enable", "maria").returncode == 0
    assert accounts.by_token(second) is not None
