"""Cash deduction (积分抵扣): holds over the API, the cap, capture, void and expiry."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alliance.parameters import parameter_set
from ledger.models import Hold
from ledger.services import holds_expire, issuance_account
from points.holds import cny_covered, deduction_cap
from points.models import CashDeduction
from tests.factories import UserFactory

from .conftest import onboard
from .spending_helpers import (
    alliance_assets_restore,
    api_key_client,
    balance,
    brand,
    error_code,
    fund,
    opt_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alliance_assets():
    # a transactional test run earlier flushes the assets a migration made
    alliance_assets_restore()

HOLDS = "/api/v1/holds"


@pytest.fixture
def points(merchant):
    return brand(merchant)


@pytest.fixture
def funded(points, shopper):
    fund(points, shopper, 20_000)
    return shopper


def _hold(api, shopper, points=5000, order_total="100.00", key="h-1"):
    return api.post(HOLDS, {"member": shopper.member_code, "order_total": order_total,
                            "points": points}, format="json", HTTP_IDEMPOTENCY_KEY=key)


def _issued_back(points) -> int:
    """What has been retired to the issuance (its balance is derived from postings)."""
    from django.db.models import Sum

    from ledger.models import Posting

    return Posting.objects.filter(account=issuance_account(points)).aggregate(
        total=Sum("amount"))["total"] or 0


# --- the cap -----------------------------------------------------------------------------------


def test_cap_math_order_100_at_100_points_per_cny_and_50_percent_is_5000(points):
    # given the alliance's default ratio (50%) and an asset of 100 points per CNY
    # then an order of CNY 100 may take at most 5,000 points, worth CNY 50.00
    assert deduction_cap(asset=points, order_total=Decimal("100.00"),
                         ratio=Decimal("0.50")) == 5000
    assert cny_covered(points, 5000) == Decimal("50.00")
    # rounding is down: points never pay more than the ratio allows
    assert deduction_cap(asset=points, order_total=Decimal("0.03"), ratio=Decimal("0.5")) == 1
    assert cny_covered(points, 1) == Decimal("0.01")


def test_a_hold_at_the_cap_is_placed_and_covers_half_the_order(api, funded, points):
    # when the till holds 5,000 points against CNY 100
    response = _hold(api, funded)

    # then the hold is pending, covers CNY 50 and the points left the wallet
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "pending" and body["points"] == 5000
    assert body["cny_covered"] == "50.00"
    hold = Hold.objects.get(pk=body["id"])
    assert abs((hold.expires_at - timezone.now()) - timedelta(minutes=15)) < timedelta(minutes=1)
    assert balance(points, user=funded) == 15_000


def test_a_hold_of_6000_on_an_order_of_100_is_refused_and_nothing_moves(api, funded, points):
    # when the till asks for 6,000 points against CNY 100
    response = _hold(api, funded, points=6000)

    # then it is refused with a clear code naming the cap, and the wallet is untouched
    assert response.status_code == 422
    assert error_code(response) == "deduction_cap_exceeded"
    assert response.json()["error"]["details"]["cap"] == "5000"
    assert balance(points, user=funded) == 20_000
    assert not Hold.objects.exists()


def test_the_merchants_own_ratio_applies_but_never_above_the_alliances(merchant, api, funded):
    # given the merchant allows only 20% of an order
    opt_in(merchant, ratio=Decimal("0.20"))
    # then the quote caps CNY 100 at 2,000 points
    quote = api.get(HOLDS + "/quote", {"member": funded.member_code, "order_total": "100.00"})
    assert quote.status_code == 200
    assert quote.json()["cap"] == 2000 and quote.json()["max_points"] == 2000

    # given a merchant ratio above the alliance's, and the alliance lowering its own to 30%
    opt_in(merchant, ratio=Decimal("0.90"))
    parameter_set(key="max_deduction_ratio", value="0.30")
    quote = api.get(HOLDS + "/quote", {"member": funded.member_code, "order_total": "100.00"})
    # then the alliance's ceiling wins
    assert quote.json()["cap"] == 3000
    assert _hold(api, funded, points=3001).status_code == 422


def test_the_quote_is_the_smaller_of_balance_and_cap(api, points):
    # given a shopper holding 1,234 points
    shopper = UserFactory()
    fund(points, shopper, 1234)

    # when the till asks for a quote on CNY 100
    response = api.get(HOLDS + "/quote", {"member": shopper.member_code, "order_total": "100"})

    # then the most usable is the balance, worth CNY 12.34
    body = response.json()
    assert body["cap"] == 5000 and body["balance"] == 1234
    assert body["max_points"] == 1234 and body["cny_covered"] == "12.34"


# --- capture, void, expiry ---------------------------------------------------------------------


def test_capturing_part_retires_it_and_returns_the_rest(api, funded, points):
    # given a pending hold of 5,000
    hold_id = _hold(api, funded).json()["id"]
    retired_before = _issued_back(points)

    # when the till captures 3,000 of it
    response = api.post(f"{HOLDS}/{hold_id}/capture", {"points": 3000}, format="json",
                        HTTP_IDEMPOTENCY_KEY="c-1")

    # then 3,000 go back to the issuer (retired) and 2,000 return to the shopper
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "captured" and body["captured"] == 3000
    assert body["cny_covered"] == "30.00"
    assert balance(points, user=funded) == 17_000
    assert _issued_back(points) - retired_before == 3000


def test_capturing_whole_takes_everything_held(api, funded, points):
    hold_id = _hold(api, funded).json()["id"]
    response = api.post(f"{HOLDS}/{hold_id}/capture", {}, format="json",
                        HTTP_IDEMPOTENCY_KEY="c-1")
    assert response.status_code == 200
    assert response.json()["captured"] == 5000
    assert balance(points, user=funded) == 15_000


def test_a_repeated_capture_with_its_key_replays_and_another_is_refused(api, funded, points):
    hold_id = _hold(api, funded).json()["id"]
    first = api.post(f"{HOLDS}/{hold_id}/capture", {"points": 1000}, format="json",
                     HTTP_IDEMPOTENCY_KEY="c-1")
    again = api.post(f"{HOLDS}/{hold_id}/capture", {"points": 1000}, format="json",
                     HTTP_IDEMPOTENCY_KEY="c-1")
    other = api.post(f"{HOLDS}/{hold_id}/capture", {"points": 1000}, format="json",
                     HTTP_IDEMPOTENCY_KEY="c-2")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert other.status_code == 409 and error_code(other) == "hold_not_pending"
    assert balance(points, user=funded) == 19_000


def test_voiding_gives_everything_back(api, funded, points):
    hold_id = _hold(api, funded).json()["id"]
    response = api.post(f"{HOLDS}/{hold_id}/void", HTTP_IDEMPOTENCY_KEY="v-1")
    assert response.status_code == 200 and response.json()["state"] == "voided"
    assert balance(points, user=funded) == 20_000
    # and a voided hold cannot be captured
    late = api.post(f"{HOLDS}/{hold_id}/capture", {}, format="json", HTTP_IDEMPOTENCY_KEY="c-9")
    assert late.status_code == 409 and error_code(late) == "hold_not_pending"


def test_an_expired_hold_returns_everything_and_cannot_be_captured(api, funded, points):
    # given a pending hold of 5,000
    hold_id = _hold(api, funded).json()["id"]
    assert balance(points, user=funded) == 15_000

    # when its time runs out, before the expiry job ran: capture is refused
    Hold.objects.filter(pk=hold_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = api.post(f"{HOLDS}/{hold_id}/capture", {}, format="json",
                       HTTP_IDEMPOTENCY_KEY="c-1")
    assert refused.status_code == 409 and error_code(refused) == "hold_expired"
    assert balance(points, user=funded) == 15_000

    # and the expiry job gives every point back
    assert holds_expire() == 1
    assert balance(points, user=funded) == 20_000
    assert api.get(f"{HOLDS}/{hold_id}").json()["state"] == "expired"
    # running the job again changes nothing
    assert holds_expire() == 0
    assert balance(points, user=funded) == 20_000


# --- whose hold, which key ---------------------------------------------------------------------


def test_another_merchants_hold_is_not_found_and_untouched(api, funded, points):
    # given a hold of this merchant, and another merchant's till
    hold_id = _hold(api, funded).json()["id"]
    other = api_key_client(onboard("tea"))

    # when the other till reads, captures or voids it
    answers = [
        other.get(f"{HOLDS}/{hold_id}"),
        other.post(f"{HOLDS}/{hold_id}/capture", {}, format="json", HTTP_IDEMPOTENCY_KEY="x"),
        other.post(f"{HOLDS}/{hold_id}/void", HTTP_IDEMPOTENCY_KEY="y"),
    ]

    # then each is 404, and the hold is still pending with its points held
    assert [r.status_code for r in answers] == [404, 404, 404]
    assert {error_code(r) for r in answers} == {"hold_not_found"}
    assert Hold.objects.get(pk=hold_id).state == Hold.State.PENDING
    assert balance(points, user=funded) == 15_000


def test_every_value_moving_post_needs_an_idempotency_key(api, funded, points):
    hold_id = _hold(api, funded).json()["id"]
    responses = [
        api.post(HOLDS, {"member": funded.member_code, "order_total": "100",
                         "points": 10}, format="json"),
        api.post(f"{HOLDS}/{hold_id}/capture", {}, format="json"),
        api.post(f"{HOLDS}/{hold_id}/void"),
    ]
    assert [r.status_code for r in responses] == [400, 400, 400]
    assert {error_code(r) for r in responses} == {"idempotency_key_required"}
    assert Hold.objects.count() == 1
    assert Hold.objects.get().state == Hold.State.PENDING


def test_the_same_key_replays_the_hold_and_refuses_another_request(api, funded, points):
    first = _hold(api, funded, key="k")
    again = _hold(api, funded, key="k")
    different = _hold(api, funded, points=4000, key="k")
    assert first.status_code == 201 and again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert different.status_code == 409 and error_code(different) == "idempotency_conflict"
    assert CashDeduction.objects.count() == 1
    assert balance(points, user=funded) == 15_000


def test_a_key_without_the_holds_scope_is_refused(merchant, funded):
    client = api_key_client(merchant, scopes=("purchases",))
    response = _hold(client, funded)
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"


@pytest.mark.parametrize(("field", "value", "code"), [
    ("points", -5, "invalid_amount"),
    ("points", 0, "invalid_amount"),
    ("points", "1.5", "invalid_amount"),
    ("points", 2.5, "invalid_amount"),
    ("points", "lots", "invalid_amount"),
    ("points", "NaN", "invalid_amount"),
    ("points", "1e999999999", "invalid_amount"),
    ("points", "1e-999999999", "invalid_amount"),
    ("points", "5000.0000000000000000000000001", "invalid_amount"),
    ("points", True, "invalid"),
    ("order_total", "-100", "invalid_amount"),
    ("order_total", "0", "invalid_amount"),
    ("order_total", "100.001", "invalid_amount"),
    ("order_total", "1e12", "invalid_amount"),
    ("order_total", "1e-999999999", "invalid_amount"),
    ("member", "NOSUCHCODE", "member_not_found"),
    ("member", "", "invalid"),
])
def test_bad_input_is_refused_and_changes_nothing(api, funded, points, field, value, code):
    # given a valid request with one bad field
    body = {"member": funded.member_code, "order_total": "100.00", "points": 100}
    body[field] = value

    # when the till sends it
    response = api.post(HOLDS, body, format="json", HTTP_IDEMPOTENCY_KEY="bad")

    # then it is a 4xx naming the problem, and nothing moved
    assert 400 <= response.status_code < 500
    assert error_code(response) == code
    assert balance(points, user=funded) == 20_000
    assert not Hold.objects.exists()


def test_more_than_the_balance_is_refused_with_what_is_available(api, points):
    shopper = UserFactory()
    fund(points, shopper, 300)
    response = _hold(api, shopper, points=301)
    assert response.status_code == 409 and error_code(response) == "insufficient_balance"
    assert response.json()["error"]["details"]["available"] == "300"
    assert balance(points, user=shopper) == 300


def test_capture_of_more_than_held_or_of_nothing_is_refused(api, funded, points):
    hold_id = _hold(api, funded).json()["id"]
    for bad in (5001, 0, -1, "1.5"):
        response = api.post(f"{HOLDS}/{hold_id}/capture", {"points": bad}, format="json",
                            HTTP_IDEMPOTENCY_KEY=f"c-{bad}")
        assert response.status_code == 400, bad
        assert error_code(response) == "invalid_amount"
    assert Hold.objects.get(pk=hold_id).state == Hold.State.PENDING
    assert balance(points, user=funded) == 15_000


def test_an_unknown_hold_is_404(api):
    response = api.post(f"{HOLDS}/999999/void", HTTP_IDEMPOTENCY_KEY="v")
    assert response.status_code == 404 and error_code(response) == "hold_not_found"
    # an id beyond any bigint is "not found" too, never a database error
    huge = api.post(f"{HOLDS}/{10**30}/capture", {}, format="json", HTTP_IDEMPOTENCY_KEY="h")
    assert huge.status_code == 404 and error_code(huge) == "not_found"


def test_a_quote_with_bad_input_is_a_4xx(api, funded):
    for params in ({"member": funded.member_code}, {"order_total": "100"},
                   {"member": "\x00", "order_total": "100"},
                   {"member": funded.member_code, "order_total": "-1"}):
        response = api.get(HOLDS + "/quote", params)
        assert 400 <= response.status_code < 500, params
        error_code(response)
