"""Liveness of the parts the portal depends on, for ``/healthz`` and operators."""

import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import connection


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means the database is unusable
        return f"{type(exc).__name__}: {exc}".strip()[:200]
    return None


def check_broker() -> str | None:
    url = settings.CELERY_BROKER_URL
    if not url or url.startswith("memory://"):
        return None  # in-process tasks: there is no broker to lose
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:200]
    return None


def check_cache() -> str | None:
    # A round trip of a fresh value: the cache swallows its own connection errors (so that
    # requests go on without it), which a plain set/get would hide.
    token = secrets.token_hex(8)
    try:
        cache.set("healthz", token, 5)
        if cache.get("healthz") != token:
            return "the cache did not keep a value (unreachable?)"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:200]
    return None


CHECKS = {"database": check_database, "broker": check_broker, "cache": check_cache}


def health_report() -> dict[str, str]:
    """Map each part to "ok" or the reason it is down."""
    return {name: (check() or "ok") for name, check in CHECKS.items()}
