"""Resident memory of the gateway while a 1 GB download and 20 browsing patrons go through it.

    PYTHONPATH=. .venv/bin/python bench/memory_bench.py [--size-mb 1024] [--patrons 20]

A vendor on loopback streams a PDF of --size-mb (generated, never held whole) and serves a 50 KB
HTML page full of its own absolute URLs; one gateway process (real Redis, the real login)
proxies both. The script samples the gateway's VmRSS from /proc every 100 ms: the baseline is
taken after a warm-up of the same traffic, the growth is the peak minus that baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.embedded_redis import free_port  # noqa: E402

CHUNK = 256 * 1024
PAGE = (
    "<html><body>"
    + "".join(
        f'<p><a href="http://www.vendor.test/article/{i}">Article {i}</a> text.</p>\n'
        for i in range(700)
    )
    + "</body></html>"
).encode()


def vendor_app(size: int) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    async def pdf(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        response.content_length = size
        await response.prepare(request)
        block = b"%PDF" + os.urandom(CHUNK - 4)
        sent = 0
        try:
            while sent < size:
                part = block[: min(CHUNK, size - sent)]
                await response.write(part)
                sent += len(part)
        except ConnectionError:  # the gateway hung up (its patron stopped reading)
            pass
        return response

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/big.pdf", pdf)
    return app


def rss_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


async def login(base: str, card: str, pin: str) -> str:
    async with aiohttp.ClientSession() as session:
        host = {"Host": "login.proxy.localhost"}
        async with session.get(f"{base}/login", headers=host) as page:
            html = await page.text()
            form_cookie = page.cookies["carrel_form"].value
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]  # type: ignore[index]
        async with session.post(
            f"{base}/login", data={"csrf_token": token, "card": card, "pin": pin, "url": ""},
            headers={**host, "Cookie": f"carrel_form={form_cookie}"}, allow_redirects=False,
        ) as response:  # fmt: skip
            return response.cookies["carrel_session"].value


async def run(size_mb: int, patrons: int) -> None:
    size = size_mb * 2**20
    vendor = web.AppRunner(vendor_app(size), access_log=None)
    await vendor.setup()
    vendor_port = free_port()
    await web.TCPSite(vendor, "127.0.0.1", vendor_port).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp, "rules")
        rules.mkdir()
        (rules / "vendor.txt").write_text(
            "Title Vendor\nURL http://www.vendor.test/\nHJ http://www.vendor.test\n"
        )
        env = {
            **os.environ,
            "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_SERVER__STATE_DIR": f"{tmp}/state",
            "GATEWAY_RULES__DIR": str(rules),
            "GATEWAY_UPSTREAM__RESOLVE": f'{{ "www.vendor.test" = "127.0.0.1:{vendor_port}" }}',
            "GATEWAY_LOGGING__LEVEL": "warning",
        }
        gw = [sys.executable, "-m", "gateway"]
        subprocess.run([*gw, "patrons", "add", "21234000000001", "--pin", "4827"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        proc = subprocess.Popen([*gw, "serve"], env=env, stdout=subprocess.DEVNULL, cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    async with (
                        aiohttp.ClientSession() as s,
                        s.get(f"{base}/healthz", headers={"Host": "login.proxy.localhost"}),
                    ):
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            cookie = await login(base, "21234000000001", "4827")
            headers = {
                "Host": f"www-vendor-test---http.proxy.localhost:{port}",
                "Cookie": f"carrel_session={cookie}",
            }
            done = asyncio.Event()
            pages = 0

            async def browse(session: aiohttp.ClientSession) -> None:
                nonlocal pages
                while not done.is_set():
                    async with session.get(f"{base}/page", headers=headers) as r:
                        assert r.status == 200 and b"www-vendor-test---http" in await r.read()
                        pages += 1

            async def download(session: aiohttp.ClientSession, limit: int) -> int:
                got = 0
                async with session.get(f"{base}/big.pdf", headers=headers) as r:
                    async for chunk in r.content.iter_chunked(CHUNK):
                        got += len(chunk)
                        if got >= limit:
                            break
                return got

            samples: list[int] = []

            async def sample() -> None:
                while not done.is_set():
                    samples.append(rss_kb(proc.pid))
                    await asyncio.sleep(0.1)

            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                # Warm-up: the same kinds of traffic, briefly, so pools and caches exist.
                warm = [asyncio.create_task(browse(session)) for _ in range(patrons)]
                await download(session, 64 * 2**20)
                done.set()
                await asyncio.gather(*warm)
                baseline = rss_kb(proc.pid)
                done.clear()
                pages = 0
                sampler = asyncio.create_task(sample())
                tasks = [asyncio.create_task(browse(session)) for _ in range(patrons)]
                started = time.perf_counter()
                got = await download(session, size)
                elapsed = time.perf_counter() - started
                done.set()
                await asyncio.gather(*tasks, sampler)
            peak = max(samples)
            print(
                f"# {time.strftime('%Y-%m-%d')}: {got / 2**20:.0f} MiB in {elapsed:.1f} s "
                f"({got / 2**20 / elapsed:.0f} MiB/s) while {patrons} patrons fetched {pages} pages"
            )
            print("| baseline RSS MiB | peak RSS MiB | growth MiB | aim |")
            print("|---|---|---|---|")
            print(
                f"| {baseline / 1024:.1f} | {peak / 1024:.1f} | {(peak - baseline) / 1024:.1f} | < 50 |"
            )
        finally:
            proc.terminate()
            proc.wait()
            await vendor.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--patrons", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.size_mb, args.patrons))


if __name__ == "__main__":
    main()
