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


def scope_of(ruleset: RuleSet, target: ProxyTarget) -> Scope:
    """The companion's view of ``ruleset`` for a gateway reached as ``target`` describes."""
    data = {
        "domain": target.proxy_domain,
        "scheme": target.scheme,
        "port": target.port_suffix,
        "login": target.login_host,
        "hosts": [origin.url() for origin in ruleset.host_origins],
        "domains": list(ruleset.domain_names),
        "never": list(ruleset.never_patterns),
        "edits": [[edit.find, edit.replace] for edit in ruleset.hostname_edits],
    }
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    return Scope(text, hashlib.sha256(text.encode()).hexdigest()[:VERSION_LENGTH])
