"""Dependencies point one way: the layers of README's Layout section, checked from the import
statements of every module (imports for the type checker alone do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "gateway"

PURE = (
    "addresses", "bounded", "clock", "hostmap", "i18n", "limits", "logsafe", "netblocks",
    "redis_keys",
    "escapes.reports", "escapes.lines",
    "rules.anonymous", "rules.explain", "rules.model", "rules.parser", "rules.ruleset",
    "rewrite", "auth.attribute_rules", "auth.directory", "auth.pin_policy", "auth.secrets", "auth.sip2_codec",
    "web.targets", "companion.bundle", "companion.inject", "companion.scope",
)  # fmt: skip
"""No I/O: they import only each other, and neither aiohttp, redis nor jinja2."""
LAYERS: tuple[tuple[str, ...], ...] = (
    PURE,
    ("config",),
    ("redis_client", "read_batch", "embedded_redis", "sqlite_file", "background", "mail",
     "metrics", "sessions", "handover", "audit", "appkeys", "edge"),
    ("auth", "rules", "usage", "escapes"),
    ("web", "proxy", "admin", "companion", "health", "serving", "demo", "workers", "rewrite_command",
     "rules.commands", "auth.commands", "usage.commands", "admin.commands", "app", "cli",
     "__main__"),
)  # fmt: skip
"""Each layer may import its own and those before it, never those after."""
FORBIDDEN = {
    "web": ("proxy", "admin", "app", "cli"),
    "proxy": ("admin", "app", "cli"),
    "admin": ("proxy", "app", "cli"),
}
"""Within the last layer: the pages, the proxy and the console stand beside each other."""
IO_LIBRARIES = ("aiohttp", "redis", "jinja2")


def _unit(module: str, names: tuple[str, ...]) -> str | None:
    """The longest of ``names`` that ``module`` (``rules.parser``) is or lies inside."""
    found = [n for n in names if module == n or module.startswith(n + ".")]
    return max(found, key=len) if found else None


def layer_of(module: str) -> int:
    """The layer of a gateway module (without the ``gateway.`` prefix)."""
    every = tuple(name for layer in LAYERS for name in layer)
    unit = _unit(module, every)
    assert unit is not None, f"gateway.{module} is in no layer: add it to LAYERS"
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Every import in ``imports`` (module -> the modules it imports, full names) that breaks
    the layering."""
    found = []
    for module, targets in sorted(imports.items()):
        for target in sorted(targets):
            if not target.startswith("gateway."):
                if layer_of(module) == 0 and target.split(".")[0] in IO_LIBRARIES:
                    found.append(f"gateway.{module} (pure) imports {target}")
                continue
            other = target.removeprefix("gateway.")
            if layer_of(other) > layer_of(module):
                found.append(f"gateway.{module} imports gateway.{other}, a layer above it")
            top = module.split(".")[0]
            if _unit(other, FORBIDDEN.get(top, ())):
                found.append(f"gateway.{module} imports gateway.{other}, which stands beside it")
    return found


def _runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    checking_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in checking_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            names.update(f"{base}.{a.name}" if base == "gateway" else base for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def gateway_imports() -> dict[str, set[str]]:
    """The runtime imports of every module of the package."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(p for p in parts if p != "__init__") or "__init__"
        if module == "__init__":
            continue
        found[module] = _runtime_imports(path)
    return found


def test_the_gateways_imports_keep_the_layers() -> None:
    assert violations(gateway_imports()) == []


@pytest.mark.parametrize(
    ("imports", "broken"),
    [
        ({"rewrite.body": {"aiohttp"}}, "gateway.rewrite.body (pure) imports aiohttp"),
        ({"rules.parser": {"gateway.config"}}, "a layer above"),
        ({"config": {"gateway.usage.tracker"}}, "a layer above"),
        ({"sessions": {"gateway.admin.pages"}}, "a layer above"),
        ({"proxy.handler": {"gateway.admin.access"}}, "beside it"),
        ({"web.patron": {"gateway.proxy.handler"}}, "beside it"),
    ],
)
def test_an_import_against_the_layers_is_found(imports: dict[str, set[str]], broken: str) -> None:
    assert any(broken in line for line in violations(imports))


def test_imports_that_keep_the_layers_pass() -> None:
    allowed = {
        "proxy.handler": {"gateway.web.pages", "gateway.rewrite.body", "aiohttp"},
        "rewrite.body": {"gateway.hostmap", "re"},
        "admin.pages": {"gateway.web.csrf", "gateway.audit"},
    }
    assert violations(allowed) == []
