"""``gateway rules check|import|explain`` as librarians run them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support import run_gateway


def gateway(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run_gateway(*args, env=env)
    return SimpleNamespace(
        returncode=result.returncode, stdout=result.stdout.decode(), stderr=result.stderr.decode()
    )


def test_shipped_rules_have_no_errors() -> None:
    result = gateway("rules", "check", "rewrite_rules")
    assert result.returncode == 0, result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    files, databases = int(summary.split()[0]), int(summary.split()[2])
    assert files >= 16 and databases >= 16
    assert " 0 errors" in summary


def test_check_reports_findings_as_path_line_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("Title Bad\nURL https://bad.example.org\nReplace x\n")
    (tmp_path / "warn.txt").write_text("Title W\nURL https://w.example.org\nFormVariable a b\n")
    result = gateway("rules", "check", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(
        line.endswith("bad.txt:3: error: Replace without a Find line before it") for line in lines
    )
    assert any("warn.txt:3: warning: FormVariable" in line for line in lines)
    assert lines[-1] == "2 files, 2 databases, 1 errors, 1 warnings"


def test_check_reports_a_rule_naming_a_loopback_address(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text(
        "Title X\nURL https://x.example.org\nHJ http://127.0.0.1:8080\n"
    )
    result = gateway("rules", "check", str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].endswith(
        "x.txt:3: error: HJ names 127.0.0.1, a loopback address: "
        "the gateway never connects to non-public addresses"
    )


def test_explain_names_the_jstor_file_and_line_and_the_proxied_url() -> None:
    result = gateway("rules", "explain", "https://www.jstor.org/stable/1234")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rewrite_rules/jstor.txt:" in result.stdout
    assert "http://www-jstor-org.proxy.localhost:8080/stable/1234" in result.stdout
    assert (
        "http://login.proxy.localhost:8080/login?qurl=https%3A%2F%2Fwww.jstor.org%2Fstable%2F1234"
        in result.stdout
    )


def test_explain_says_why_a_url_is_not_allowed() -> None:
    result = gateway("rules", "explain", "https://www.jstor.org.evil.com/")
    assert result.returncode == 1
    assert "no rule covers https://www.jstor.org.evil.com" in result.stdout
    # A look-alike of a covered name: no line to add for it (issue 19).
    assert "HJ https://www.jstor.org.evil.com" not in result.stdout
    assert "www.jstor.org.evil.com only contains www.jstor.org (rewrite_rules/jstor.txt:" in (
        result.stdout
    )
    assert "a look-alike host" in result.stdout


def test_explain_suggests_the_line_for_a_host_no_rule_names() -> None:
    result = gateway("rules", "explain", "https://journals.example-press.org/")
    assert result.returncode == 1
    assert "no rule covers https://journals.example-press.org" in result.stdout
    assert "add 'HJ https://journals.example-press.org'" in result.stdout


def test_explain_a_single_label_host_is_not_a_valid_host_name() -> None:
    result = gateway("rules", "explain", "https://localhost:8000/")
    assert result.returncode == 1
    assert "'localhost' is not a valid host name" in result.stdout
    assert "absolute http(s) URL" not in result.stdout
    assert "absolute http(s) URL" in gateway("rules", "explain", "ftp://a.example.org/").stdout


def test_import_splits_config_txt_into_standalone_files(tmp_path: Path) -> None:
    config_txt = tmp_path / "config.txt"
    config_txt.write_text(
        "LoginPort 2048\nName ezproxy.library.org\n"
        "Option DomainCookieOnly\nTitle Alpha Journals (updated 20240101)\n"
        "URL https://alpha.example.org\nHJ alpha.example.org\nOption Cookie\n"
        "HTTPHeader X-Requested-With\nTitle Beta\nURL https://beta.example.org\n"
    )
    out = tmp_path / "rules"
    result = gateway("rules", "import", str(config_txt), "--into", str(out))
    assert result.returncode == 0, result.stdout
    assert "not imported (server directive): LoginPort 2048" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["alpha_journals.txt", "beta.txt"]
    alpha = (out / "alpha_journals.txt").read_text()
    assert alpha.splitlines()[1] == "Option DomainCookieOnly"
    beta = (out / "beta.txt").read_text()
    assert "HTTPHeader X-Requested-With" in beta and "DomainCookieOnly" not in beta
    assert "Option Cookie" in beta.splitlines()[1]
    check = gateway("rules", "check", str(out))
    assert check.returncode == 0 and check.stdout.splitlines()[-1].startswith(
        "2 files, 2 databases, 0 errors"
    )


def explain_with(rules: Path, url: str) -> Any:
    """``gateway rules explain URL`` over the rule files in ``rules``."""
    return gateway("rules", "explain", url, env={"GATEWAY_RULES__DIR": str(rules)})


def test_a_domain_line_gives_the_url_host_javascript_rewriting(tmp_path: Path) -> None:
    (tmp_path / "annual.txt").write_text(
        "Title Annual Reviews\nURL https://www.annualreviews.org\nDJ annualreviews.org\n"
    )
    result = explain_with(tmp_path, "https://www.annualreviews.org/toc")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    allowed = next(line for line in lines if line.startswith("Allowed by:"))
    rewriting = next(line for line in lines if line.startswith("Rewriting:"))
    assert allowed.endswith("annual.txt:2 (host)")
    assert "links in pages and URLs inside scripts are proxied" in rewriting
    assert rewriting.endswith("annual.txt:3 (DJ)")


def test_a_host_keeps_attributes_only_when_no_line_of_its_database_says_more(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text(
        "Title A\nURL https://www.a.example.org\nD a.example.org\n"
        "Title B\nURL https://b.example.org\nDJ www.a.example.org\n"
    )
    result = explain_with(tmp_path, "https://www.a.example.org/")
    rewriting = next(line for line in result.stdout.splitlines() if line.startswith("Rewriting:"))
    assert "URLs inside scripts are not" in rewriting and rewriting.endswith("a.txt:2 (URL)")
