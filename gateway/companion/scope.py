"""What the companion needs to know of the rules and the gateway's address, as JSON (pure).

The companion maps a URL exactly as ``gateway.hostmap`` does and proxies exactly the origins
``RuleSet.lookup`` allows, so it gets the same inputs: the hosts and domains the lines name, the
NeverProxy patterns and the ProxyHostnameEdit pairs. The version is a hash of the text, so the
scope script's URL changes when (and only when) what it says changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from gateway.hostmap import Origin
from gateway.rewrite.target import ProxyTarget
from gateway.rules.ruleset import RuleSet

VERSION_LENGTH = 16
"""Hex digits of the SHA-256 kept in URLs: collisions are not a concern at 64 bits."""


@dataclass(frozen=True)
class Scope:
    """The scope script of one rule set, and its version."""

    text: str
    version: str

    @property
    def script(self) -> bytes:
        """The classic script that hands the scope to the companion (in pages and workers)."""
        return f"globalThis.__carrelScope = {self.text};\n".encode()


def _covered_by_domain(origin: Origin, domains: set[str]) -> bool:
    """Whether a Domain/DJ line already covers ``origin`` (as ``RuleSet.lookup`` walks up)."""
    if not origin.default_port:
        return False
    name = origin.host
    while True:
        if name in domains:
            return True
        _, dot, name = name.partition(".")
        if not dot or "." not in name:
            return False


def _suffix_order(origin: Origin) -> tuple[list[str], str, int]:
    """Hosts of one vendor next to each other, so that the text compresses well."""
    return origin.host.split(".")[::-1], origin.scheme, origin.port


def scope_of(ruleset: RuleSet, target: ProxyTarget) -> Scope:
    """The companion's view of ``ruleset`` for a gateway reached as ``target`` describes."""
    # Hosts a domain line covers anyway are left out: with the 1,353 published stanzas that is
    # 15,700 of 16,600 (NeverProxy wins over both, so the answer is the same).
    domains = set(ruleset.domain_names)
    hosts = [o for o in ruleset.host_origins if not _covered_by_domain(o, domains)]
    data = {
        "domain": target.proxy_domain,
        "scheme": target.scheme,
        "port": target.port_suffix,
        "login": target.login_host,
        "hosts": [origin.url() for origin in sorted(hosts, key=_suffix_order)],
        "domains": sorted(domains, key=lambda name: name.split(".")[::-1]),
        "never": list(ruleset.never_patterns),
        "edits": [[edit.find, edit.replace] for edit in ruleset.hostname_edits],
    }
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return Scope(text, hashlib.sha256(text.encode()).hexdigest()[:VERSION_LENGTH])
