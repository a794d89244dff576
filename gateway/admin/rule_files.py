"""Editing rule files from the console: check, save atomically with history, restore.

A file with errors is never written. Every save keeps the text, who saved it and a diff in a
Redis list per file (the first save also keeps what was on disk before), so any earlier
version can be restored in one step. The rules directory stays the source of truth: the hot
reload picks up the new file, and rule sharing carries it to every other instance.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from gateway.redis_keys import PREFIX, text
from gateway.rules.commands import free_stem, long_labels
from gateway.rules.loader import RULE_SUFFIX, parse_text, read_text, rule_files
from gateway.rules.model import Finding, Severity
from gateway.rules.parser import ParseResult

FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.txt")
MAX_RULES_TEXT = 1_000_000


class NoSuchFile(LookupError):
    """The name is not a rule file here."""


class BadName(ValueError):
    """The name cannot be a rule file's name (a path, no ``.txt``...)."""


@dataclass(frozen=True)
class Checked:
    """A text's parse and its findings (the parser's plus the console's own warnings)."""

    result: ParseResult
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings that stop a save."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


@dataclass(frozen=True)
class Version:
    """One saved version of a file."""

    number: int
    time: float
    staff: str
    kind: str
    text: str
    diff: str

    def as_dict(self, with_text: bool = False) -> dict[str, Any]:
        """Plain values for JSON (the text only when asked: it can be long)."""
        data: dict[str, Any] = {
            "version": self.number, "time": self.time, "staff": self.staff, "kind": self.kind,
            "diff": self.diff,
        }  # fmt: skip
        if with_text:
            data["text"] = self.text
        return data


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding as plain values."""
    return {
        "line": finding.source.line,
        "file": finding.source.file,
        "severity": finding.severity.value,
        "message": finding.message,
    }


def diff(old: str, new: str, name: str) -> str:
    """A unified diff between two texts of file ``name``."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}"
    )
    return "".join(lines)


class RuleFiles:
    """The rules directory as the console sees it."""

    def __init__(self, directory: Path, redis: Redis, keep: int) -> None:
        self.directory = directory
        self.redis = redis
        self.keep = keep

    def path(self, name: str) -> Path:
        """The file's path; ``BadName`` for anything that is not a plain rule file name."""
        if not FILE_NAME.fullmatch(name) or not name.endswith(RULE_SUFFIX):
            raise BadName(f"{name!r} is not a rule file name (letters, digits, . _ -, ending .txt)")
        return self.directory / name

    def names(self) -> list[str]:
        """The rule files, in name order."""
        return [p.name for p in rule_files(self.directory)]

    def read(self, name: str) -> str:
        """A file's text; ``NoSuchFile`` when it is not there."""
        path = self.path(name)
        if not path.is_file():
            raise NoSuchFile(name)
        return read_text(path)

    def check(self, name: str, text_: str) -> Checked:
        """Parse ``text_`` as file ``name`` would be parsed; nothing is written."""
        result = parse_text(text_, name, self.directory)
        return Checked(result, (*result.findings, *long_labels(result)))

    @staticmethod
    def history_key(name: str) -> str:
        """The Redis list of a file's versions, newest first."""
        return f"{PREFIX}:rules-history:{name}"

    async def _record(self, name: str, staff: str, kind: str, old: str, new: str) -> Version:
        key = self.history_key(name)
        if not await self.redis.exists(key) and old:
            await self._push(key, Version(0, time.time(), "", "on disk", old, ""))
        number = int(await self.redis.incr(f"{PREFIX}:rules-version:{name}"))
        version = Version(number, time.time(), staff, kind, new, diff(old, new, name))
        await self._push(key, version)
        return version

    async def _push(self, key: str, version: Version) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, json.dumps(version.as_dict(with_text=True)))
            pipe.ltrim(key, 0, self.keep)
            await pipe.execute()

    async def save(self, name: str, new: str, staff: str, kind: str = "saved") -> Version | Checked:
        """Write ``new`` atomically when it has no errors; the checked findings otherwise."""
        if len(new) > MAX_RULES_TEXT:
            raise BadName(f"a rule file is at most {MAX_RULES_TEXT} characters")
        path = self.path(name)
        new = new.replace("\r\n", "\n")
        if new and not new.endswith("\n"):
            new += "\n"
        checked = self.check(name, new)
        if checked.errors:
            return checked
        old = read_text(path) if path.is_file() else ""
        if kind == "created" and path.exists():
            raise BadName(f"{name} exists already; open it to edit it")
        temporary = path.with_name(f".{name}.{secrets.token_hex(4)}.tmp")
        temporary.write_text(new, encoding="utf-8")
        os.replace(temporary, path)  # readers see the old file or the new one, never half
        return await self._record(name, staff, kind, old, new)

    async def history(self, name: str) -> list[Version]:
        """The file's saved versions, newest first."""
        self.path(name)
        rows = await self.redis.lrange(self.history_key(name), 0, -1)
        versions = []
        for row in rows:
            data = json.loads(text(row))
            fields = ("version", "time", "staff", "kind", "text", "diff")
            versions.append(Version(*(data[f] for f in fields)))
        return versions

    async def version(self, name: str, number: int) -> Version:
        """One saved version; ``NoSuchFile`` when it is not kept."""
        for version in await self.history(name):
            if version.number == number:
                return version
        raise NoSuchFile(f"{name} version {number}")

    async def restore(self, name: str, number: int, staff: str) -> Version | Checked:
        """Save an earlier version again, as a new version."""
        earlier = await self.version(name, number)
        return await self.save(name, earlier.text, staff, kind=f"restored version {number}")

    def new_name(self, checked: Checked) -> str:
        """A free file name for a pasted stanza, from the Title the parser found in it."""
        title = checked.result.databases[0].title if checked.result.databases else "database"
        taken = {Path(name).stem for name in self.names()}
        return free_stem(title, taken) + RULE_SUFFIX
