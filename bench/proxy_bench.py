"""Requests per second and latency through the gateway, beside nginx doing the same job.

    PYTHONPATH=. .venv/bin/python bench/proxy_bench.py [--seconds 10] [--connections 50]

Needs Debian's wrk and nginx. One nginx serves the vendor's files (a 50 KB HTML page full of the
vendor's absolute URLs, a 20 MB PDF); wrk then measures, in one run, side by side:

- direct: wrk against the vendor itself;
- nginx: a second nginx with ``proxy_pass`` to the vendor and ``sub_filter`` rewriting the page's
  URLs to proxied ones (the nginx config is printed with the results);
- gateway: ``gateway serve --workers 2`` with a logged-in session cookie;
- bare aiohttp proxy: ``bare_proxy.py`` in 2 processes, the least a proxy on Carrel's stack
  does (no session, no rewriting): the ceiling for the gateway on this machine.

Everything runs on this 2-core machine at once, wrk included, so compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.demo.vendor import demo_pdf  # noqa: E402
from gateway.embedded_redis import free_port  # noqa: E402

VENDOR = "www.vendor.test"
CARD, PIN = "21234000000001", "4827"


def page(urls: int) -> bytes:
    """A 50 KB results page with ``urls`` absolute URLs of the vendor; the rest is text."""
    words = "Results of a search across the vendor's journals, with an abstract for each. " * 3
    items = "".join(
        f'<li><a href="http://{VENDOR}/article/{i}">Article {i}</a> '
        f'<img src="http://{VENDOR}/i/{i}.png" alt=""> {words if urls <= 100 else ""}</li>\n'
        for i in range(urls // 2)
    )
    body = f"<!doctype html><html><head><title>Vendor</title></head><body><ul>{items}</ul>"
    filler = "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20 + "</p>\n"
    while len(body) < 51200:
        body += filler
    return (body[:51180] + "</body></html>").encode()


NGINX_VENDOR = """
worker_processes 1; daemon off; pid {tmp}/vendor.pid; error_log {tmp}/vendor.err;
events {{ worker_connections 1024; }}
http {{ access_log off; types {{ text/html html; application/pdf pdf; }} default_type text/html;
  server {{ listen 127.0.0.1:{port}; root {tmp}/www; }} }}
"""

NGINX_PROXY = """
worker_processes 2; daemon off; pid {tmp}/proxy.pid; error_log {tmp}/proxy.err;
events {{ worker_connections 1024; }}
http {{ access_log off;
  upstream vendor {{ server 127.0.0.1:{vendor_port}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://vendor;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host {vendor};
      proxy_set_header Accept-Encoding "";
      sub_filter_types text/html;
      sub_filter_once off;
      sub_filter "http://{vendor}" "http://www-vendor-test---http.proxy.localhost:{port}";
    }}
  }}
}}
"""


def median_runs(results: list[tuple[dict[str, float], ...]]) -> tuple[dict[str, float], ...]:
    """Per test (HTML, dense HTML, PDF), the median of every figure over the rounds."""
    return tuple(
        {key: statistics.median(run[test][key] for run in results) for key in results[0][test]}
        for test in range(len(results[0]))
    )


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    transfer, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()  # type: ignore[union-attr]
    mb = float(transfer) * {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors[1]} error responses\n{out}")
    return {"rps": rate, "p50": ms("50%"), "p99": ms("99%"), "mbs": mb}


def login(base: str) -> str:
    host = {"Host": "login.proxy.localhost"}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/login", headers=host)) as r:
        html = r.read().decode()
        jar: SimpleCookie = SimpleCookie(r.headers["Set-Cookie"])
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]  # type: ignore[index]
    data = f"csrf_token={token}&card={CARD}&pin={PIN}&url=".encode()
    request = urllib.request.Request(
        f"{base}/login", data=data,
        headers={**host, "Cookie": f"carrel_form={jar['carrel_form'].value}"},
    )  # fmt: skip

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object) -> None:
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(request)
    except urllib.error.HTTPError as answer:
        cookie: SimpleCookie = SimpleCookie(answer.headers["Set-Cookie"])
        return cookie["carrel_session"].value
    raise RuntimeError("login did not redirect")


def wait_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 60  # a loaded machine can take a while to start a gateway
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing on {port}")


def write_rules(tmp: str) -> Path:
    """The vendor's stanza in a rules directory of its own."""
    rules = Path(tmp, "rules")
    rules.mkdir()
    (rules / "vendor.txt").write_text(f"Title Vendor\nURL http://{VENDOR}/\nHJ http://{VENDOR}\n")
    return rules


def gateway_env(port: int, state: str, rules: Path, vendor_port: int) -> dict[str, str]:
    """The environment of a benchmarked gateway: its port and state, the vendor on loopback,
    the access log off (as in nginx), lockouts out of the way of the bench's logins."""
    return {
        **os.environ,
        "GATEWAY_SERVER__LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER__STATE_DIR": state,
        "GATEWAY_RULES__DIR": str(rules),
        "GATEWAY_UPSTREAM__RESOLVE": f'{{ "{VENDOR}" = "127.0.0.1:{vendor_port}" }}',
        "GATEWAY_LOGGING__LEVEL": "warning",
        "GATEWAY_LOGGING__ACCESS_LOG": "-",
        "GATEWAY_LOCKOUT__ADDRESS_FAILURES": "1000",
    }


def add_patron(gateway: list[str], env: dict[str, str], cwd: Path | str) -> None:
    """The card the bench logs in with."""
    subprocess.run([*gateway, "patrons", "add", CARD, "--pin", PIN], env=env, cwd=cwd,
                   check=True, capture_output=True)  # fmt: skip


def patron_headers(port: int) -> dict[str, str]:
    """Log in to the gateway on ``port``; the headers of the patron's requests to the vendor."""
    cookie = login(f"http://127.0.0.1:{port}")
    return {"Host": f"www-vendor-test---http.proxy.localhost:{port}",
            "Cookie": f"carrel_session={cookie}"}  # fmt: skip


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every process, then wait for each."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1,
                        help="times through every target; medians are shown")  # fmt: skip
    parser.add_argument("--gateway-only", action="store_true",
                        help="measure only the gateway (quick runs while profiling)")  # fmt: skip
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as nobody
        www = Path(tmp, "www")
        (www / "files").mkdir(parents=True)
        (www / "page.html").write_bytes(page(100))
        (www / "dense.html").write_bytes(page(800))
        pdf = demo_pdf("Benchmark", pages=1)
        (www / "files" / "big.pdf").write_bytes(pdf + os.urandom(20 * 2**20 - len(pdf)))
        vendor_port, nginx_port, gateway_port = free_port(), free_port(), free_port()
        bare_port = free_port()
        Path(tmp, "vendor.conf").write_text(NGINX_VENDOR.format(tmp=tmp, port=vendor_port))
        proxy_conf = NGINX_PROXY.format(
            tmp=tmp, port=nginx_port, vendor_port=vendor_port, vendor=VENDOR
        )
        Path(tmp, "proxy.conf").write_text(proxy_conf)
        env = gateway_env(gateway_port, f"{tmp}/state", write_rules(tmp), vendor_port)
        gateway = [sys.executable, "-m", "gateway"]
        add_patron(gateway, env, ROOT)
        try:
            for conf in ("vendor.conf", "proxy.conf"):
                procs.append(subprocess.Popen(["nginx", "-c", f"{tmp}/{conf}", "-p", tmp]))
            procs.append(subprocess.Popen([*gateway, "serve", "--workers", "2"], env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL))  # fmt: skip
            bare = [sys.executable, str(ROOT / "bench" / "bare_proxy.py"), str(bare_port),
                    f"http://127.0.0.1:{vendor_port}", VENDOR]  # fmt: skip
            procs += [subprocess.Popen(bare) for _ in range(2)]
            for port in (vendor_port, nginx_port, gateway_port, bare_port):
                wait_port(port)
            time.sleep(2)
            gw_headers = patron_headers(gateway_port)
            targets = {
                "direct": (f"http://127.0.0.1:{vendor_port}", {"Host": VENDOR}),
                "nginx proxy_pass + sub_filter": (f"http://127.0.0.1:{nginx_port}", {}),
                "gateway, 2 workers": (f"http://127.0.0.1:{gateway_port}", gw_headers),
                "bare aiohttp proxy, 2 processes (no rewriting)": (
                    f"http://127.0.0.1:{bare_port}",
                    {},
                ),
            }
            if args.gateway_only:
                targets = {k: v for k, v in targets.items() if k.startswith("gateway")}
            # Rounds go through every target in turn, so a slow minute of the machine falls on
            # all of them; each figure is the median over the rounds.
            runs: dict[str, list[tuple[dict[str, float], ...]]] = {name: [] for name in targets}
            for _ in range(args.rounds):
                for name, (base, headers) in targets.items():
                    html = wrk(f"{base}/page.html", args.seconds, args.connections, headers)
                    dense = wrk(f"{base}/dense.html", args.seconds, args.connections, headers)
                    big = wrk(f"{base}/files/big.pdf", args.seconds, 4, headers)
                    runs[name].append((html, dense, big))
            rows = [(name, *median_runs(results)) for name, results in runs.items()]
            ref = rows[1] if len(rows) > 1 else rows[0]
            print(
                f"# {time.strftime('%Y-%m-%d')}, wrk -t2, {args.seconds} s per run, median of "
                f"{args.rounds} round(s); HTML with {args.connections} connections, PDF with 4"
            )
            print(
                "| target | HTML, 100 URLs: req/s | p50 ms | p99 ms | HTML, 800 URLs: req/s "
                "| 20 MB PDF: MB/s | vs nginx: HTML | 800-URL HTML | PDF |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for name, html, dense, big in rows:
                print(
                    f"| {name} | {html['rps']:.0f} | {html['p50']:.1f} | {html['p99']:.1f} | "
                    f"{dense['rps']:.0f} | {big['mbs']:.0f} | {html['rps'] / ref[1]['rps']:.2f}x | "
                    f"{dense['rps'] / ref[2]['rps']:.2f}x | {big['mbs'] / ref[3]['mbs']:.2f}x |"
                )
            print("\nnginx configuration (proxy):\n")
            print(textwrap.indent(proxy_conf.replace(tmp, "$TMP").strip(), "    "))
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
