"""The purchase's two paths (``points.purchase_engine`` on PostgreSQL, the ORM path the SQLite
demo takes) record the same purchase; its follow-ups reach the worker as one message, and run
in the request when the broker cannot be reached; the API's hand validation accepts only what
its serializer accepts, and gives what it gives."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from config.celery import app
from ledger.models import Posting, Transaction
from merchants.webhook_models import WebhookDelivery
from merchants.webhooks import webhook_endpoint_create
from points.apis import PurchaseInSerializer, purchase_input_plain
from points.models import Purchase, Task, TaskCompletion
from points.services import earning_rule_publish, member_tier_set, purchase_record
from points.tasks_services import task_save
from tests.factories import StoreFactory, UserFactory
from tests.points.conftest import onboard, reconnect_celery

pytestmark = pytest.mark.django_db


def _rule(merchant, **extra):
    for code, threshold in (("silver", Decimal("50")), ("gold", Decimal("150"))):
        member_tier_set(merchant=merchant, code=code, name_zh=code, name_en=code,
                        threshold=threshold)
    return earning_rule_publish(merchant=merchant, base_rate=Decimal("1.5"), multipliers={
        "time_windows": [{"weekdays": list(range(7)), "start": "00:00", "end": "23:59",
                          "multiplier": "2"}],
        "categories": {"coffee": "1.25"}, "tiers": {"gold": "1.5", "silver": "1.1"}},
        **extra)


def _story(settings, engine: str) -> list:
    """Six purchases of one shopper through ``engine``: tiers reached on the way, a category
    line, a store, an offline time, a daily cap and a budget that run out, a replay."""
    settings.PURCHASE_ENGINE = engine
    merchant = onboard(f"eng{engine}", shared=10_000_000, deposit=9_000_000)
    rule = _rule(merchant, daily_cap=900, budget=1_200)
    store, shopper = StoreFactory(merchant=merchant), UserFactory()
    at = timezone.now() - timedelta(hours=5)
    requests = [
        {"amount": Decimal("40.00")},
        {"amount": Decimal("80.50"), "store": store},
        {"amount": Decimal("33.33"), "lines": [{"category": "coffee", "amount": "33.33"}]},
        {"amount": Decimal("120.00"), "occurred_at": at},
        {"amount": Decimal("500.00")},
        {"amount": Decimal("0.05")},
    ]
    outcomes = []
    for n, extra in enumerate(requests):
        purchase, replayed = purchase_record(
            merchant=merchant, shopper=shopper, order_ref=f"r{n}",
            idempotency_key=f"k{n}", fingerprint=f"f{n}", **extra)
        outcomes.append(("new", replayed))
    again, replayed = purchase_record(merchant=merchant, shopper=shopper,
                                      amount=Decimal("40.00"), order_ref="r0",
                                      idempotency_key="k0", fingerprint="f0")
    outcomes.append(("replay", replayed, again.transaction_id))
    for purchase in Purchase.objects.filter(merchant=merchant).order_by("pk"):
        txn = Transaction.objects.get(pk=purchase.transaction_id)
        # each path's own merchant, store and rule (its hash covers the merchant)
        metadata = {k: v for k, v in txn.metadata.items()
                    if k not in ("merchant", "store", "rule")}
        assert txn.metadata["rule"] == rule.content_hash
        assert txn.metadata["merchant"] == merchant.slug
        outcomes.append((
            purchase.order_ref, purchase.amount, purchase.points, purchase.rebate,
            purchase.sv_shopper, purchase.sv_merchant, purchase.shared_burned,
            purchase.lines, purchase.store_id is not None, purchase.rule_id is not None,
            txn.kind, metadata, txn.fingerprint,
            [(p.leg, p.amount, p.account.kind, p.expires_at)
             for p in Posting.objects.filter(transaction=txn).select_related("account")
             .order_by("leg")],
        ))
    return outcomes


def test_both_paths_record_the_same_purchases(settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sql = _story(settings, "sql")
    with django_capture_on_commit_callbacks(execute=True):
        orm = _story(settings, "orm")
    # the replay names each path's own transaction; everything else is the same
    assert sql[6][:2] == orm[6][:2] == ("replay", True)
    assert sql[:6] + sql[7:] == orm[:6] + orm[7:]
    # and the story did what it says: a tier multiplier, the cap and the budget ran out
    points = [row[2] for row in sql[7:]]
    assert points[0] == 120 and 0 in points and sum(points) <= 900


@pytest.mark.parametrize("engine", ["sql", "orm"])
def test_refusals_are_the_same_on_both_paths(settings, engine, api):
    settings.PURCHASE_ENGINE = engine
    shopper = UserFactory()

    def buy(key="x-1", **body):
        body = {"member": shopper.member_code, "amount": "10.00", "order_ref": "o", **body}
        response = api.post("/api/v1/purchases", body, format="json",
                            HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json().get("error", {}).get("code")

    assert buy(member="ZZZZZZZZZZ") == (404, "member_not_found")
    assert buy(store=10**30) == (404, "store_not_found")
    assert buy(store=999_999) == (404, "store_not_found")
    assert buy(occurred_at=(timezone.now() - timedelta(days=4)).isoformat()) == (
        400, "invalid_occurred_at")
    assert buy()[0] == 201
    assert buy() == (200, None)
    assert buy(amount="11.00") == (409, "idempotency_conflict")
    assert buy(key="x-2", amount="100000.00") == (409, "deposit_insufficient")


def _first_purchase_task(merchant):
    return task_save(merchant=merchant, fields={
        "kind": Task.Kind.FIRST_PURCHASE, "name_zh": "首购", "name_en": "First purchase",
        "reward": 200, "daily_limit": None})


@pytest.mark.xdist_group("broker")
def test_a_purchase_queues_its_follow_ups_as_one_message(merchant, api, real_broker,
                                                         django_capture_on_commit_callbacks):
    # given a first-purchase task and an endpoint listening for purchase.recorded
    _first_purchase_task(merchant)
    webhook_endpoint_create(merchant=merchant, url="https://till.example/hook",
                            events=["purchase.recorded"])
    shopper = UserFactory()

    # when a till records the shopper's first purchase
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/purchases", {"member": shopper.member_code,
                                                  "amount": "10.00", "order_ref": "o"},
                            format="json", HTTP_IDEMPOTENCY_KEY="q-1")

    # then the worker gets one message, and the request paid and announced nothing itself
    assert response.status_code == 201
    assert real_broker() == [response.json()["id"]]
    assert TaskCompletion.objects.count() == 0
    assert not WebhookDelivery.objects.exists()


def _two_purchases(api, capture) -> list[int]:
    """A new shopper's first two purchases at the till; their ids."""
    shopper = UserFactory()
    ids = []
    for key in ("p-1", "p-2"):
        with capture(execute=True):
            response = api.post("/api/v1/purchases", {"member": shopper.member_code,
                                                      "amount": "10.00", "order_ref": key},
                                format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


@pytest.mark.xdist_group("broker")
@pytest.mark.parametrize("alliance_task", [False, True], ids=["merchant", "alliance"])
def test_a_returning_shopper_with_nothing_to_follow_queues_nothing(
        merchant, api, real_broker, django_capture_on_commit_callbacks, alliance_task):
    # given a first-purchase task, the merchant's own or the alliance's (any till counts)
    _first_purchase_task(None if alliance_task else merchant)
    ids = _two_purchases(api, django_capture_on_commit_callbacks)
    # the first purchase had a first-purchase task to pay; the second has nothing to follow
    assert real_broker() == ids[:1]


def test_broker_unreachable_the_follow_ups_run_in_the_request(
        merchant, api, django_capture_on_commit_callbacks):
    # given a first-purchase task, and a broker nobody answers on
    _first_purchase_task(merchant)
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_write_url")}
    app.conf.update(task_always_eager=False, broker_write_url="redis://127.0.0.1:1/0")
    reconnect_celery()
    try:
        shopper = UserFactory()
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/v1/purchases", {"member": shopper.member_code,
                                                      "amount": "10.00", "order_ref": "o"},
                                format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    finally:
        app.conf.update(saved)
        reconnect_celery()
    # then the purchase is recorded and its first-purchase reward paid all the same
    assert response.status_code == 201
    assert TaskCompletion.objects.filter(user=shopper).count() == 1


PLAIN_CASES = [
    {"member": "ABCDEFGHJK", "amount": "1.00", "order_ref": "o-1"},
    {"member": "ABCDEFGHJK", "amount": "1", "order_ref": "订单 1"},
    {"member": "ABCDEFGHJK", "amount": "0.5", "order_ref": "o", "store": 3},
    {"member": "ABCDEFGHJK", "amount": "1000000000", "order_ref": "o"},
    {"member": "ABCDEFGHJK", "amount": "1000000000.01", "order_ref": "o"},
    {"member": "ABCDEFGHJK", "amount": "0.00", "order_ref": "o"},
    {"member": "ABCDEFGHJK", "amount": "0.001", "order_ref": "o"},
    {"member": "ABCDEFGHJK", "amount": "01.00", "order_ref": "o"},
    {"member": "ABCDEFGHJK", "amount": "1e3", "order_ref": "o"},
    {"member": "ABCDEFGHJK", "amount": 5, "order_ref": "o"},
    {"member": " ABCDEFGHJK ", "amount": "1.00", "order_ref": "o"},
    {"member": "", "amount": "1.00", "order_ref": "o"},
    {"member": "ABCDEFGHJK", "amount": "1.00", "order_ref": "x" * 101},
    {"member": "ABCDEFGHJK", "amount": "1.00", "order_ref": "a\x00b"},
    {"member": "ABCDEFGHJK", "amount": "1.00", "order_ref": "o", "store": True},
    {"member": "ABCDEFGHJK", "amount": "1.00", "order_ref": "o", "store": 0},
    {"member": "ABCDEFGHJK", "amount": "1.00", "order_ref": "o", "store": "4"},
    {"member": "ABCDEFGHJK", "amount": "1.00", "order_ref": "o", "extra": 1},
    {"member": ["ABCDEFGHJK"], "amount": "1.00", "order_ref": "o"},
    {"amount": "1.00", "order_ref": "o"},
]


@pytest.mark.parametrize("data", PLAIN_CASES)
def test_hand_validation_accepts_only_what_the_serializer_accepts(data):
    plain = purchase_input_plain(data)
    serializer = PurchaseInSerializer(data=data)
    try:
        serializer.is_valid(raise_exception=True)
        expected = dict(serializer.validated_data)
    except ValidationError:
        expected = None
    if plain is not None:
        assert plain == expected
        assert [type(v) for v in plain.values()] == [type(v) for v in expected.values()]
