"""Shared fixtures. The suite runs on the real PostgreSQL and Redis (config.settings.test)."""

import os

import pytest

# Playwright's sync API runs an event loop in the test thread; Django must allow ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _clear_sms_outbox():
    from alliance import sms

    sms.outbox.clear()
    yield
    sms.outbox.clear()


@pytest.fixture
def sms_outbox():
    from alliance import sms

    return sms.outbox
