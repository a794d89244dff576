"""The container files: the compose file parses and wires what a deployment needs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from gateway import config

DOCKER = Path(__file__).resolve().parent.parent / "docker"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def test_compose_has_two_gateways_redis_and_a_tls_front() -> None:
    services = compose()["services"]
    assert set(services) == {"gateway", "redis", "front"}
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] == 2
    assert gateway["build"]["dockerfile"] == "docker/Dockerfile"
    assert "/healthz" in " ".join(gateway["healthcheck"]["test"])
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "443:443" in services["front"]["ports"]


def test_redis_keeps_sessions_durable_and_never_evicts() -> None:
    command = " ".join(compose()["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command


def test_volumes_are_declared_and_used() -> None:
    data = compose()
    declared = set(data["volumes"])
    used = {
        volume.split(":")[0]
        for service in data["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/", "$"))
    }
    assert used == declared == {"carrel-state", "redis-data"}


def test_only_images_the_docs_name_are_pulled() -> None:
    readme = (DOCKER / "README.md").read_text()
    images = {s["image"] for s in compose()["services"].values() if "build" not in s}
    base = re.findall(r"^FROM (\S+)", (DOCKER / "Dockerfile").read_text(), re.M)
    for image in images | set(base):
        assert f"`{image}`" in readme


def test_dockerfile_runs_as_a_user_with_a_healthcheck_and_a_state_volume() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'VOLUME ["/var/lib/carrel"]' in text


def test_the_container_configuration_is_valid() -> None:
    data = tomllib.loads((DOCKER / "gateway.toml").read_text())
    settings = config.build(data, env={})
    assert settings.server.public_scheme == "https" and settings.server.trusted_proxies


def test_plain_http_is_redirected_to_https() -> None:
    assert "80:80" in compose()["services"]["front"]["ports"]
    caddyfile = (DOCKER / "Caddyfile").read_text()
    block = re.search(
        r"^http://\*\.\{\$PROXY_DOMAIN\}, http://\{\$PROXY_DOMAIN\} \{(.*?)^\}",
        caddyfile,
        re.M | re.S,
    )
    assert block and "redir https://{host}{uri} permanent" in block[1]


def test_the_rules_mount_is_writable_by_the_container_user_the_readme_names() -> None:
    rules = [v for v in compose()["services"]["gateway"]["volumes"] if "rewrite_rules" in v]
    assert rules == ["../rewrite_rules:/etc/carrel/rewrite_rules"]  # not :ro: the console saves
    uid = re.search(r"useradd --system --uid (\d+)", (DOCKER / "Dockerfile").read_text())
    assert uid and f"chown -R {uid[1]}:{uid[1]} rewrite_rules" in (DOCKER / "README.md").read_text()


def test_readme_covers_renewal_mail_and_the_library_section() -> None:
    readme = (DOCKER / "README.md").read_text()
    assert "### Renewal" in readme and "caddy reload" in readme and "xcaddy build --with" in readme
    assert "[mail]" in readme and "GATEWAY_MAIL__PASSWORD" in readme
    keys = ("name", "logo_url", "address", "phone", "email", "chat_url", "catalogue_url",
            "account_url")  # fmt: skip
    assert "[library]" in readme and all(f"`{key}`" in readme for key in keys)
    password = compose()["services"]["gateway"]["environment"]["GATEWAY_MAIL__PASSWORD"]
    assert password == "${CARREL_MAIL_PASSWORD:-}"
