"""Shared fixtures. The suite runs on the real PostgreSQL and Redis (config.settings.test)."""

import os
import uuid

import pytest

# Playwright's sync API runs an event loop in the test thread; Django must allow ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _clear_sms_outbox():
    from alliance import sms

    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture(autouse=True)
def _fresh_abuse_counters(settings):
    """Velocity counters live in Redis, which outlives each test: every test counts in
    windows of its own (points.abuse), so sign-ups and task completions of earlier tests and
    runs never trip a limit."""
    settings.ABUSE_CACHE_PREFIX = f"abuse-test-{uuid.uuid4().hex}"


@pytest.fixture
def sms_outbox():
    from alliance import sms

    return sms.outbox
