"""Failure drills on the real services: Redis unreachable, PostgreSQL dropping connections in
the middle of a burst of purchases. (A worker killed mid-job is drilled in the jobs tests.)"""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from ledger import verification
from ledger.models import Transaction
from merchants import services as merchant_services
from points.models import Purchase
from tests.factories import UserFactory
from tests.points.conftest import onboard

pytestmark = pytest.mark.xdist_group("drills")

CLOSED_PORT = "redis://127.0.0.1:1/0"


def _till(merchant) -> APIClient:
    _key, raw = merchant_services.api_key_create(merchant=merchant, name=f"till-{uuid.uuid4()}",
                                                 scopes=["purchases"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def _buy(client, shopper, key):
    return client.post("/api/v1/purchases", {"member": shopper.member_code, "amount": "100.00",
                                              "order_ref": key},
                       format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_redis_down_purchases_still_recorded(settings, client):
    # given a running alliance, then Redis (cache, rate limits, broker) becomes unreachable
    merchant = onboard("redisdown")
    till, shopper = _till(merchant), UserFactory()
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                   "LOCATION": CLOSED_PORT,
                                   "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1,
                                               "SOCKET_TIMEOUT": 1}}}
    settings.CELERY_BROKER_URL = CLOSED_PORT

    # when tills keep recording purchases
    responses = [_buy(till, shopper, f"rd-{n}") for n in range(3)]

    # then every purchase is recorded, and /healthz says what is down
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert Purchase.objects.filter(merchant=merchant).count() == 3
    health = client.get("/healthz")
    assert health.status_code == 503
    assert set(health.json()["down"]) >= {"broker", "cache"}


@pytest.mark.django_db
def test_jobs_catch_up_when_redis_returns(settings, log_key_settings):
    # purchases made while no worker could be reached are simply not anchored yet; the next
    # anchoring run after the broker returns takes every one of them
    from ledger.log_services import log_anchor

    merchant = onboard("catchup")
    till, shopper = _till(merchant), UserFactory()
    settings.CELERY_BROKER_URL = CLOSED_PORT
    for n in range(4):
        assert _buy(till, shopper, f"cu-{n}").status_code == 201
    log_anchor(full_scan=True)
    from ledger.models import LogLeaf

    assert LogLeaf.objects.count() == Transaction.objects.count()


@pytest.fixture
def log_key_settings(settings):
    from ledger import note

    settings.LOG_SIGNER_KEY, _ = note.generate_signer("drill.example/points-log")
    settings.LOG_ORIGIN = "drill.example/points-log"


@pytest.mark.django_db(transaction=True)
def test_database_connections_dropped_during_a_burst():
    # given eight tills and a stream of purchases
    merchant = onboard("pgdrill", shared=10_000_000, deposit=9_000_000)
    shoppers = [UserFactory() for _ in range(8)]
    _key, raw = merchant_services.api_key_create(merchant=merchant, name="t",
                                                 scopes=["purchases"])
    database = connection.settings_dict["NAME"]
    stop = threading.Event()
    outcomes: dict[str, list[int]] = {}

    def killer():
        # As a restart or a failover would, connections are cut in the middle of requests
        # (mid-statement or mid-transaction), five times; connections cut between requests
        # are healed unseen by CONN_HEALTH_CHECKS, so those would prove nothing.
        close_old_connections()
        cuts = 0
        try:
            while cuts < 5 and not stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid() "
                        "AND state IN ('active', 'idle in transaction')", [database])
                    killed = cursor.fetchone()[0]
                cuts += 1 if killed else 0
                stop.wait(0.2 if killed else 0.005)
        finally:
            connection.close()

    def till(n: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        try:
            for i in range(10):
                key = f"pg-{n}-{i}"
                statuses = outcomes.setdefault(key, [])
                for _attempt in range(30):
                    close_old_connections()  # what a new request does in a real server
                    response = _buy(client, shoppers[n], key)
                    statuses.append(response.status_code)
                    if response.status_code in (200, 201):
                        break
                    # the only acceptable refusal: a clear, retryable 503
                    assert response.status_code == 503, response.content
                    body = response.json()["error"]
                    assert body["code"] == "database_unavailable"
                    assert body["details"]["retryable"] is True
                    time.sleep(0.05)
        finally:
            connection.close()

    killing = threading.Thread(target=killer)
    killing.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(till, range(8)))
    finally:
        stop.set()
        killing.join()
    close_old_connections()

    # then every client got its purchase in the end, none twice, none partial
    assert all(s[-1] in (200, 201) for s in outcomes.values()), outcomes
    assert sum(503 in s for s in outcomes.values()) > 0, "the drill never cut a request"
    assert Purchase.objects.filter(merchant=merchant).count() == len(outcomes) == 80
    purchase_txns = Transaction.objects.filter(kind="purchase", client=f"merchant:{merchant.pk}")
    assert purchase_txns.count() == 80
    for check in (verification.check_transactions_balance, verification.check_account_balances,
                  verification.check_lots):
        assert not list(check())


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_under_any_database_error_is_a_retryable_503():
    # psycopg reports a connection cut during COMMIT as an InternalError, not an
    # OperationalError: what matters is that the connection is gone
    from django.db import InternalError

    from alliance.api_errors import exception_handler

    connection.ensure_connection()
    connection.connection.close()
    response = exception_handler(InternalError("received 2 results from command 'COMMIT'"), {})
    assert response.status_code == 503
    assert response.data["error"]["code"] == "database_unavailable"
    assert response["Retry-After"]
    connection.close()

    # the same error on a healthy connection is not passed off as an outage
    connection.ensure_connection()
    assert exception_handler(InternalError("something else"), {}) is None
