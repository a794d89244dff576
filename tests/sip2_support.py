"""A stand-in ILS: pysip2's SIP2 server (written by others) with a few patrons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pysip2 import (
    LOGIN,
    PATRON_INFORMATION,
    PATRON_STATUS,
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusRequest,
    PatronStatusResponse,
    SIP2Server,
)

SC_USER, SC_PASSWORD = "gateway", "sc-secret"
FREE = " " * 14
DENIED = "Y" + " " * 13  # charge privileges denied


@dataclass
class IlsPatron:
    pin: str
    name: str
    email: str = ""
    status: str = FREE
    messages: tuple[str, ...] = ()


PATRONS = {
    "21234000000001": IlsPatron("4827", "Ana Núñez", "ana@example.org"),
    "21234000000002": IlsPatron("5830", "Bo Ødegård Çelik"),
    "21234000000003": IlsPatron(
        "6048", "Cy Blocked", status=DENIED, messages=("Please see the circulation desk.",)
    ),
    "21234000000004": IlsPatron(
        "7306", "Di Expired", status=DENIED, messages=("Your card expired on 2025-01-31.",)
    ),
}
for n in range(100, 150):
    PATRONS[f"21234000000{n}"] = IlsPatron("4827", f"Patron {n}")


@dataclass
class Ils:
    port: int
    peers: set[Any] = field(default_factory=set)
    requests: int = 0


def make_server(ils: Ils, **options: Any) -> SIP2Server:
    server = SIP2Server(institution_id="LIB", login_required=True, encoding="cp850", **options)

    @server.route(LOGIN)
    def login(request: LoginRequest, ctx: Any) -> LoginResponse:
        ok = request.login_user_id == SC_USER and request.login_password == SC_PASSWORD
        return LoginResponse(ok="1" if ok else "0")

    @server.route(PATRON_INFORMATION)
    def information(request: PatronInformationRequest, ctx: Any) -> PatronInformationResponse:
        ils.peers.add(ctx.connection.peer)
        ils.requests += 1
        patron = PATRONS.get(request.patron_identifier)
        known = patron is not None
        right = known and patron.pin == (request.patron_password or "")  # type: ignore[union-attr]
        return PatronInformationResponse(
            patron_status=patron.status if patron else FREE,
            language="000",
            transaction_date="20261128    120000",
            hold_items_count="0000", overdue_items_count="0000", charged_items_count="0000",
            fine_items_count="0000", recall_items_count="0000", unavailable_holds_count="0000",
            institution_id="LIB",
            patron_identifier=request.patron_identifier,
            personal_name=patron.name if patron else "",
            valid_patron="Y" if known else "N",
            valid_patron_password="Y" if right else "N",
            email_address=patron.email if patron and patron.email else None,
            screen_message=patron.messages if patron else (),
        )  # fmt: skip

    @server.route(PATRON_STATUS)
    def status(request: PatronStatusRequest, ctx: Any) -> PatronStatusResponse:
        ils.requests += 1
        patron = PATRONS.get(request.patron_identifier)
        right = patron is not None and patron.pin == request.patron_password
        return PatronStatusResponse(
            patron_status=patron.status if patron else FREE,
            language="000",
            transaction_date="20261128    120000",
            institution_id="LIB",
            patron_identifier=request.patron_identifier,
            personal_name=patron.name if patron else "",
            valid_patron="Y" if patron else "N",
            valid_patron_password="Y" if right else "N",
            screen_message=patron.messages if patron else (),
        )

    return server


async def run_ils(**options: Any) -> AsyncIterator[Ils]:
    """The stand-in ILS, in a task of its own (anyio's task group must start and end in one task)."""
    ils = Ils(0)
    server = make_server(ils, **options)
    ready, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with server.start("127.0.0.1", 0) as port:
            ils.port = port
            ready.set()
            await stop.wait()

    task = asyncio.create_task(serve())
    await ready.wait()
    try:
        yield ils
    finally:
        stop.set()
        await task
