"""The ``gateway`` command: ``serve``, ``rules check|import|explain`` and friends."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import socket
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import config, serving
from gateway.admin.staff import Role
from gateway.auth.directory import PatronStatus
from gateway.rules import commands as rules_commands

log = logging.getLogger("gateway")

Command = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> config.Settings:
    return config.load(getattr(args, "config", None))


def setup_logging(level: str) -> None:
    """One line per event on stderr, with time, level and origin."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway until interrupted."""
    from gateway.app import StartupError, build_app

    settings = _settings(args)
    setup_logging(settings.logging.level)
    if args.workers > 1:
        return _serve_workers(args, settings)
    demo_lines: list[str] = []
    if args.demo:
        from gateway.auth.commands import ensure_demo_patron
        from gateway.demo.run import demo_settings, vendor_ctx

        settings, port, tls_dir = demo_settings(settings)
        card, pin = ensure_demo_patron(settings)
        demo_lines.append(f"  demo patron: card {card}, PIN {pin}")
        from gateway.admin.commands import ensure_demo_staff

        user, password = ensure_demo_staff(settings)
        demo_lines.append(
            f"  librarians' console: {settings.admin_url}/ as {user}, password {password} "
            "(new at every demo start)"
        )
        demo_lines.append(
            "  demo vendor: https://www.demo-journals.test/ (served on 127.0.0.1:"
            f"{port}), open it as {settings.public_url}/login?url=https://www.demo-journals.test/"
        )
    app = build_app(settings)
    if args.demo:
        app.cleanup_ctx.append(vendor_ctx(port, tls_dir))

    async def banner(app: web.Application) -> None:
        print(f"Carrel gateway ready: {settings.public_url}/", flush=True)
        print(f"  listening on {settings.server.listen}; Ctrl-C stops it", flush=True)
        for line in demo_lines:
            print(line, flush=True)

    if args.listen_fd is None:
        app.on_startup.append(banner)
    app.on_startup.append(_collect_less)
    listen: dict[str, Any] = (
        {"sock": socket.socket(fileno=args.listen_fd)}
        if args.listen_fd is not None
        else {"host": settings.listen_host, "port": settings.listen_port}
    )
    try:
        context = _tls_context(settings)
        serving.run(
            _event_loop(),
            lambda: serving.start(
                app, settings, ssl_context=context, handle_signals=True, **listen
            ),
        )
    except StartupError as exc:
        print(f"gateway: cannot start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"gateway: cannot listen on {settings.server.listen}: {exc}", file=sys.stderr)
        return 1
    return 0


def _serve_workers(args: argparse.Namespace, settings: config.Settings) -> int:
    from gateway.workers import supervise, worker_argv

    if args.demo:
        print("gateway serve: --demo runs one process; leave out --workers", file=sys.stderr)
        return 2
    banner = [
        f"Carrel gateway ready: {settings.public_url}/",
        f"  listening on {settings.server.listen} with {args.workers} workers; Ctrl-C stops it",
    ]
    try:
        return asyncio.run(supervise(settings, args.workers, worker_argv(args.config), banner))
    except OSError as exc:
        print(f"gateway: cannot listen on {settings.server.listen}: {exc}", file=sys.stderr)
        return 1


def _tls_context(settings: config.Settings) -> ssl.SSLContext | None:
    """The server's TLS context when it serves https itself."""
    if not settings.server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.server.tls_cert, settings.server.tls_key)
    return context


async def _collect_less(app: web.Application) -> None:
    """Started: what startup built stays (out of the collector's way), and the young
    generation is collected every 50,000 allocations instead of 700. A proxied request
    allocates thousands of objects that reference counting frees; collecting every 700 cost
    the slowest requests most (p99 latency about a third lower in the proxy bench)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (it serves the same code about twice as fast), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def cmd_rules_check(args: argparse.Namespace) -> int:
    """Check rule files for errors and warnings."""
    paths = [Path(p) for p in args.paths] or [Path(_settings(args).rules.dir)]
    return rules_commands.check(paths, sys.stdout)


def cmd_rules_import(args: argparse.Namespace) -> int:
    """Split an EZproxy config.txt into one file per database."""
    return rules_commands.import_config(Path(args.config_txt), Path(args.into), sys.stdout)


def cmd_rules_explain(args: argparse.Namespace) -> int:
    """Say which rule allows a URL and how it is proxied."""
    return rules_commands.explain_url(_settings(args), args.url, sys.stdout)


def cmd_rewrite(args: argparse.Namespace) -> int:
    """Print what a patron would get for a document fetched from a URL."""
    from gateway.rewrite_command import rewrite_file

    if args.chunk_size < 1:
        print("gateway rewrite: --chunk-size must be at least 1", file=sys.stderr)
        return 2
    return rewrite_file(
        _settings(args), args.url, args.file, args.content_type, args.chunk_size, sys.stdout.buffer
    )


PATRON_EXAMPLES = {
    "add": "gateway patrons add 21234000000001 --pin 4827 --name Ana --email ana@example.org",
    "import": "gateway patrons import patrons.csv",
    "list": "gateway patrons list --status active --must-change",
    "block": "gateway patrons block 21234000000001",
    "unblock": "gateway patrons unblock 21234000000001",
    "show": "gateway patrons show 21234000000001",
    "reset-pin": "gateway patrons reset-pin 21234000000001",
    "remove": "gateway patrons remove 21234000000001",
}
"""What ``gateway patrons ACTION --help`` shows as an example, for every action."""


def cmd_patrons(args: argparse.Namespace) -> int:
    """Manage the local patron directory."""
    from gateway.auth import commands

    settings = _settings(args)
    action = args.patrons_command
    if action == "add":
        return commands.add(settings, args.card, args.pin, args.name, args.email, args.groups,
                            args.expires, sys.stdout)  # fmt: skip
    if action == "import":
        return commands.import_csv(settings, Path(args.file), sys.stdout)
    if action == "list":
        status = PatronStatus(args.status) if args.status else None
        return commands.list_patrons(settings, status, args.must_change, sys.stdout)
    if action == "remove":
        return commands.remove(settings, args.card, sys.stdout)
    if action == "reset-pin":
        return commands.reset_pin(settings, args.card, sys.stdout)
    if action in ("block", "unblock"):
        status = PatronStatus.BLOCKED if action == "block" else PatronStatus.ACTIVE
        return commands.set_status(settings, args.card, status, sys.stdout)
    return commands.show(settings, args.card, sys.stdout)


def cmd_staff(args: argparse.Namespace) -> int:
    """Manage the console's staff accounts."""
    from gateway.admin import commands

    settings = _settings(args)
    action = args.staff_command
    if action == "add":
        return commands.add(settings, args.user, args.role, sys.stdin, sys.stdout)
    if action == "passwd":
        return commands.passwd(settings, args.user, sys.stdin, sys.stdout)
    if action in ("disable", "enable"):
        return commands.set_disabled(settings, args.user, action == "disable", sys.stdout)
    if action == "token":
        return commands.token(settings, args.user, sys.stdout)
    return commands.list_staff(settings, sys.stdout)


def cmd_usage(args: argparse.Namespace) -> int:
    """Usage reports."""
    from gateway.usage.commands import report_command

    return report_command(_settings(args), args.month, args.format, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="gateway", description="Carrel: a database access gateway for libraries."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="TOML configuration file (default: $GATEWAY_CONFIG)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="run the gateway")
    serve.add_argument(
        "--demo", action="store_true", help="also serve the offline demo vendor site"
    )
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes sharing the port"
    )
    serve.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    rules = sub.add_parser("rules", help="check, import and explain database rules")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = rules_sub.add_parser(
        "check", parents=[common], help="report errors and warnings in rule files"
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    check.set_defaults(func=cmd_rules_check)
    imp = rules_sub.add_parser("import", help="split an EZproxy config.txt, one file a database")
    imp.add_argument("config_txt", metavar="CONFIG.TXT")
    imp.add_argument("--into", required=True, metavar="DIR", help="directory to write into")
    imp.set_defaults(func=cmd_rules_import)
    explain = rules_sub.add_parser(
        "explain", parents=[common], help="which rule allows a URL, and its proxied form"
    )
    explain.add_argument("url", metavar="URL")
    explain.set_defaults(func=cmd_rules_explain)
    patrons = sub.add_parser("patrons", help="manage the local patron directory")
    patrons_sub = patrons.add_subparsers(dest="patrons_command", required=True, metavar="ACTION")
    add = patrons_sub.add_parser("add", parents=[common], help="add a patron (or replace one)")
    add.add_argument("card")
    add.add_argument("--pin", required=True, help="four digits; the PIN policy applies")
    add.add_argument("--name", default="")
    add.add_argument("--email", default="")
    add.add_argument("--groups", default="Default", help="comma-separated database groups")
    add.add_argument("--expires", default="", help="expiry date, YYYY-MM-DD")
    imp_patrons = patrons_sub.add_parser(
        "import", parents=[common], help="import a CSV (header: card,pin,name,email,groups,expires)"
    )
    imp_patrons.add_argument("file", metavar="FILE.csv")
    actions = (
        ("block", "block a card"),
        ("unblock", "unblock a card"),
        ("show", "show a patron (never the PIN)"),
        ("reset-pin", "desk reset: print a new PIN once; the patron must change it"),
    )
    for name, text in actions:
        one = patrons_sub.add_parser(name, parents=[common], help=text)
        one.add_argument("card")
    listing = patrons_sub.add_parser(
        "list", parents=[common], help="list patrons: card, status, must change PIN, name"
    )
    listing.add_argument(
        "--status", choices=[status.value for status in PatronStatus], help="only this status"
    )
    listing.add_argument(
        "--must-change", action=argparse.BooleanOptionalAction, default=None,
        help="only patrons who must (--no-must-change: need not) choose a new PIN",
    )  # fmt: skip
    removing = patrons_sub.add_parser(
        "remove", parents=[common], help="delete a patron; the card's live sessions end"
    )
    removing.add_argument("card")
    for name, example in PATRON_EXAMPLES.items():
        patrons_sub.choices[name].epilog = f"example: {example}"
    patrons.set_defaults(func=cmd_patrons)

    staff = sub.add_parser("staff", help="manage the librarians' console accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    staff_add = staff_sub.add_parser(
        "add", parents=[common], help="add an account (password asked for, or generated)"
    )
    staff_add.add_argument("user")
    staff_add.add_argument("--role", required=True, choices=[role.value for role in Role])
    staff_actions = (
        ("passwd", "set a new password (asked for, or generated)"),
        ("disable", "disable an account (and its API token)"),
        ("enable", "enable an account again"),
        ("token", "print a new API token (the previous one stops working)"),
    )
    for name, text in staff_actions:
        one = staff_sub.add_parser(name, parents=[common], help=text)
        one.add_argument("user")
    staff_sub.add_parser("list", parents=[common], help="list the accounts")
    staff.set_defaults(func=cmd_staff)

    usage = sub.add_parser("usage", help="usage reports")
    usage_sub = usage.add_subparsers(dest="usage_command", required=True, metavar="ACTION")
    usage_report = usage_sub.add_parser(
        "report", parents=[common], help="sessions, patrons, requests, downloads, bytes by database"
    )
    usage_report.add_argument("--month", default="", help="YYYY-MM (default: this month, UTC)")
    usage_report.add_argument("--format", choices=["csv", "json"], default="csv")
    usage.set_defaults(func=cmd_usage)

    rewrite = sub.add_parser(
        "rewrite", parents=[common], help="show how a document from a URL is rewritten"
    )
    rewrite.add_argument("--url", required=True, help="the vendor URL the document came from")
    rewrite.add_argument("--content-type", help="its content type (default: guessed)")
    rewrite.add_argument(
        "--chunk-size", type=int, default=65536, metavar="N", help="feed it N bytes at a time"
    )
    rewrite.add_argument("file", metavar="FILE", help="the document ('-' for standard input)")
    rewrite.set_defaults(func=cmd_rewrite)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gateway`` command."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except config.ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
