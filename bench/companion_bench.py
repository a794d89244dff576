"""What the companion costs a patron: page-load time in Chromium with and without it, and the
bytes a page view fetches for it, cold and warm cache.

    PYTHONPATH=. .venv/bin/python bench/companion_bench.py [--rounds 10] [--stanzas DIR]

Two gateways run side by side (``gateway serve``, one worker each), the same rules and vendors,
one with ``[companion] enabled = false``; rounds alternate between them, so the machine's noise
falls on both. Pages: the recorded IANA home page (``$CARREL_CORPUS/warc/iana.warc.gz``) and a
dense page (4,000 absolute links and 100 images of the vendor). ``--stanzas`` adds a directory of stanza files
(the 1,353 published ones in ``$CARREL_CORPUS/ezproxy-stanzas``) to the rules, so the scope is
as big as a real library's. Each round opens a fresh browser context (cold cache), logs in, loads
the page (cold), then loads it again (warm). Times are the Navigation Timing ``loadEventEnd``;
bytes are the Resource Timing ``transferSize`` of the companion's two files (headers included,
as compressed on the wire; 0 when the cache answered).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bench.proxy_bench import CARD, PIN, add_patron, wait_port  # noqa: E402
from gateway.embedded_redis import free_port  # noqa: E402
from tests.browser_support import chromium, log_in  # noqa: E402
from tests.support import RedisProcess, serve_on_loopback  # noqa: E402
from tests.warc_site import load_records, replay_app  # noqa: E402

DENSE_HOST = "www.dense.test"
RULES = f"""Title IANA
URL http://www.iana.org/
HJ http://www.iana.org
Title Dense
URL http://{DENSE_HOST}/
HJ http://{DENSE_HOST}
"""
PAGES = {"iana": "http://www-iana-org---http.proxy.localhost:{port}/",
         "dense": "http://www-dense-test---http.proxy.localhost:{port}/"}  # fmt: skip
COMPANION = "/__carrel/companion/"
ONLY_PROXY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE *.proxy.localhost"
MEASURE = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const mine = performance.getEntriesByType("resource").filter((r) => r.name.includes(PATH));
  return {load: nav.loadEventEnd, bytes: mine.reduce((n, r) => n + r.transferSize, 0),
          files: mine.length};
}""".replace("PATH", repr(COMPANION))


PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8"
    "ffff3f0005fe02fea7d6a4f90000000049454e44ae426082"
)


def dense_app() -> web.Application:
    """A results page with 4,000 absolute links and 100 images of the dense vendor's host."""
    items = "".join(
        f'<li><a href="http://{DENSE_HOST}/article/{i}">Article {i}</a>'
        + (f' <img src="http://{DENSE_HOST}/i/{i}.png" alt="">' if i % 40 == 0 else "")
        + "</li>\n"
        for i in range(4000)
    )
    body = f"<!doctype html><html><head><title>Dense</title></head><body><ul>{items}</ul>"
    body += "</body></html>"
    app = web.Application()

    async def serve(request: web.Request) -> web.Response:
        if request.path.startswith("/i/"):
            return web.Response(body=PIXEL, content_type="image/png")
        return web.Response(text=body, content_type="text/html")

    app.router.add_get("/{tail:.*}", serve)
    return app


site = asynccontextmanager(serve_on_loopback)
"""``async with site(app) as port``: ``app`` on a free loopback port."""


def start_gateway(
    tmp: Path, name: str, redis_url: str, resolve: str, enabled: bool
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER__STATE_DIR": str(tmp / f"state-{name}"),
        "GATEWAY_REDIS__URL": redis_url,
        "GATEWAY_RULES__DIR": str(tmp / "rules"),
        "GATEWAY_UPSTREAM__RESOLVE": resolve,
        "GATEWAY_LOGGING__LEVEL": "warning",
        "GATEWAY_LOGGING__ACCESS_LOG": "-",
        "GATEWAY_LOCKOUT__ADDRESS_FAILURES": "1000",
        "GATEWAY_LOCKOUT__CARD_FAILURES": "1000",
        "GATEWAY_COMPANION__ENABLED": "true" if enabled else "false",
    }
    gateway = [str(ROOT / ".venv/bin/gateway")]
    add_patron(gateway, env, tmp)
    proc = subprocess.Popen([*gateway, "serve", "--workers", "1"], env=env, cwd=tmp)
    wait_port(port)
    return proc, port


async def one_round(browser: Any, port: int, which: str) -> dict[str, float]:
    context = await browser.new_context()
    try:
        tab = await context.new_page()
        url = PAGES[which].format(port=port)
        await tab.goto(f"http://login.proxy.localhost:{port}/login")
        await log_in(tab, CARD, PIN)  # to the menu: no vendor page yet, nothing cached
        await tab.wait_for_url("http://login.proxy.localhost:*/menu")
        await tab.goto(url, wait_until="load")
        cold = await tab.evaluate(MEASURE)
        await tab.goto("about:blank")
        await tab.goto(url, wait_until="load")
        warm = await tab.evaluate(MEASURE)
        return {"cold_ms": cold["load"], "warm_ms": warm["load"], "cold_bytes": cold["bytes"],
                "warm_bytes": warm["bytes"], "files": cold["files"]}  # fmt: skip
    finally:
        await context.close()


async def run(rounds: int, stanzas: Path | None) -> None:
    corpus = Path(os.environ.get("CARREL_CORPUS", ROOT.parent / "shared/corpus"))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rules = tmp / "rules"
        rules.mkdir()
        (rules / "bench.txt").write_text(RULES)
        if stanzas is not None:
            for path in sorted(stanzas.iterdir()):
                shutil.copy(path, rules / f"zz-{path.name}")
        redis = RedisProcess(tmp / "redis").start()
        iana = replay_app(load_records(corpus / "warc" / "iana.warc.gz"))
        procs = []
        try:
            async with site(iana) as iana_port, site(dense_app()) as dense_port:
                resolve = (f'{{ "www.iana.org" = "127.0.0.1:{iana_port}", '
                           f'"{DENSE_HOST}" = "127.0.0.1:{dense_port}" }}')  # fmt: skip
                on, on_port = start_gateway(tmp, "on", redis.url, resolve, True)
                off, off_port = start_gateway(tmp, "off", redis.url, resolve, False)
                procs = [on, off]
                results: dict[tuple[str, str], list[dict[str, float]]] = {}
                async with chromium(ONLY_PROXY) as browser:
                    for _ in range(rounds):
                        for which in PAGES:
                            for label, port in (("with", on_port), ("without", off_port)):
                                got = await one_round(browser, port, which)
                                results.setdefault((which, label), []).append(got)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait()
            redis.kill()
    print(f"rounds: {rounds}; rules: {'the shipped bench rules' if stanzas is None else stanzas}")
    print(f"{'page':6} {'companion':9} {'cold ms':>8} {'warm ms':>8} {'cold bytes':>10} "
          f"{'warm bytes':>10}")  # fmt: skip
    for (which, label), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{which:6} {label:9} {med['cold_ms']:8.1f} {med['warm_ms']:8.1f} "
            f"{med['cold_bytes']:10.0f} {med['warm_bytes']:10.0f}"
        )
    for which in PAGES:
        pairs = zip(results[(which, "with")], results[(which, "without")], strict=True)
        ratios = [(a["cold_ms"] / b["cold_ms"], a["warm_ms"] / b["warm_ms"]) for a, b in pairs]
        cold = statistics.median(r[0] for r in ratios)
        warm = statistics.median(r[1] for r in ratios)
        print(f"{which}: with/without, paired median: cold {cold:.2f}, warm {warm:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--stanzas", type=Path, default=None,
                        help="a directory of stanza files to add to the rules")  # fmt: skip
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.stanzas))


if __name__ == "__main__":
    main()
