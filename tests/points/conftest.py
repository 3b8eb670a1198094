"""Fixtures for earning tests: an onboarded merchant with a funded deposit and an API key,
the alliance's own assets, a movable clock for tasks."""

import base64
import importlib
import json
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from rest_framework.test import APIClient

from config.celery import app
from ledger.models import Asset
from merchants import services as merchant_services
from points import tasks_services
from tests.factories import DistrictFactory, UserFactory


def onboard(slug: str, *, units_per_cny=Decimal("100"), rebate=Decimal("0.10"),
            shared=200_000, deposit=160_000):
    """A member merchant; ``shared`` SHARED minor units allocated, ``deposit`` of it in the
    deposit (the default covers 11 rebates of CNY 100 above the 500 minimum)."""
    merchant = merchant_services.merchant_onboard(
        owner=UserFactory(), name_zh=slug, name_en=slug, legal_name=f"{slug} Ltd",
        licence_number=None, category="retail", district=DistrictFactory(slug="d-" + slug),
        rebate_rate=rebate, stores=[], asset_code=slug.upper()[:10], asset_name_zh="积分",
        asset_name_en="points", units_per_cny=units_per_cny, expiry_months=12, slug=slug,
    )
    if shared:
        merchant_services.shared_allocate(merchant=merchant, amount=shared,
                                          idempotency_key=f"alloc-{slug}")
    if deposit:
        merchant_services.deposit_top_up(merchant=merchant, amount=deposit,
                                         idempotency_key=f"topup-{slug}")
    return merchant


@pytest.fixture
def merchant():
    return onboard("burger")


@pytest.fixture
def api_key(merchant):
    _key, raw = merchant_services.api_key_create(merchant=merchant, name="till",
                                                 scopes=["purchases", "holds", "vouchers"])
    return raw


@pytest.fixture
def api(api_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
    return client


@pytest.fixture
def shopper():
    return UserFactory()


@pytest.fixture(autouse=True)
def alliance_assets(db):
    """SHARED, SV and ALLY, as ledger's data migration creates them: a transactional test
    that ran before (ours or another app's) flushes them with everything else."""
    migration = importlib.import_module("ledger.migrations.0003_alliance_assets")
    for spec in migration.ASSETS:
        Asset.objects.get_or_create(code=spec["code"], defaults=spec)


@pytest.fixture
def frozen_clock(monkeypatch):
    """``frozen_clock.advance(seconds)`` moves the tasks' server clock."""

    class Clock:
        def __init__(self):
            self.offset = timedelta()
            self.real = tasks_services.clock

        def __call__(self):
            return self.real() + self.offset

        def advance(self, seconds: float) -> None:
            self.offset += timedelta(seconds=seconds)

    clock = Clock()
    monkeypatch.setattr(tasks_services, "clock", clock)
    return clock


def reconnect_celery() -> None:
    # Celery keeps its broker connections in pools made on first use: made again from conf.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def real_broker():
    """Tasks go to the test broker (Redis) as in production instead of running in-process.
    Gives a function that answers the purchases whose follow-ups were queued meanwhile, in
    order (and takes those messages off the queue). Tests using it share the xdist group
    "broker", so two never read the queue at once."""
    client = redis.Redis.from_url(app.conf.broker_url)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    reconnect_celery()
    before = set(client.lrange("celery", 0, -1))

    def queued() -> list[int]:
        ours = []
        for raw in reversed(client.lrange("celery", 0, -1)):  # oldest first
            message = json.loads(raw)
            if (raw not in before and message["headers"]["task"]
                    == "points.purchase_tasks.purchase_followups_task"):
                ours.append(json.loads(base64.b64decode(message["body"]))[0][0])
                client.lrem("celery", 1, raw)
        return ours

    yield queued
    app.conf.task_always_eager = eager
    reconnect_celery()
