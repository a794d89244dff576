"""The server-side cookie jar: RFC 6265 domain, path, secure, expiry, host-only."""

from __future__ import annotations

import json

import pytest

from gateway.hostmap import Origin
from gateway.rewrite.cookies import CookieJar, GatewayCookies, parse_set_cookie, vendor_may_set

WWW = Origin.of("https", "www.jstor.org")
API = Origin.of("https", "api.jstor.org")
PLAIN = Origin.of("http", "www.jstor.org")
NOW = 1_800_000_000.0


def test_host_only_cookie_goes_back_to_its_host_only() -> None:
    jar = CookieJar()
    assert jar.set("a=1", WWW, "/", NOW)
    assert jar.header(WWW, "/x", NOW) == "a=1"
    assert jar.header(API, "/x", NOW) == ""


def test_domain_cookie_is_shared_by_the_hosts_of_the_domain() -> None:
    jar = CookieJar()
    jar.set("sid=abc; Domain=.jstor.org; Path=/", WWW, "/login", NOW)
    assert jar.header(API, "/", NOW) == "sid=abc"
    assert jar.header(Origin.of("https", "notjstor.org"), "/", NOW) == ""


def test_cookies_for_other_sites_or_whole_tlds_are_refused() -> None:
    jar = CookieJar()
    assert not jar.set("x=1; Domain=evil.com", WWW, "/", NOW)
    assert not jar.set("x=1; Domain=org", WWW, "/", NOW)
    assert len(jar) == 0


def test_path_matching_and_default_path() -> None:
    jar = CookieJar()
    jar.set("a=1; Path=/docs", WWW, "/", NOW)
    jar.set("b=2", WWW, "/app/page", NOW)  # default path /app
    assert jar.header(WWW, "/docs/x", NOW) == "a=1"
    assert jar.header(WWW, "/docsx", NOW) == ""
    assert jar.header(WWW, "/app/other", NOW) == "b=2"


def test_secure_cookies_need_https() -> None:
    jar = CookieJar()
    jar.set("s=1; Secure", WWW, "/", NOW)
    assert jar.header(PLAIN, "/", NOW) == ""
    assert not jar.set("t=1; Secure", PLAIN, "/", NOW)


def test_expiry_by_max_age_and_expires_and_deletion() -> None:
    jar = CookieJar()
    jar.set("m=1; Max-Age=60", WWW, "/", NOW)
    jar.set("e=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT", WWW, "/", NOW)
    assert jar.header(WWW, "/", NOW) == "m=1; e=1"
    assert jar.header(WWW, "/", NOW + 61) == "e=1"
    jar.set("e=; Max-Age=0", WWW, "/", NOW)
    assert "e=" not in jar.header(WWW, "/", NOW)


def test_jar_round_trips_through_plain_values() -> None:
    jar = CookieJar()
    jar.set("sid=abc; Domain=jstor.org; Path=/; Secure; HttpOnly; Max-Age=3600", WWW, "/", NOW)
    again = CookieJar.from_plain(json.loads(json.dumps(jar.to_plain())))
    assert again.header(API, "/", NOW) == "sid=abc"


GATEWAY = GatewayCookies.of("libsess", "__Host-carrel_staff")


@pytest.mark.parametrize(
    ("header", "in_jar", "to_browser"),
    [
        ("sid=1; Path=/", True, True),
        ("carrel=1", True, True),  # not the prefix, only a word that starts like it
        ("libsess=x; Domain=vendor.test", False, False),  # the configured session cookie
        ("LIBSESS=x", False, False),
        (" libsess =x", False, False),
        ("carrel_session=x", False, False),
        ("carrel_anything_new=x", False, False),
        ("Carrel_Form=x", False, False),
        ("__Host-carrel_staff=x; Path=/; Secure", False, False),
        ("__Secure-carrel_session=x; Secure", False, False),
        # A vendor's own prefixed cookies: kept in the jar (only the vendor sees it) when the
        # prefix's rules hold, never passed to the browser beside the gateway's __Host- ones.
        ("__Host-sid=1; Path=/; Secure", True, False),
        ("__host-sid=1; Path=/; Secure", True, False),
        ("__SECURE-sid=1; Secure", True, False),
        ("__Secure-sid=1", False, False),  # not Secure: a browser refuses it too
        ("__Host-sid=1; Path=/; Secure; Domain=vendor.test", False, False),
        ("__Host-sid=1; Path=/a; Secure", False, False),
        ("=carrel_session=x", False, False),  # nameless: the browser sends "carrel_session=x"
        ("carrel_session", False, False),  # nameless too
        ("=", False, False),
    ],
)
def test_vendor_may_not_set_the_gateways_cookies(
    header: str, in_jar: bool, to_browser: bool
) -> None:
    assert vendor_may_set(header, GATEWAY, to_browser=False) is in_jar
    assert vendor_may_set(header, GATEWAY, to_browser=True) is to_browser


UK = Origin.of("https", "www.vendor.co.uk")
OTHER_UK = Origin.of("https", "www.library.co.uk")


@pytest.mark.parametrize(
    ("origin", "header", "stored_for"),
    [
        (UK, "a=1; Domain=co.uk", None),  # every *.co.uk site: ignored
        (UK, "a=1; Domain=.CO.UK", None),
        (UK, "a=1; Domain=uk", None),
        (UK, "a=1; Domain=vendor.co.uk", ("vendor.co.uk", False)),
        (Origin.of("https", "x.github.io"), "a=1; Domain=github.io", None),  # a private entry
        (Origin.of("https", "a.b.kawasaki.jp"), "a=1; Domain=b.kawasaki.jp", None),  # *.kawasaki.jp
        (Origin.of("https", "co.uk"), "a=1; Domain=co.uk", ("co.uk", True)),  # the host itself
        (Origin.of("https", "203.0.113.5"), "a=1; Domain=0.113.5", None),  # an address
        (Origin.of("https", "203.0.113.5"), "a=1; Domain=203.0.113.5", ("203.0.113.5", False)),
    ],
)
def test_public_suffix_domains_are_refused_or_host_only(
    origin: Origin, header: str, stored_for: tuple[str, bool] | None
) -> None:
    cookie = parse_set_cookie(header, origin, "/", NOW)
    assert (None if cookie is None else (cookie.domain, cookie.host_only)) == stored_for


def test_public_suffix_cookie_never_reaches_another_site_under_it() -> None:
    jar = CookieJar()
    assert not jar.set("wide=1; Domain=co.uk; Path=/", UK, "/", NOW)
    assert jar.set("own=1; Path=/", UK, "/", NOW)
    assert jar.header(OTHER_UK, "/", NOW) == ""
