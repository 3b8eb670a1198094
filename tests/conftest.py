"""Shared fixtures. The suite runs on the real PostgreSQL and Redis (config.settings.test)."""

import os
import uuid

import pytest

# Playwright's sync API runs an event loop in the test thread; Django must allow ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _english_unless_asked():
    """Every test starts in English. The alliance's default language is Chinese, and the
    language a request activates stays on the thread after it: without this, whichever test
    ran before would decide the language of messages a test reads outside a request. Tests of
    the Chinese pages ask for zh-hans themselves (Accept-Language, the language cookie or
    translation.override)."""
    from django.utils import translation

    with translation.override("en"):
        yield


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
