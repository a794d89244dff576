"""Rewriter throughput in MB/s, side by side in one run: Carrel, pywb and a plain bytes copy.

Inputs: (a) the HTML pages of the recorded www.iana.org crawl ($CARREL_CORPUS/warc/iana.warc.gz),
(b) a dense generated document full of absolute, protocol-relative, JSON-escaped and
percent-encoded URLs, with a rule set of 2,000 hosts. Every input is fed in 64 KiB chunks on one
core; the best of --repeat runs counts.

    .venv/bin/python bench/rewrite_bench.py [--pywb-python PATH] [--repeat N]

pywb is not a dependency of Carrel (its pins clash); give the python of a venv that has it
(python3 -m venv /tmp/pywb && /tmp/pywb/bin/pip install pywb).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gateway.rewrite import urlscan
from gateway.rewrite.body import BodyRewriter, body_rewriter
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet

CHUNK = 65536
HERE = Path(__file__).resolve().parent
TARGET = ProxyTarget("https", "", "proxy.library.org")


def iana_pages(corpus: Path) -> list[tuple[str, bytes]]:
    """The HTML responses of the IANA crawl, as (URL, body)."""
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    with (corpus / "warc" / "iana.warc.gz").open("rb") as fh:
        for record in ArchiveIterator(fh):
            kind = record.http_headers.get_header("Content-Type") if record.http_headers else ""
            if record.rec_type == "response" and "text/html" in (kind or ""):
                pages.append(
                    (
                        record.rec_headers.get_header("WARC-Target-URI"),
                        record.content_stream().read(),
                    )
                )
    return pages


IANA_RULES = "\n".join(
    ["Title IANA", "URL http://www.iana.org/", "HJ www.iana.org", "HJ iana.org", "DJ iana.org"]
)


def dense(
    hosts: int = 2000, size: int = 2_000_000, text_lines: int = 1, seed: int = 7
) -> tuple[str, bytes, int]:
    """Rules for ``hosts`` hosts and a document of about ``size`` bytes dense with URLs.

    ``text_lines`` paragraphs without URLs go with every five lines with one: 1 gives one URL
    every ~75 bytes, 12 one every ~250 bytes (the IANA pages have one every ~17,000).
    """
    rng = random.Random(seed)
    names = [f"h{i}.vendor{i % 97}.com" for i in range(hosts)]
    rules = "".join(
        f"Title DB {i}\nURL https://{n}/\n{'HJ' if i % 2 else 'H'} https://{n}\n"
        f"DJ vendor{i % 97}.com\n"
        for i, n in enumerate(names)
    )
    forms = [
        '<a href="https://{h}/p/{n}">Article {n}</a>\n',
        "<img src=\"//{h}/i/{n}.png\" alt=''>\n",
        '<script>var u = "https:\\/\\/{h}\\/api\\/{n}";</script>\n',
        '<a href="/go?to=https%3A%2F%2F{h}%2Fx%2F{n}">go</a>\n',
        '<a href="https://elsewhere{n}.example.net/">other site</a>\n',
    ] + ["<p>Plain text between links, with no URL at all, number {n}.</p>\n"] * text_lines
    parts, total, urls = [], 0, 0
    while total < size:
        form = rng.choice(forms)
        line = form.format(h=rng.choice(names), n=rng.randrange(100000)).encode()
        urls += b"//" in line or b"%2F%2F" in line or b"\\/\\/" in line
        parts.append(line)
        total += len(line)
    return rules, b"".join(parts), urls


def best_rate(
    docs: list[tuple[str, bytes]], make: Callable[[str], BodyRewriter], repeat: int
) -> float:
    """Best MB/s over ``repeat`` runs of every document through fresh rewriters."""
    size = sum(len(body) for _, body in docs)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for url, body in docs:
            rewriter = make(url)
            for i in range(0, len(body), CHUNK):
                rewriter.feed(body[i : i + CHUNK])
            rewriter.flush()
        best = min(best, time.perf_counter() - start)
    return size / best / 1e6


def copy_rate(docs: list[tuple[str, bytes]], repeat: int) -> float:
    """The same chunking with a plain copy of every chunk: the floor of any rewriter."""
    size = sum(len(body) for _, body in docs)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _, body in docs:
            out = [bytes(body[i : i + CHUNK]) for i in range(0, len(body), CHUNK)]
            b"".join(out)
        best = min(best, time.perf_counter() - start)
    return size / best / 1e6


def carrel(rules_text: str) -> Callable[[str], BodyRewriter]:
    index = HostIndex(RuleSet.from_results([parse(rules_text, "bench.txt")]), TARGET)
    return lambda url: body_rewriter(index, url, "text/html")


def carrel_rates(repeat: int, pure: bool) -> dict[str, float]:
    """Carrel's rates, with or without the C scanner, measured in a fresh interpreter."""
    env = {**os.environ, "CARREL_PURE_PYTHON": "1" if pure else ""}
    command = [sys.executable, __file__, "--rates-json", "--repeat", str(repeat)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    rates: dict[str, float] = json.loads(out.stdout)
    return rates


def best_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """The best rate of each input over several runs."""
    return {name: max(run[name] for run in runs) for name in runs[0]}


def pywb_rates(
    python: str, sets: dict[str, list[tuple[str, bytes]]], repeat: int
) -> dict[str, float]:
    """Run pywb's HTML rewriter on the same documents in its own interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = {}
        for name, docs in sets.items():
            files = []
            for i, (url, body) in enumerate(docs):
                path = Path(tmp, f"{name}-{i}.html")
                path.write_bytes(body)
                files.append([url, str(path)])
            manifest[name] = files
        Path(tmp, "manifest.json").write_text(json.dumps(manifest))
        out = subprocess.run(
            [python, str(HERE / "pywb_rewrite.py"), str(Path(tmp, "manifest.json")), str(repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
    rates: dict[str, float] = json.loads(out.stdout)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pywb-python", default=os.environ.get("PYWB_PYTHON", ""))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--processes", type=int, default=4,
                        help="fresh interpreters per rewriter; the best counts")  # fmt: skip
    parser.add_argument("--rates-json", action="store_true",
                        help="print only Carrel's MB/s per input, as JSON")  # fmt: skip
    args = parser.parse_args()
    corpus = Path(os.environ.get("CARREL_CORPUS", HERE.parent.parent / "shared" / "corpus"))
    pages = iana_pages(corpus)
    rules, document, urls = dense(text_lines=12)
    _, ultra, ultra_urls = dense(text_lines=1)
    start = "https://h1.vendor1.com/"
    sets = {"a": pages, "b": [(start, document)], "b-ultra": [(start, ultra)]}
    counts = {"a": sum(b.count(b"//") for _, b in pages), "b": urls, "b-ultra": ultra_urls}
    if args.rates_json:  # a child: measure here; the parent only starts children and prints
        makers = {"a": carrel(IANA_RULES), "b": carrel(rules), "b-ultra": carrel(rules)}
        print(json.dumps({n: best_rate(docs, makers[n], args.repeat) for n, docs in sets.items()}))
        return
    print(
        f"# {time.strftime('%Y-%m-%d')} on {platform.machine()} {platform.processor() or ''}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores"
    )
    print(
        f"# (a) {len(pages)} IANA pages, {sum(len(b) for _, b in pages) / 1e6:.2f} MB; "
        f"(b) {len(document) / 1e6:.2f} MB with {urls} URLs; (b-ultra) "
        f"{len(ultra) / 1e6:.2f} MB with {ultra_urls} URLs; 2,000 hosts in the rules"
    )
    # Each rewriter runs in several fresh interpreters, the best of each counting, taking turns
    # (pywb, pure Python, Carrel, pywb, ...): a process on this machine can run everything 1.5x
    # slower than the next one for half a minute (see bench/README.md), and turns spread that.
    rounds: list[tuple[dict[str, float], dict[str, float], dict[str, float]]] = []
    for _ in range(args.processes):
        theirs_now = (
            pywb_rates(args.pywb_python, sets, max(1, args.repeat // 2)) if args.pywb_python else {}
        )
        rounds.append(
            (
                theirs_now,
                carrel_rates(args.repeat, pure=True),
                carrel_rates(args.repeat, pure=False),
            )
        )
    pywb = best_of([r[0] for r in rounds]) if args.pywb_python else {}
    pure = best_of([r[1] for r in rounds])
    carrel_best = best_of([r[2] for r in rounds])
    print(
        f"# Carrel's C URL scanner {'built' if urlscan.ACCELERATED else 'NOT built'}; "
        "pure Python: the same rewriter with CARREL_PURE_PYTHON=1"
    )
    print(
        "| input | URLs | Carrel MB/s | µs per URL | pure Python MB/s | pywb MB/s "
        "| plain copy MB/s | Carrel / pywb |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, docs in sets.items():
        ours = carrel_best[name]
        size = sum(len(b) for _, b in docs)
        per_url = size / (ours * 1e6) / max(1, counts[name]) * 1e6
        theirs = pywb.get(name)
        ratio = f"{ours / theirs:.0f}x" if theirs else "n/a"
        print(
            f"| ({name}) | {counts[name]} | {ours:.1f} | {per_url:.1f} | {pure[name]:.1f} | "
            f"{theirs or float('nan'):.2f} | {copy_rate(docs, args.repeat):.0f} | {ratio} |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
