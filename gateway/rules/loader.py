"""Reading the rules directory, keeping the last good version of every file, and hot reload.

A file that fails to parse never takes anything down: its last good version stays live (or, if
it never parsed, it is left out) and the error is logged with ``file:line``. Every file is parsed
on its own, from the default position-dependent state, so each file stands alone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from gateway.rules.model import Finding, Severity
from gateway.rules.parser import ParseResult, parse
from gateway.rules.ruleset import RuleSet

log = logging.getLogger(__name__)

RULE_SUFFIX = ".txt"

Snapshot = tuple[tuple[str, int, int], ...]


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory, in name order (one database file each)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == RULE_SUFFIX and p.is_file())


def snapshot(directory: Path) -> Snapshot:
    """Names, sizes and modification times of every file there: a change detector."""
    if not directory.is_dir():
        return ()
    entries = []
    for path in directory.iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed while we looked
            continue
        entries.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(entries))


def display_path(path: Path) -> str:
    """The path as people typed it (relative to the working directory when possible)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_text(path: Path) -> str:
    """Rule files are UTF-8; stray bytes (some published stanzas are Latin-1) are kept visible."""
    return path.read_bytes().decode("utf-8", errors="replace")


def parse_file(path: Path, include_root: Path | None = None) -> ParseResult:
    """Parse one file, resolving ``IncludeFile`` inside ``include_root`` (default: its dir)."""
    return parse_text(read_text(path), display_path(path), include_root or path.parent)


def parse_text(text: str, file: str, include_root: Path) -> ParseResult:
    """Parse rule text as the file ``file``, resolving ``IncludeFile`` inside ``include_root``."""
    root = include_root.resolve()

    def include(name: str) -> str | None:
        target = (root / name).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None  # never read outside the rules directory
        return read_text(target)

    return parse(text, file, include)


@dataclass
class Loaded:
    """What the last (re)load produced."""

    ruleset: RuleSet
    findings: tuple[Finding, ...]
    files: int

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(f.severity is Severity.ERROR for f in self.findings)


@dataclass
class RuleStore:
    """The live rule set of one rules directory, reloaded when its files change."""

    directory: Path
    current: Loaded = field(init=False)
    _good: dict[str, ParseResult] = field(default_factory=dict, init=False)
    _seen: Snapshot = field(default=(), init=False)

    def __post_init__(self) -> None:
        self.current = Loaded(RuleSet(), (), 0)
        self.reload()

    @property
    def ruleset(self) -> RuleSet:
        """The rule set in force."""
        return self.current.ruleset

    def reload(self) -> Loaded:
        """Parse every file again; files with errors keep their last good version."""
        self._seen = snapshot(self.directory)
        results: list[ParseResult] = []
        findings: list[Finding] = []
        files = rule_files(self.directory)
        for path in files:
            result = parse_file(path)
            findings.extend(result.findings)
            if result.errors:
                for finding in result.errors:
                    log.error("rules: %s", finding)
                previous = self._good.get(path.name)
                if previous is not None:
                    log.error("rules: %s keeps its last good version", display_path(path))
                    results.append(previous)
                continue
            self._good[path.name] = result
            results.append(result)
        for gone in set(self._good) - {p.name for p in files}:
            del self._good[gone]
        self.current = Loaded(RuleSet.from_results(results), tuple(findings), len(files))
        log.info(
            "rules: %d databases from %d files (%d errors)",
            len(self.ruleset.databases),
            len(files),
            self.current.errors,
        )
        return self.current

    def with_file(self, name: str, result: ParseResult) -> RuleSet:
        """The live rule set with file ``name`` replaced by ``result`` (to try an edit)."""
        results = {**self._good, name: result}
        return RuleSet.from_results(list(results.values()))

    def changed(self) -> bool:
        """Whether any file in the directory changed since the last reload."""
        return snapshot(self.directory) != self._seen

    async def watch(self, interval: float) -> None:
        """Reload whenever the directory changes; runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                try:
                    self.reload()
                except OSError as exc:  # a file vanished mid-read; try again next tick
                    log.warning("rules: reload failed: %s", exc)
