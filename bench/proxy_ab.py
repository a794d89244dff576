"""A/B of two source trees of the gateway: requests per second and worker CPU per request.

    PYTHONPATH=. .venv/bin/python bench/proxy_ab.py OLD_TREE NEW_TREE [--rounds 6] [--seconds 5]

Each tree (a git worktree, say, with ``.venv`` linked in and its C scanner built) runs its own
``gateway serve --workers 2`` against one nginx vendor serving the 50 KB, 100-URL page of
``proxy_bench.py``; wrk loads one gateway at a time, taking turns (old, new, new, old, ...), so
both meet the machine's slow and fast minutes alike. Besides req/s, which the rest of the
machine sways, it reports the CPU the gateway's workers used per request, from /proc.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.proxy_bench import (  # noqa: E402
    NGINX_VENDOR,
    add_patron,
    gateway_env,
    page,
    patron_headers,
    stop,
    wait_port,
    write_rules,
    wrk,
)
from gateway.embedded_redis import free_port  # noqa: E402


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def workers_of(pid: int) -> list[int]:
    """The worker processes ``gateway serve`` started."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs=2, help="the old and the new source tree")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as nobody
        Path(tmp, "www").mkdir()
        Path(tmp, "www", "page.html").write_bytes(page(100))
        vendor_port = free_port()
        Path(tmp, "vendor.conf").write_text(NGINX_VENDOR.format(tmp=tmp, port=vendor_port))
        rules = write_rules(tmp)
        try:
            procs.append(subprocess.Popen(["nginx", "-c", f"{tmp}/vendor.conf", "-p", tmp]))
            started = []
            for i, tree in enumerate(args.trees):
                port = free_port()
                env = {**gateway_env(port, f"{tmp}/state{i}", rules, vendor_port),
                       "PYTHONPATH": tree}  # fmt: skip
                gateway = [f"{tree}/.venv/bin/python", "-m", "gateway"]
                add_patron(gateway, env, tree)
                procs.append(subprocess.Popen([*gateway, "serve", "--workers", "2"], env=env,
                                              cwd=tree, stdout=subprocess.DEVNULL))  # fmt: skip
                started.append((tree, port, procs[-1].pid))
            for _, port, _ in started:
                wait_port(port)
            time.sleep(2)
            targets = [(tree, port, patron_headers(port), workers_of(pid))
                       for tree, port, pid in started]  # fmt: skip
            results: dict[str, list[tuple[float, float]]] = {tree: [] for tree in args.trees}
            for turn in range(args.rounds):
                for tree, port, headers, workers in targets[:: 1 if turn % 2 == 0 else -1]:
                    before = cpu_seconds(workers)
                    rate = wrk(f"http://127.0.0.1:{port}/page.html", args.seconds, 50, headers)
                    used = cpu_seconds(workers) - before
                    results[tree].append((rate["rps"], used / (rate["rps"] * args.seconds)))
            print(f"# {time.strftime('%Y-%m-%d')}, {args.rounds} turns of {args.seconds} s each")
            print("| tree | req/s, median | worker CPU per request, median | runs (req/s, µs) |")
            print("|---|---|---|---|")
            for tree, runs in results.items():
                rates = [r for r, _ in runs]
                cpu = [c * 1e6 for _, c in runs]
                each = ", ".join(f"{r:.0f}/{c:.0f}" for r, c in zip(rates, cpu, strict=True))
                print(f"| {tree} | {statistics.median(rates):.0f} | "
                      f"{statistics.median(cpu):.0f} µs | {each} |")  # fmt: skip
            # Each turn's two runs were back to back: their ratio cancels most of the machine's
            # drift between turns, which the medians above keep.
            old, new = (results[tree] for tree in args.trees)
            ratios = sorted(n[1] / o[1] for o, n in zip(old, new, strict=True))
            print(f"new/old CPU per request, turn by turn: median {statistics.median(ratios):.3f} "
                  f"({ratios[0]:.2f}-{ratios[-1]:.2f})")  # fmt: skip
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
