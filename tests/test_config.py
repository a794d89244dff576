"""Configuration: one validated object; every bad key is named in a one-line message."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from gateway import config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_serve_proxy_localhost_on_8080() -> None:
    settings = config.build({}, env={})
    assert settings.server.proxy_domain == "proxy.localhost"
    assert settings.public_url == "http://login.proxy.localhost:8080"
    assert settings.redis.url == ""
    assert settings.rules.dir == "rewrite_rules"


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"server": {"lisen": "1.2.3.4:80"}}, "server.lisen", "did you mean 'listen'"),
        ({"server": {"listen": "nonsense"}}, "server.listen", "host:port"),
        ({"server": {"listen": "127.0.0.1:99999"}}, "server.listen", "host:port"),
        ({"server": {"public_scheme": "ftp"}}, "server.public_scheme", "http, https"),
        ({"server": {"public_port": "80"}}, "server.public_port", "an integer"),
        ({"server": {"proxy_domain": "-bad-.org"}}, "server.proxy_domain", "DNS domain"),
        ({"redis": {"url": "http://x"}}, "redis.url", "redis://"),
        ({"redis": {"timeout": 0}}, "redis.timeout", "greater than 0"),
        ({"upstream": {"resolve": {"a.org": "nowhere"}}}, "upstream.resolve", "ip:port"),
        ({"upstream": {"ca_file": "/no/such.pem"}}, "upstream.ca_file", "does not exist"),
        ({"secrets": {"key": "short"}}, "secrets.key", "32 characters"),
        ({"sever": {}}, "sever", "did you mean 'server'"),
    ],
)
def test_bad_setting_names_the_key(
    data: dict[str, dict[str, object]], key: str, words: str
) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.build(data, env={})
    message = str(caught.value)
    assert f"{key}:" in message and words in message
    assert "\n" not in message


def test_environment_overrides_file_values_with_types() -> None:
    env = {
        "GATEWAY_SERVER__LISTEN": "0.0.0.0:9000",
        "GATEWAY_SERVER__PUBLIC_PORT": "443",
        "GATEWAY_SERVER__PUBLIC_SCHEME": "https",
        "GATEWAY_UPSTREAM__RESOLVE": '{ "www.jstor.org" = "127.0.0.1:8443" }',
    }
    settings = config.build({"server": {"listen": "127.0.0.1:1"}}, env=env)
    assert settings.server.listen == "0.0.0.0:9000"
    assert settings.public_url == "https://login.proxy.localhost"
    assert settings.upstream.resolve == {"www.jstor.org": "127.0.0.1:8443"}


def test_unknown_environment_key_is_refused() -> None:
    with pytest.raises(config.ConfigError, match=r"server\.lisen"):
        config.build({}, env={"GATEWAY_SERVER__LISEN": "1.2.3.4:5"})


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[server]\nproxy_domain = "proxy.library.org"\n')
    settings = config.load(None, env={"GATEWAY_CONFIG": str(path)})
    assert settings.login_host == "login.proxy.library.org"


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[server\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(path, env={})


def test_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = config.build({"server": {"state_dir": str(tmp_path / "s")}}, env={})
    first = config.secret_key(settings)
    assert len(first) >= 32
    assert config.secret_key(settings) == first
    mode = (tmp_path / "s" / "secret.key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_example_file_documents_every_key_and_loads() -> None:
    text = (ROOT / "gateway.example.toml").read_text()
    uncommented = "\n".join(line.removeprefix("# ") for line in text.splitlines())
    data = tomllib.loads(uncommented)
    tables = {s: v if isinstance(v, list) else [v] for s, v in data.items()}  # [[oidc]] lists
    documented = {f"{s}.{key}" for s, entries in tables.items() for e in entries for key in e}
    assert documented == {key for key, _, _ in config.describe()}
    config.build(tomllib.loads(text), env={})


def test_library_settings_are_checked_and_default_to_nothing() -> None:
    assert config.build({}, env={}).library == config.LibrarySettings()
    good = {"name": "Springfield Public Library", "phone": "+1 (555) 010-0199",
            "email": "ask@springfield.example", "chat_url": "https://chat.example/",
            "logo_url": "https://cdn.example:8443/logo.png"}  # fmt: skip
    built = config.build({"library": good}, env={}).library
    assert built.display_name("es") == "Springfield Public Library"  # no name_es: the name
    bad = {
        "phone": "call us",
        "email": "ask at the desk",
        "chat_url": "javascript:alert(1)",
        "logo_url": "https://cdn.example;script-src */logo.png",  # would split the CSP
        "catalogue_url": "https://user@catalog.example/",
        "name": "Springfield\x00",
    }
    for key, value in bad.items():
        with pytest.raises(config.ConfigError, match=f"library.{key}: expects"):
            config.build({"library": {key: value}}, env={})
    env = {"GATEWAY_LIBRARY__NAME_ES": "Biblioteca de Springfield"}
    assert config.build({}, env=env).library.display_name("es") == "Biblioteca de Springfield"


OIDC = {"id": "campus", "display_name": "Campus ID", "issuer": "https://idp.campus.example",
        "client_id": "carrel", "client_secret": "s3cret"}  # fmt: skip


def test_oidc_providers_are_a_checked_list() -> None:
    built = config.build({"oidc": [OIDC, {**OIDC, "id": "other"}]}, env={})
    assert [p.id for p in built.oidc] == ["campus", "other"]
    assert built.oidc[0].algorithms == ["RS256", "ES256"] and built.oidc[0].patron_id_claim == "sub"
    assert built.oidc[0].label("es") == "Campus ID"


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({**OIDC, "algorithms": ["none"]}, "oidc.campus.algorithms", "public-key"),
        ({**OIDC, "algorithms": ["HS256"]}, "oidc.campus.algorithms", "public-key"),
        ({**OIDC, "issuer": "http://idp.campus.example"}, "oidc.campus.issuer", "https"),
        ({**OIDC, "scopes": ["email"]}, "oidc.campus.scopes", "openid"),
        ({**OIDC, "id": "Campus ID"}, "oidc.Campus ID.id", "lower-case"),
        ({**OIDC, "id": 7}, "oidc[0].id", "a string"),
        (
            {**OIDC, "client_secert": "x"},
            "oidc.campus.client_secert",
            "did you mean 'client_secret'",
        ),
        ({k: v for k, v in OIDC.items() if k != "issuer"}, "oidc.campus.issuer", "required"),
        (
            {k: v for k, v in OIDC.items() if k != "client_secret"},
            "oidc.campus.client_secret",
            "one of them",
        ),
    ],
)
def test_bad_oidc_entry_names_the_key(entry: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.build({"oidc": [entry]}, env={})
    assert f"{key}:" in str(caught.value) and words in str(caught.value)


def test_oidc_ids_are_unique_and_card_login_needs_a_provider_to_be_off() -> None:
    with pytest.raises(config.ConfigError, match=r"oidc\.campus\.id: expects a unique id"):
        config.build({"oidc": [OIDC, OIDC]}, env={})
    with pytest.raises(config.ConfigError, match=r"signin\.card: expects true"):
        config.build({"signin": {"card": False}}, env={})
    assert not config.build({"signin": {"card": False}, "oidc": [OIDC]}, env={}).signin.card


CAS = {
    "id": "campus-cas",
    "display_name": "Campus CAS",
    "server_url": "https://cas.campus.example/cas",
}


def test_cas_servers_are_a_checked_list() -> None:
    built = config.build({"cas": [CAS], "oidc": [OIDC], "signin": {"card": False}}, env={})
    [server] = built.cas
    assert server.validate == "/p3/serviceValidate" and server.patron_id_attribute == "cas:user"
    assert server.groups_attribute == "" and server.rules == []
    assert server.label("es") == "Campus CAS"
    assert not config.build({"signin": {"card": False}, "cas": [CAS]}, env={}).signin.card


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("server_url", "http://cas.campus.example/cas", "https"),
        ("server_url", "https://cas.campus.example/cas?x=1", "without query"),
        ("server_url", None, "required"),
        ("validate", "/proxyValidate", "/p3/serviceValidate"),
        ("patron_id_attribute", "cas:mail", "cas:user"),
        ("groups_attribute", "member of", "attribute name"),
        ("rules", "Group Licensed", "a list of strings"),
        ("timeout", 0, "expects"),
    ],
)
def test_bad_cas_entry_names_the_key(key: str, value: object, words: str) -> None:
    entry = {k: v for k, v in {**CAS, key: value}.items() if v is not None}
    with pytest.raises(config.ConfigError) as caught:
        config.build({"cas": [entry]}, env={})
    assert f"cas.campus-cas.{key}:" in str(caught.value) and words in str(caught.value)


def test_provider_ids_are_unique_across_kinds() -> None:
    """They share /signin/<id>: a CAS server cannot take an OIDC provider's id."""
    with pytest.raises(config.ConfigError, match=r"cas\.campus\.id: expects a unique id"):
        config.build({"oidc": [OIDC], "cas": [{**CAS, "id": "campus"}]}, env={})


def test_an_oidc_secret_can_come_from_the_environment() -> None:
    entry = {k: v for k, v in OIDC.items() if k != "client_secret"}
    env = {"GATEWAY_OIDC__CAMPUS__CLIENT_SECRET": "from-env"}
    assert config.build({"oidc": [entry]}, env=env).oidc[0].client_secret == "from-env"
    with pytest.raises(config.ConfigError, match="no \\[\\[oidc\\]\\] entry has id 'nope'"):
        config.build({"oidc": [OIDC]}, env={"GATEWAY_OIDC__NOPE__CLIENT_SECRET": "x"})


LDAP = {"id": "directory", "display_name": "University account", "url": "ldaps://dc1.example.edu",
        "bind_dn": "cn=carrel,dc=example,dc=edu", "bind_password": "s3cret",
        "base_dn": "dc=example,dc=edu"}  # fmt: skip


def test_ldap_directories_are_a_checked_list() -> None:
    [directory] = config.build({"ldap": [LDAP]}, env={}).ldap
    assert (directory.host, directory.port, directory.ldaps) == ("dc1.example.edu", 636, True)
    assert directory.user_filter == "(&(objectClass=person)(uid={username}))"
    assert directory.patron_id_attribute == "uid" and directory.groups_attribute == ""
    plain = config.build({"ldap": [{**LDAP, "url": "ldap://dc1.example.edu", "start_tls": True}]},
                         env={}).ldap[0]  # fmt: skip
    assert (plain.port, plain.ldaps, plain.start_tls) == (389, False, True)
    loopback = {**LDAP, "url": "ldap://127.0.0.1:3389"}  # tests: nothing crosses a network
    assert config.build({"ldap": [loopback]}, env={}).ldap[0].port == 3389


SAML = {"id": "shib", "display_name": "Campus ID",
        "idp_metadata_url": "https://idp.campus.example/idp/shibboleth"}  # fmt: skip


def test_saml_providers_have_defaults_a_librarian_can_leave_alone() -> None:
    [provider] = config.build({"saml": [SAML]}, env={}).saml
    assert provider.patron_id_attribute == "eduPersonPrincipalName"
    assert provider.clock_skew == 60 and provider.metadata_refresh == 3600
    assert provider.rules == [] and provider.groups_attribute == ""
    assert not config.build({"signin": {"card": False}, "saml": [SAML]}, env={}).signin.card


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({**LDAP, "url": "ldap://dc1.example.edu"}, "ldap.directory.start_tls", "in clear"),
        ({**LDAP, "url": "https://dc1.example.edu"}, "ldap.directory.url", "ldaps://"),
        ({**LDAP, "url": "ldaps://dc1.example.edu/dc=x"}, "ldap.directory.url", "nothing after"),
        ({**LDAP, "user_filter": "(uid=alice)"}, "ldap.directory.user_filter", "{username}"),
        ({**LDAP, "user_filter": "(uid={username}"}, "ldap.directory.user_filter", "parentheses"),
        ({**LDAP, "user_filter": "uid={username})("}, "ldap.directory.user_filter", "parentheses"),
        (
            {**LDAP, "patron_id_attribute": "u id"},
            "ldap.directory.patron_id_attribute",
            "attribute",
        ),
        ({**LDAP, "attributes": ["mail", ""]}, "ldap.directory.attributes", "attribute names"),
        ({**LDAP, "rules": ["If uid is x; Group y"]}, "ldap.directory.rules[0]", "expects equals"),
        (
            {k: v for k, v in LDAP.items() if k != "bind_password"},
            "ldap.directory.bind_password",
            "GATEWAY_LDAP__DIRECTORY__BIND_PASSWORD",
        ),
        ({k: v for k, v in LDAP.items() if k != "base_dn"}, "ldap.directory.base_dn", "required"),
    ],
)
def test_bad_ldap_entry_names_the_key(entry: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.build({"ldap": [entry]}, env={})
    assert f"{key}:" in str(caught.value) and words in str(caught.value)


def test_ldap_password_from_the_environment_and_ids_unique_over_every_kind() -> None:
    entry = {k: v for k, v in LDAP.items() if k != "bind_password"}
    env = {"GATEWAY_LDAP__DIRECTORY__BIND_PASSWORD": "from-env"}
    assert config.build({"ldap": [entry]}, env=env).ldap[0].bind_password == "from-env"
    with pytest.raises(config.ConfigError, match=r"ldap\.campus\.id: expects a unique id"):
        config.build({"oidc": [OIDC], "ldap": [{**LDAP, "id": "campus"}]}, env={})
    assert not config.build({"signin": {"card": False}, "ldap": [LDAP]}, env={}).signin.card


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({**SAML, "idp_metadata_file": __file__}, "saml.shib.idp_metadata_file", "one of them"),
        (
            {k: v for k, v in SAML.items() if k != "idp_metadata_url"},
            "saml.shib.idp_metadata_file",
            "one of them",
        ),
        ({**SAML, "key_file": __file__}, "saml.shib.key_file", "both or neither"),
        ({**SAML, "idp_metadata_url": "file:///etc/passwd"}, "saml.shib.idp_metadata_url", "http"),
        ({**SAML, "rules": ["Deny if x"]}, "saml.shib.rules[0]", "Deny"),
        ({**SAML, "patron_id_attribute": "a b"}, "saml.shib.patron_id_attribute", "attribute"),
    ],
)
def test_bad_saml_entry_names_the_key(entry: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.build({"saml": [entry]}, env={})
    assert f"{key}:" in str(caught.value) and words in str(caught.value)


def test_a_saml_id_may_not_repeat_an_oidc_one() -> None:
    """They share /signin/<id>: one id, one method."""
    with pytest.raises(config.ConfigError, match=r"saml\.campus\.id: expects a unique id"):
        config.build({"oidc": [OIDC], "saml": [{**SAML, "id": "campus"}]}, env={})


def test_saml_needs_xmlsec1_on_the_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without Debian's xmlsec1
    with pytest.raises(config.ConfigError, match=r"saml: needs xmlsec1.*apt-get install xmlsec1"):
        config.build({"saml": [SAML]}, env={})
