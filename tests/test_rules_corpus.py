"""The published stanza corpus: every file parses, at least 99% without errors."""

from __future__ import annotations

from gateway.rules.loader import parse_file, rule_files
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
