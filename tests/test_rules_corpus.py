"""The published stanza corpus: every file parses, at least 99% without errors."""

from __future__ import annotations

from gateway.rules.loader import parse_file, rule_files
from gateway.rules.ruleset import RuleSet
from tests.support import corpus_dir


def test_published_stanzas_parse_and_99_percent_have_no_errors() -> None:
    files = rule_files(corpus_dir("ezproxy-stanzas"))
    assert len(files) >= 1300
    results = {path.name: parse_file(path) for path in files}
    with_errors = [name for name, result in results.items() if result.errors]
    databases = sum(len(result.databases) for result in results.values())
    clean = len(files) - len(with_errors)
    print(
        f"\ncorpus: {len(files)} files, {databases} databases, {clean} files without errors "
        f"({100 * clean / len(files):.2f}%), with errors: {', '.join(with_errors)}"
    )
    assert clean / len(files) >= 0.99
    assert databases >= len(files)


def test_every_published_host_a_dj_or_hj_line_covers_is_rewritten_in_scripts() -> None:
    """In EZproxy a host takes the strongest treatment any line of its database gives it."""
    checked = 0
    for path in rule_files(corpus_dir("ezproxy-stanzas")):
        ruleset = RuleSet.from_results([parse_file(path)])
        for db in ruleset.databases:
            strong = [d for d in db.domains if d.javascript]
            for host in db.hosts:
                found = ruleset.allows(host.origin)
                if found is None or found.database is not db:
                    continue  # another stanza of the file owns it
                if any(d.covers(host.origin.host) for d in strong):
                    checked += 1
                    assert found.javascript, f"{path.name}: {host.origin.url()} ({found.source})"
    assert checked >= 100
