"""The ``gateway rules`` commands: check, import and explain. Output goes to a text stream."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TextIO

from gateway.config import Settings
from gateway.hostmap import encode
from gateway.rules.explain import Explanation, explain
from gateway.rules.loader import RuleStore, display_path, parse_file, read_text, rule_files
from gateway.rules.model import Finding, Severity
from gateway.rules.parser import ParseResult, parse
from gateway.rules.ruleset import RuleSet

MAX_DNS_LABEL = 63


def long_labels(result: ParseResult) -> list[Finding]:
    """Proxied names longer than a DNS label allows: browsers and certificates may refuse them."""
    findings = []
    for db in result.databases:
        for host in db.hosts:
            label = encode(host.origin, result.hostname_edits)
            if len(label) > MAX_DNS_LABEL:
                findings.append(
                    Finding(
                        host.source,
                        Severity.WARNING,
                        f"{host.origin.host} becomes a {len(label)}-character label (DNS allows "
                        f"{MAX_DNS_LABEL}); shorten it with ProxyHostnameEdit",
                    )
                )
    return findings


def check(paths: list[Path], out: TextIO) -> int:
    """Print every finding of the given files or directories and a summary; 1 when errors."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(rule_files(path))
        elif path.is_file():
            files.append(path)
        else:
            print(f"{path}: error: no such file or directory", file=out)
            return 1
    errors = warnings = databases = 0
    for path in files:
        result = parse_file(path)
        databases += len(result.databases)
        for finding in (*result.findings, *long_labels(result)):
            print(finding, file=out)
            errors += finding.severity is Severity.ERROR
            warnings += finding.severity is Severity.WARNING
    print(
        f"{len(files)} files, {databases} databases, {errors} errors, {warnings} warnings",
        file=out,
    )
    return 1 if errors else 0


def slug(title: str) -> str:
    """A file name for a database title: ``JSTOR (updated 2025)`` -> ``jstor``."""
    title = re.sub(r"\((updated|modified|rev)[^)]*\)", "", title, flags=re.IGNORECASE)
    name = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return name[:60] or "database"


def free_stem(title: str, taken: set[str]) -> str:
    """A file stem for ``title`` that is not in ``taken``: ``jstor``, ``jstor_2`` ..."""
    stem = base = slug(title)
    n = 2
    while stem in taken:
        stem, n = f"{base}_{n}", n + 1
    return stem


def import_config(config_txt: Path, into: Path, out: TextIO) -> int:
    """Split an EZproxy config.txt into standalone rule files, one per database."""
    result = parse(read_text(config_txt), display_path(config_txt))
    into.mkdir(parents=True, exist_ok=True)
    used: set[str] = {p.stem for p in rule_files(into)}
    for db in result.databases:
        name = free_stem(db.title, used)
        used.add(name)
        target = into / f"{name}.txt"
        header = f"# Imported from {db.source} by 'gateway rules import'"
        text = "\n".join([header, *db.preamble, *db.lines]) + "\n"
        target.write_text(text, encoding="utf-8")
        print(f"{display_path(target)}: {db.title}", file=out)
    for finding in result.findings:
        if finding.severity is Severity.ERROR:
            print(finding, file=out)
    for source, line in result.server_directives:
        print(f"{source}: not imported (server directive): {line}", file=out)
    for finding in result.findings:
        if finding.severity is Severity.WARNING and "server directive" not in finding.message:
            print(finding, file=out)
    print(f"{len(result.databases)} databases written to {display_path(into)}", file=out)
    return 1 if result.errors else 0


def explain_for(settings: Settings, ruleset: RuleSet, url: str) -> Explanation:
    """``explain`` with the gateway's names and ports from ``settings``."""
    server = settings.server
    return explain(
        ruleset, url, server.proxy_domain, settings.public_url, server.public_scheme,
        settings.port_suffix,
    )  # fmt: skip


def explain_url(settings: Settings, url: str, out: TextIO) -> int:
    """Print how the configured rules treat ``url``; 1 when no rule allows it."""
    answer = explain_for(settings, RuleStore(Path(settings.rules.dir)).ruleset, url)
    for line in answer.lines():
        print(line, file=out)
    return 0 if answer.allowed else 1
