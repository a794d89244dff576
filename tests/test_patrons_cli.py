"""``gateway patrons`` as librarians use it: plain reasons, bad CSV rows by line, no PIN shown."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support import run_gateway


def patrons(tmp_path: Path, *args: str) -> Any:
    result = run_gateway(
        "patrons", *args, env={"GATEWAY_SERVER__STATE_DIR": str(tmp_path / "state")}
    )
    return SimpleNamespace(
        returncode=result.returncode, stdout=result.stdout.decode(), stderr=result.stderr.decode()
    )


def test_add_refuses_a_weak_pin_with_the_reason(tmp_path: Path) -> None:
    result = patrons(tmp_path, "add", "21234000000001", "--pin", "1212")
    assert result.returncode == 1
    assert "cannot be a pair of digits repeated" in result.stderr


def test_add_then_show_never_prints_the_pin(tmp_path: Path) -> None:
    added = patrons(
        tmp_path,
        "add",
        "21234000000001",
        "--pin",
        "4827",
        "--name",
        "Ana",
        "--groups",
        "Medicine,Default",
    )
    assert added.returncode == 0, added.stderr
    shown = patrons(tmp_path, "show", "21234000000001")
    assert "Ana" in shown.stdout and "Default, Medicine" in shown.stdout
    assert "4827" not in shown.stdout + added.stdout
    db = sqlite3.connect(tmp_path / "state" / "patrons.sqlite3")
    (stored,) = db.execute("SELECT pin_hash FROM patrons").fetchone()
    assert stored.startswith("$argon2id$") and "4827" not in stored


def test_block_and_unblock(tmp_path: Path) -> None:
    patrons(tmp_path, "add", "21234000000001", "--pin", "4827")
    assert "now blocked" in patrons(tmp_path, "block", "21234000000001").stdout
    assert "status:          blocked" in patrons(tmp_path, "show", "21234000000001").stdout
    assert "now active" in patrons(tmp_path, "unblock", "21234000000001").stdout
    assert patrons(tmp_path, "block", "29999999999999").returncode == 1


def test_import_reports_bad_rows_by_line_and_imports_the_good_ones(tmp_path: Path) -> None:
    csv_file = tmp_path / "patrons.csv"
    csv_file.write_text(
        "card,pin,name,email,expires\n"
        "21234000000001,4827,Ana,ana@example.org,2030-01-01\n"
        "123,4827,Too short,,\n"
        "21234000000002,48a7,Bad PIN,,\n"
        "21234000000003,5830,Bad mail,not-an-email,\n"
        "21234000000004,5830,Bad date,,31/12/2030\n"
        "21234000000005,1111,Weak PIN,,\n"
    )
    result = patrons(tmp_path, "import", str(csv_file))
    lines = result.stdout.splitlines()
    assert any(":3:" in line and "does not match the pattern" in line for line in lines)
    assert any(":4:" in line and "PIN refused" in line for line in lines)
    assert any(":5:" in line and "not an email address" in line for line in lines)
    assert any(":6:" in line and "not a date" in line for line in lines)
    assert any(":7:" in line and "must choose a new PIN" in line for line in lines)
    assert lines[-1] == "2 patrons imported"
    assert "must change PIN: yes" in patrons(tmp_path, "show", "21234000000005").stdout


def test_list_filters_by_status_and_must_change(tmp_path: Path) -> None:
    patrons(tmp_path, "add", "21234000000001", "--pin", "4827", "--name", "Ana")
    patrons(tmp_path, "add", "21234000000002", "--pin", "5830", "--name", "Bo")
    patrons(tmp_path, "add", "21234000000003", "--pin", "6941", "--name", "Cy")
    patrons(tmp_path, "block", "21234000000002")
    assert patrons(tmp_path, "reset-pin", "21234000000003").returncode == 0
    every = patrons(tmp_path, "list")
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [
        "21234000000001", "21234000000002", "21234000000003"
    ]  # fmt: skip
    assert lines[-1] == "3 patrons"
    assert "4827" not in every.stdout and "5830" not in every.stdout
    blocked = patrons(tmp_path, "list", "--status", "blocked").stdout.splitlines()
    assert (
        len(blocked) == 2
        and blocked[0].startswith("21234000000002  blocked")
        and "Bo" in blocked[0]
    )
    must = patrons(tmp_path, "list", "--must-change").stdout.splitlines()
    assert must[0].startswith("21234000000003") and "must change PIN" in must[0]
    assert must[-1] == "1 patrons"
    both = patrons(tmp_path, "list", "--status", "active", "--no-must-change").stdout
    assert both.splitlines()[0].startswith("21234000000001") and both.endswith("1 patrons\n")
    assert patrons(tmp_path, "list", "--status", "gone").returncode == 2


def test_remove_deletes_the_card_and_an_unknown_card_is_an_error(tmp_path: Path) -> None:
    patrons(tmp_path, "add", "21234000000001", "--pin", "4827")
    removed = patrons(tmp_path, "remove", "21234000000001")
    assert removed.returncode == 0 and "card 21234000000001 removed" in removed.stdout
    assert patrons(tmp_path, "show", "21234000000001").returncode == 1
    assert patrons(tmp_path, "list").stdout == "0 patrons\n"
    again = patrons(tmp_path, "remove", "21234000000001")
    assert again.returncode == 1 and "no patron with card 21234000000001" in again.stderr


def test_every_patrons_action_has_an_example_in_its_help(tmp_path: Path) -> None:
    for action in ("add", "import", "list", "block", "unblock", "show", "reset-pin", "remove"):
        shown = patrons(tmp_path, action, "--help").stdout
        assert f"example: gateway patrons {action} " in shown, shown
