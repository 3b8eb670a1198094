"""``manage.py check --deploy`` with the production settings and real-looking secrets is clean."""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def _bare_environment() -> dict[str, str]:
    """What a production host has: none of the test run's variables (DEBUG,
    DJANGO_ALLOW_ASYNC_UNSAFE, ...) may leak in and change the verdict."""
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}


def test_production_settings_pass_the_deployment_checklist():
    # given production settings with a strong secret, a real database and a host name
    db = connection.settings_dict
    env = _bare_environment()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        ALLOWED_HOSTS="points.alliance.example,www.points.alliance.example",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
    )

    # when Django's deployment checklist runs on them
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )

    # then it reports no issue at all
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output
    assert "WARNINGS" not in output


def test_production_settings_refuse_to_start_without_a_secret_key():
    # given production settings with no SECRET_KEY in the environment
    env = _bare_environment()
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production",
               DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")

    # when a management command starts
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )

    # then it stops instead of running with the demo key
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
