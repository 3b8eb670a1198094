"""Security defaults: each test fails when its setting or guard is removed."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def production_settings(*names: str) -> dict:
    """Values of settings under config.settings.production, read in a fresh process."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "SECRET_KEY": secrets.token_urlsafe(50),
           "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
           "ALLOWED_HOSTS": "points.example.com"}
    code = ("import django, json; django.setup(); from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_production_cookies_hsts_and_proxy():
    values = production_settings(
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER",
        "DEBUG", "MFA_REQUIRED_FOR_STAFF", "SESSION_COOKIE_HTTPONLY", "X_FRAME_OPTIONS",
    )
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] and values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["DEBUG"] is False
    assert values["MFA_REQUIRED_FOR_STAFF"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] and values["X_FRAME_OPTIONS"] == "DENY"


def _staff_client(**flags) -> tuple[Client, object]:
    user = UserFactory(**flags)
    client = Client()
    client.force_login(user)
    return client, user


@pytest.mark.parametrize("flag", ["is_alliance_staff", "is_supervisor", "is_council_member"])
def test_privileged_roles_need_totp(settings, flag):
    settings.MFA_REQUIRED_FOR_STAFF = True
    client, user = _staff_client(**{flag: True})

    # without an authenticator: the console sends them to set one up, the API refuses
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/totp/activate/")
    api = client.get("/api/v1/console/status")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "mfa_required"

    # with TOTP activated the console opens
    TOTP.activate(user, generate_totp_secret())
    assert client.get("/console/").status_code == 200


def test_shoppers_are_not_forced(settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    client, _user = _staff_client()
    assert client.get("/").status_code == 200


def test_superuser_admin_needs_totp(settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    client, _user = _staff_client(is_superuser=True, is_staff=True)
    assert client.get("/admin/").status_code == 302


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>",
                           re.I)
INLINE_HANDLER = re.compile(r"\son(click|load|submit|change|input)=", re.I)


@pytest.mark.parametrize("path", ["/", "/explorer/", "/accounts/login/", "/accounts/signup/",
                                  "/api/docs/"])
def test_strict_csp_and_no_inline_script(client, path):
    response = client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if " " in d.strip())
    assert directives["script-src"] == "'self'"
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy
    html = response.content.decode()
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html).group(0)
    assert not INLINE_HANDLER.search(html)
    assert " style=\"" not in html


def test_csrf_is_enforced_on_forms():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"login": "a@example.com", "password": "x"})
    assert response.status_code == 403


def test_login_lockout_after_repeated_failures(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory(email="locked@example.com")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(3):
        client.post("/accounts/login/", {"login": user.email, "password": "wrong-password"})
    # the right password no longer works from there
    response = client.post("/accounts/login/", {"login": user.email,
                                                "password": "pass-word-123"})
    assert response.status_code in (403, 429)
    assert "_auth_user_id" not in client.session
