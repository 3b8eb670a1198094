"""The events besides ``purchase.recorded`` reach the merchant's endpoint once, signed, when
the thing happens: a voucher accepted at the till, shoppers reminded of expiring points, the
deposit falling below its warning level."""

import json
import uuid
from datetime import date, timedelta

import pytest
from rest_framework.test import APIClient

from ledger import services as ledger
from ledger.models import Account
from merchants import webhooks
from merchants.models import Store
from merchants.services import api_key_create, deposit_top_up
from points import catalog
from points.expiry import expiry_reminders_send
from points.jobs import day_start
from tests.factories import UserFactory
from tests.merchants.test_webhooks import Receiver
from tests.points.conftest import onboard
from tests.points.spending_helpers import alliance_assets_restore, brand, catalog_item, fund

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alliance_assets():
    # a transactional test run earlier flushes the assets a migration made
    alliance_assets_restore()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _received(receiver, secret: str) -> list[tuple[str, dict]]:
    """(event, body) of every request, each checked against its signature."""
    events = []
    for headers, body in receiver.requests:
        assert webhooks.signature_verify(secret=secret, body=body,
                                         header=headers["X-Alliance-Signature"])
        events.append((headers["X-Alliance-Event"], json.loads(body)))
    return events


def _api(merchant, *scopes) -> APIClient:
    _key, raw = api_key_create(merchant=merchant, name="till", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


# --- voucher.redeemed --------------------------------------------------------------------------


def test_a_voucher_accepted_at_the_till_is_announced_once(receiver,
                                                         django_capture_on_commit_callbacks):
    # given a shopper's voucher for a coffee, a store, and an endpoint for voucher events
    merchant = onboard("cafe")
    store = Store.objects.create(merchant=merchant, name="Cafe Nanjing Rd", address="南京路1号",
                                 latitude=31.2, longitude=121.4)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 1_000)
    item = catalog_item(merchant, price=500, stock=3)
    voucher = catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key="v")
    _endpoint, secret = webhooks.webhook_endpoint_create(
        merchant=merchant, url=receiver.url, events=["voucher.redeemed"])
    till = _api(merchant, "vouchers")

    # when the till accepts it in that store, then tries again
    with django_capture_on_commit_callbacks(execute=True):
        first = till.post(f"/api/v1/vouchers/{voucher.code}/redeem", {"store": store.pk},
                          format="json")
        second = till.post(f"/api/v1/vouchers/{voucher.code}/redeem", {"store": store.pk},
                           format="json")

    # then one signed event names the voucher, the item, the store and the time
    assert first.status_code == 200 and second.status_code == 409
    [(event, body)] = _received(receiver, secret)
    voucher.refresh_from_db()
    assert event == "voucher.redeemed"
    assert body == {"event": "voucher.redeemed", "merchant": "cafe", "data": {
        "voucher": voucher.pk, "code": voucher.display_code, "item": item.pk,
        "item_name_zh": "咖啡", "item_name_en": "Coffee", "store": store.pk,
        "store_name": "Cafe Nanjing Rd", "member": shopper.member_code, "via": "api",
        "used_at": voucher.used_at.isoformat(),
    }}
    assert voucher.used_store == store


def test_another_merchants_store_is_refused_and_nothing_is_announced(
        receiver, django_capture_on_commit_callbacks):
    merchant = onboard("cafe")
    other_store = Store.objects.create(merchant=onboard("tea"), name="Tea", address="x",
                                 latitude=31.2, longitude=121.4)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 1_000)
    voucher = catalog.catalog_redeem(shopper=shopper, item_id=catalog_item(merchant).pk,
                                     idempotency_key="v")
    webhooks.webhook_endpoint_create(merchant=merchant, url=receiver.url, events=[])

    with django_capture_on_commit_callbacks(execute=True):
        response = _api(merchant, "vouchers").post(
            f"/api/v1/vouchers/{voucher.code}/redeem", {"store": other_store.pk}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "store_not_found"
    voucher.refresh_from_db()
    assert voucher.state == "issued" and receiver.requests == []


# --- points.expiring ---------------------------------------------------------------------------


def test_the_expiry_reminders_announce_each_merchants_totals_once(
        receiver, settings, django_capture_on_commit_callbacks):
    # given two shoppers whose cafe points expire in 7 days, one whose expire later, and a
    # second merchant with an endpoint but nothing expiring
    settings.POINTS_EXPIRY_REMINDER_DAYS = 7
    today = date(2025, 3, 24)
    due = day_start(today + timedelta(days=7))
    merchant, quiet = onboard("cafe"), onboard("tea")
    points = brand(merchant)

    def credit(amount, expires_at, key):
        wallet = ledger.account_get_or_create(asset=points, kind=Account.Kind.WALLET,
                                              user=UserFactory())
        ledger.transaction_post(kind="issue", client="test", idempotency_key=key,
                                legs=[ledger.Leg(ledger.issuance_account(points), -amount),
                                      ledger.Leg(wallet, amount, expires_at)])

    credit(1234, due, "a")
    credit(6, due, "b")
    credit(77, due + timedelta(days=1), "c")
    _endpoint, secret = webhooks.webhook_endpoint_create(
        merchant=merchant, url=receiver.url, events=["points.expiring"])
    webhooks.webhook_endpoint_create(merchant=quiet, url=receiver.url, events=[])

    # when the reminders of today run, twice
    with django_capture_on_commit_callbacks(execute=True):
        run = expiry_reminders_send(day=today)
        expiry_reminders_send(day=today)

    # then the cafe hears once: two holders, 1240 points, usable until 2025-03-30; no names
    assert _received(receiver, secret) == [("points.expiring", {
        "event": "points.expiring", "merchant": "cafe", "data": {
            "last_day": "2025-03-30",
            "assets": [{"asset": points.code, "holders": 2, "amount": "1240"}],
        }})]
    assert run.counts["webhooks"] == 1


# --- deposit.low -------------------------------------------------------------------------------


def test_the_deposit_falling_below_the_warning_level_is_announced_once_per_fall(
        receiver, django_capture_on_commit_callbacks):
    # given a merchant 5 SHARED above the 600 warning level (a CNY 100 purchase burns 10)
    merchant = onboard("cafe", deposit=60_500)
    _endpoint, secret = webhooks.webhook_endpoint_create(
        merchant=merchant, url=receiver.url, events=["deposit.low"])
    till = _api(merchant, "purchases")
    shopper = UserFactory()

    def buy():
        # each request commits, and its callbacks run, before the next
        with django_capture_on_commit_callbacks(execute=True):
            response = till.post("/api/v1/purchases", {"member": shopper.member_code,
                                                        "amount": "100.00", "order_ref": "A"},
                                 format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        assert response.status_code == 201, response.json()

    # when two purchases take it below the warning level
    buy()
    buy()

    # then one signed event says where it stands
    assert _received(receiver, secret) == [("deposit.low", {
        "event": "deposit.low", "merchant": "cafe", "data": {
            "level": "warning", "balance": "595.00", "warning": "600.00",
            "minimum": "500.00",
            "occurred_at": json.loads(receiver.requests[0][1])["data"]["occurred_at"],
        }})]

    # when a top-up lifts it above the level and the next purchase takes it below again
    with django_capture_on_commit_callbacks(execute=True):
        deposit_top_up(merchant=merchant, amount=2_000, idempotency_key="top")
    buy()
    buy()

    # then a second event, for the second fall only
    events = _received(receiver, secret)
    assert [event for event, _body in events] == ["deposit.low", "deposit.low"]
    assert events[1][1]["data"]["balance"] == "595.00"
