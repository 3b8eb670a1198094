"""The purchase API: SPEC §4.1's mechanics, idempotency, deposit limits, refunds, bad input."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.models import Account, Transaction
from ledger.services import alliance_asset
from merchants import services as merchant_services
from points.members import QR_TOKEN_MAX_AGE, member_qr_token
from points.models import Purchase

pytestmark = pytest.mark.django_db


def buy(api, shopper, amount="1000.00", key=None, **extra):
    body = {"member": shopper.member_code, "amount": amount, "order_ref": "A-1", **extra}
    return api.post("/api/v1/purchases", body, format="json",
                    HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def balance(code: str, kind: str, **holder) -> int:
    account = Account.objects.filter(asset__code=code, kind=kind, **holder).first()
    return account.balance if account else 0


def circulating(code: str) -> int:
    return Account.objects.filter(asset__code=code, bounded=True).aggregate(
        t=Sum("balance"))["t"] or 0


def test_spec_worked_example_is_exact(api, merchant, shopper):
    # given a 10% rebate merchant and a reference price of 1.00
    deposit_before = balance("SHARED", "deposit", merchant=merchant)
    supply_before = circulating("SHARED")

    # when it records a CNY 1000 purchase
    response = buy(api, shopper, "1000.00")

    # then the shopper gains 1000.00 SV, the merchant 200.00, and 100.00 SHARED are burned
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["share_value"] == {"shopper": "1000.00", "merchant": "200.00"}
    assert body["deposit_burned"] == "100.00"
    assert body["points"] == {"asset": "BURGER", "amount": 1000}
    assert balance("SV", "wallet", user=shopper) == 100_000
    assert balance("SV", "wallet", merchant=merchant) == 20_000
    assert balance("SHARED", "deposit", merchant=merchant) == deposit_before - 10_000
    assert circulating("SHARED") == supply_before - 10_000
    assert balance("BURGER", "wallet", user=shopper) == 1000
    assert body["receipt"].endswith(f"/api/v1/transactions/{body['transaction']}/receipt")


def test_same_key_same_body_answers_the_same_purchase(api, shopper):
    first = buy(api, shopper, key="till-1-0001")
    again = buy(api, shopper, key="till-1-0001")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["transaction"] == first.json()["transaction"]
    assert again["Idempotent-Replayed"] == "true"
    assert Purchase.objects.count() == 1


def test_a_purchase_too_small_to_earn_replays_too(api, shopper):
    # given a purchase of CNY 0.01: no points, no rebate, so the ledger records an event
    first = buy(api, shopper, "0.01", key="till-1-small")
    # when the till retries it with the same key and body
    again = buy(api, shopper, "0.01", key="till-1-small")
    # then it gets the same purchase back, amounts written with their two decimals
    assert (first.status_code, again.status_code) == (201, 200), again.json()
    assert again.json()["transaction"] == first.json()["transaction"]
    assert first.json()["refunded"] == "0.00"
    assert Purchase.objects.count() == 1


def test_same_key_changed_body_is_a_conflict(api, shopper):
    buy(api, shopper, key="till-1-0002")
    response = buy(api, shopper, "999.00", key="till-1-0002")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert Purchase.objects.count() == 1


def _count_postings():
    return Transaction.objects.count(), Purchase.objects.count()


@pytest.mark.parametrize("amount", ["-5.00", "0", "0.00", "1000000000.01", "abc", "1.234",
                                    None, "NaN", "Infinity", [1]])
def test_bad_amounts_are_400_and_post_nothing(api, shopper, amount):
    before = _count_postings()
    response = buy(api, shopper, amount)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "amount" in error["details"]
    assert _count_postings() == before


def test_unknown_member_is_404(api):
    before = _count_postings()
    response = api.post("/api/v1/purchases", {"member": "ZZZZZZZZZZ", "amount": "10.00",
                                              "order_ref": "x"},
                        format="json", HTTP_IDEMPOTENCY_KEY="k-unknown")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"
    assert _count_postings() == before


def test_member_qr_token_works_and_expires(api, shopper, monkeypatch):
    token = member_qr_token(shopper)
    assert buy(api, shopper, member=token).status_code == 201
    # a screenshot replayed later than the grace period
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + QR_TOKEN_MAX_AGE + 5)
    before = _count_postings()
    response = buy(api, shopper, member=token)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "member_token_expired"
    assert _count_postings() == before


@pytest.mark.parametrize("header", [None, "Api-Key apk_0000000000_" + "0" * 48, "Bearer x"])
def test_wrong_key_is_401(shopper, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    before = _count_postings()
    response = client.post("/api/v1/purchases", {"member": shopper.member_code,
                                                 "amount": "10.00", "order_ref": "x"},
                           format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code in (401, 403)
    assert "error" in response.json()
    assert _count_postings() == before


def test_revoked_key_is_401(api, merchant, shopper):
    from merchants.models import ApiKey

    merchant_services.api_key_revoke(api_key=ApiKey.objects.get(merchant=merchant))
    response = buy(api, shopper)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_missing_idempotency_key_is_400(api, shopper):
    response = api.post("/api/v1/purchases", {"member": shopper.member_code,
                                              "amount": "10.00", "order_ref": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"


def test_offline_upload_within_72_hours(api, shopper):
    earlier = timezone.now() - timedelta(hours=30)
    response = buy(api, shopper, occurred_at=earlier.isoformat())
    assert response.status_code == 201
    assert Purchase.objects.get().occurred_at == earlier
    too_old = (timezone.now() - timedelta(hours=73)).isoformat()
    response = buy(api, shopper, occurred_at=too_old)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_occurred_at"


def test_deposit_below_minimum_refuses_and_changes_nothing(api, merchant, shopper):
    # given a deposit of 500 SHARED + 50: one CNY 1000 purchase (100 burned) would go below
    merchant_services.deposit_top_up  # noqa: B018 - the fixture topped up 1,600
    deposit = Account.objects.get(merchant=merchant, kind="deposit", asset__code="SHARED")
    assert deposit.balance == 160_000
    for n in range(11):
        assert buy(api, shopper, "1000.00").status_code == 201, n
    before = _count_postings()
    response = buy(api, shopper, "1000.00")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "deposit_insufficient"
    assert _count_postings() == before
    deposit.refresh_from_db()
    assert deposit.balance == 50_000


def test_refund_whole_and_in_parts_reverses_exactly(api, merchant, shopper):
    purchase_id = buy(api, shopper, "1000.00").json()["id"]
    deposit = Account.objects.get(merchant=merchant, kind="deposit", asset__code="SHARED")
    deposit.refresh_from_db()
    after_purchase = deposit.balance

    # a third, then another third, then the rest
    for part, key in (("333.33", "r1"), ("333.33", "r2"), (None, "r3")):
        body = {} if part is None else {"amount": part}
        response = api.post(f"/api/v1/purchases/{purchase_id}/refund", body, format="json",
                            HTTP_IDEMPOTENCY_KEY=key)
        assert response.status_code == 201, response.json()

    # then everything the purchase produced is back where it came from
    assert balance("BURGER", "wallet", user=shopper) == 0
    assert balance("SV", "wallet", user=shopper) == 0
    assert balance("SV", "wallet", merchant=merchant) == 0
    deposit.refresh_from_db()
    assert deposit.balance == after_purchase + 10_000
    # the first partial refund reversed exactly floor(1000 × 333.33 / 1000) points
    from points.models import Refund

    assert list(Refund.objects.order_by("pk").values_list("points", flat=True)) == [333, 333, 334]
    # and nothing more can be refunded
    response = api.post(f"/api/v1/purchases/{purchase_id}/refund", {"amount": "0.01"},
                        format="json", HTTP_IDEMPOTENCY_KEY="r4")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "refund_exceeds_purchase"


def test_refund_refused_when_points_are_spent_unless_absorbed(api, merchant, shopper):
    from ledger import services as ledger

    purchase_id = buy(api, shopper, "1000.00").json()["id"]
    wallet = Account.objects.get(user=shopper, asset__code="BURGER")
    brand = wallet.asset
    # the shopper spends 900 of the 1000 points
    ledger.transaction_post(kind="spend", legs=[ledger.Leg(wallet, -900),
                                                ledger.Leg(ledger.issuance_account(brand), 900)],
                            client="test", idempotency_key="spend")
    response = api.post(f"/api/v1/purchases/{purchase_id}/refund", {}, format="json",
                        HTTP_IDEMPOTENCY_KEY="r1")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "points_already_spent"
    assert balance("SV", "wallet", user=shopper) == 100_000  # nothing moved

    response = api.post(f"/api/v1/purchases/{purchase_id}/refund", {"absorb_shortfall": True},
                        format="json", HTTP_IDEMPOTENCY_KEY="r2")
    assert response.status_code == 201
    assert response.json()["shortfall_points"] == 900
    assert balance("BURGER", "wallet", user=shopper) == 0


def test_another_merchants_purchase_is_404(api, shopper):
    from tests.points.conftest import onboard

    other = onboard("coffee")
    _key, raw = merchant_services.api_key_create(merchant=other, name="t", scopes=["purchases"])
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    purchase_id = buy(theirs, shopper).json()["id"]
    assert api.get(f"/api/v1/purchases/{purchase_id}").status_code == 404
    response = api.post(f"/api/v1/purchases/{purchase_id}/refund", {}, format="json",
                        HTTP_IDEMPOTENCY_KEY="x")
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_ten_parallel_purchases_against_three_rebates(shopper):
    from tests.points.conftest import onboard

    # given a deposit that covers exactly 3 rebates of CNY 100 above the 500 minimum
    merchant = onboard("parallel", shared=100_000, deposit=80_000)
    _key, raw = merchant_services.api_key_create(merchant=merchant, name="t",
                                                 scopes=["purchases"])

    def one(i: int) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
        try:
            response = buy(client, shopper, "1000.00", key=f"par-{i}")
            return response.status_code, response.json().get("error", {}).get("code")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one, range(10)))

    # then 3 succeed and 7 are refused, and nothing is half-applied
    assert sorted(code for code, _ in results) == [201] * 3 + [409] * 7
    assert {err for code, err in results if code == 409} == {"deposit_insufficient"}
    assert Purchase.objects.filter(merchant=merchant).count() == 3
    assert balance("SHARED", "deposit", merchant=merchant) == 50_000
    assert balance("SV", "wallet", user=shopper) == 3 * 100_000
    assert alliance_asset("SV")  # the asset exists; balances above came from 3 purchases only


def test_the_till_fetches_the_receipt_its_purchase_names(api, merchant, shopper, settings):
    from ledger import log_services, note
    from tests.points.conftest import onboard

    # given a purchase recorded by the till's key, and the ledger anchored
    settings.LOG_SIGNER_KEY, _vkey = note.generate_signer("test.example/points-log")
    body = buy(api, shopper).json()
    log_services.log_anchor()

    # when the till follows the receipt link of the purchase with the same key
    response = api.get(body["receipt"])

    # then it gets the verifiable receipt; another merchant's till does not
    assert response.status_code == 200, response.content
    assert response.json()["format"] == "alliance-receipt/v1"
    _key, raw = merchant_services.api_key_create(merchant=onboard("tea"), name="till",
                                                 scopes=["purchases"])
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    refused = other.get(body["receipt"])
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
