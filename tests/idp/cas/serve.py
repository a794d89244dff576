"""django-cas-server on a loopback port, for the CAS sign-in tests (tests/cas_support.py).

Run with its own virtualenv, which ``make cas`` makes in the project's ``.venv/cas``:
``.venv/cas/bin/python tests/idp/cas/serve.py config.json``. The JSON gives the port, a
SQLite file, the accounts (password and attributes) and the service URL pattern the server
accepts. The server's own code does everything CAS; this file only configures Django,
creates the tables, registers the service (as its admin would) and serves over wsgiref.
"""

from __future__ import annotations

import json
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

CONFIG = json.loads(open(sys.argv[1]).read())  # noqa: SIM115 - read once at start


class AccountsAuth:
    """django-cas-server's pluggable user check (CAS_AUTH_CLASS): the test's accounts."""

    def __init__(self, username: str) -> None:
        self.username = username

    def test_password(self, password: str) -> bool:
        account = CONFIG["accounts"].get(self.username)
        return account is not None and account["password"] == password

    def attributs(self) -> dict[str, object]:
        return dict(CONFIG["accounts"].get(self.username, {}).get("attributes", {}))


def configure() -> None:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        SECRET_KEY="cas-test-server-not-secret",
        ROOT_URLCONF="urls",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django.contrib.messages",
            "cas_server",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.locale.LocaleMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": CONFIG["database"]}},
        SESSION_COOKIE_NAME="cas_session",
        USE_TZ=True,
        STATIC_URL="/static/",
        CAS_AUTH_CLASS="serve.AccountsAuth",
        CAS_NEW_VERSION_HTML_WARNING=False,  # it would ask PyPI
        CAS_NEW_VERSION_EMAIL_WARNING=False,
        CAS_TICKET_VALIDITY=60,
    )


def register_service() -> None:
    from cas_server.models import ReplaceAttributName, ServicePattern

    pattern = ServicePattern.objects.create(pos=100, name="carrel", pattern=CONFIG["service"])
    ReplaceAttributName.objects.create(name="*", service_pattern=pattern)  # release them all


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """No access log on the test's stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for ROOT_URLCONF "urls"
    # CAS_AUTH_CLASS names "serve.AccountsAuth": this very module, not a second import of it.
    sys.modules.setdefault("serve", sys.modules["__main__"])
    configure()
    import django
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    register_service()
    application = get_wsgi_application()
    with make_server("127.0.0.1", CONFIG["port"], application, Server, QuietHandler) as server:
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
