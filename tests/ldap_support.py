"""A real OpenLDAP server (Debian's slapd) for the LDAP sign-in tests: its own configuration,
database and certificates in a temporary directory, listening on free loopback ports for plain
LDAP (with StartTLS) and LDAPS, seeded with ``ldapadd`` as its root DN.

Never the system's slapd (installing Debian's package starts one on :389): this one is started
and stopped by the test run."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from gateway.embedded_redis import free_port
from tests.support import stop_process, wait_for_port

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
BASE = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "root-secret"
SERVICE_DN = f"cn=gateway,ou=services,{BASE}"
SERVICE_PASSWORD = "service-secret"
PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "admin": "admin-password"}

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
# What many servers do, and what the gateway must not be fooled by: a bind with a DN and an
# empty password is an anonymous "success".
allow bind_anon_dn
database mdb
suffix "{base}"
rootdn "{root}"
rootpw {root_password}
directory {dir}/db
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{service}" read by self read by * none
"""

ENTRIES = f"""\
dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=services,{BASE}
objectClass: organizationalUnit
ou: services

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: {SERVICE_DN}
objectClass: person
cn: gateway
sn: gateway
userPassword: {SERVICE_PASSWORD}

dn: uid=alice,ou=people,{BASE}
objectClass: inetOrgPerson
uid: alice
cn: Alice Reader
sn: Reader
mail: alice@example.org
employeeType: Default
employeeType: Licensed
userPassword: {PASSWORDS["alice"]}

dn: uid=bob,ou=people,{BASE}
objectClass: inetOrgPerson
uid: bob
cn: Bob Walkin
sn: Walkin
mail: bob@example.org
employeeType: Default
employeeType: Walk-in
userPassword: {PASSWORDS["bob"]}

dn: uid=admin,ou=people,{BASE}
objectClass: inetOrgPerson
uid: admin
cn: Admin Person
sn: Person
userPassword: {PASSWORDS["admin"]}
"""


@dataclass
class Slapd:
    """A running slapd: ``ldap_url`` (plain, offers StartTLS) and ``ldaps_url``, and the CA
    that issued its certificate (for 127.0.0.1 and localhost)."""

    directory: Path
    ldap_port: int
    ldaps_port: int
    ca: trustme.CA
    process: subprocess.Popen[bytes] | None = None

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_file(self) -> str:
        return str(self.directory / "ca.pem")

    @classmethod
    def create(cls, directory: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Slapd:
        """Write the configuration and certificates (for ``names``) into ``directory`` (not
        started yet)."""
        ca = trustme.CA()
        cert = ca.issue_cert(*names)
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        cert.private_key_pem.write_to_path(str(directory / "server.key"))
        cert.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
        (directory / "db").mkdir()
        values = {"dir": directory, "base": BASE, "root": ROOT_DN,
                  "root_password": ROOT_PASSWORD, "service": SERVICE_DN}  # fmt: skip
        (directory / "slapd.conf").write_text(CONFIG.format(**values))
        return cls(directory, free_port(), free_port(), ca)

    def start(self) -> Slapd:
        """Run slapd in the foreground (``-d 0``: it does not fork, and stops with us)."""
        urls = f"ldap://127.0.0.1:{self.ldap_port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
        log = (self.directory / "slapd.log").open("wb")
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(self.directory / "slapd.conf"), "-h", urls, "-d", "0"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.ldap_port)
        wait_for_port(self.ldaps_port)
        return self

    def seed(self) -> None:
        """Add the test entries with ``ldapadd``, bound as the root DN."""
        subprocess.run(
            ["ldapadd", "-x", "-H", self.ldap_url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ENTRIES.encode(), check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def stop(self) -> None:
        stop_process(self.process)


def start_slapd(directory: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Slapd:
    """A seeded slapd in ``directory`` with a certificate for ``names``, running. Skips without
    Debian's slapd and ldap-utils; fails where CARREL_REQUIRE_LDAP is set (CI)."""
    if not (Path(SLAPD).is_file() and shutil.which("ldapadd")):
        problem = "the LDAP sign-in tests need slapd: apt-get install slapd ldap-utils"
        if os.environ.get("CARREL_REQUIRE_LDAP"):
            pytest.fail(problem)
        pytest.skip(problem)
    server = Slapd.create(directory, names).start()
    server.seed()
    return server


def directory(server: Slapd, **extra: Any) -> dict[str, Any]:
    """An ``[[ldap]]`` entry for ``server``: StartTLS on its plain port, groups from
    ``employeeType``."""
    return {
        "id": "directory", "display_name": "University account",
        "display_name_es": "Cuenta de la universidad", "url": server.ldap_url,
        "start_tls": True, "ca_file": server.ca_file, "bind_dn": SERVICE_DN,
        "bind_password": SERVICE_PASSWORD, "base_dn": f"ou=people,{BASE}",
        "groups_attribute": "employeeType", "attributes": ["mail"], "timeout": 5, **extra,
    }  # fmt: skip
