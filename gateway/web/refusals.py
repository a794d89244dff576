"""The "for library staff" part of a page that refuses a host or starting point, in the
page's language (the rules give it in English, for the command line and the console)."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from gateway.rules.ruleset import Fix, Refused, Why
from gateway.web import pages

REASONS = {
    Why.NEVER_PROXY: "refused_never_proxy",
    Why.NO_RULE: "refused_no_rule",
    Why.NOT_HTTP: "refused_not_http",
    Why.DOMAIN_ONLY: "refused_domain_only",
}
FIXES = {
    Fix.ADD_HJ: "fix_add_hj",
    Fix.ADD_HJ_TO: "fix_add_hj_to",
    Fix.NON_PUBLIC: "fix_non_public",
}


def staff_hint(request: web.Request, refused: Refused) -> dict[str, str]:
    """``reason`` and ``hint`` for a page's staff section, translated."""
    try:
        host = urlsplit(refused.url).hostname or refused.url
    except ValueError:  # not a URL at all: it is shown as typed
        host = refused.url
    words = {
        "url": refused.url,
        "host": host,
        "database": refused.database,
        "source": str(refused.source or ""),
    }
    fix = FIXES.get(refused.fix)
    return {
        "reason": pages.text(request, REASONS[refused.why], **words),
        "hint": pages.text(request, fix, **words) if fix else "",
    }
