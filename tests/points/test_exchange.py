"""Exchange between merchants' points (积分互通): rates and rounding, settlement between the
deposits, opt-in, daily caps, and bad input that changes nothing."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.parameters import parameter_set
from ledger.models import Asset, Transaction
from points import exchange
from points.models import Exchange
from points.spending_selectors import exchange_assets, exchange_matrix
from tests.factories import UserFactory

from .conftest import onboard
from .spending_helpers import (
    alliance_assets_restore,
    balance,
    brand,
    deposit,
    error_code,
    fund,
    opt_in,
    shopper_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alliance_assets():
    # a transactional test run earlier flushes the assets a migration made
    alliance_assets_restore()

EXCHANGE = "/api/v1/exchange"


@pytest.fixture
def a(merchant):
    """Burger: 100 points per CNY, deposit 1,600 SHARED, opted in."""
    opt_in(merchant)
    return merchant


@pytest.fixture
def b():
    """Tea: 7 points per CNY (so most values do not divide evenly), opted in."""
    tea = onboard("tea", units_per_cny=Decimal("7"))
    opt_in(tea)
    return tea


@pytest.fixture
def holder(a):
    shopper = UserFactory()
    fund(brand(a), shopper, 100_000)
    return shopper


def _exchange(client, amount, source="BURGER", target="TEA", key="x-1", **extra):
    return client.post(EXCHANGE, {"source": source, "target": target, "amount": amount, **extra},
                       format="json", HTTP_IDEMPOTENCY_KEY=key)


def _snapshot(a, b, shopper) -> tuple:
    return (balance(brand(a), user=shopper), balance(brand(b), user=shopper), deposit(a),
            deposit(b), Exchange.objects.count(), Transaction.objects.filter(kind="exchange")
            .count())


def test_an_exact_exchange_moves_points_and_settles_between_deposits(a, b, holder):
    # given a shopper with Burger points, and both deposits
    deposit_a, deposit_b = deposit(a), deposit(b)

    # when they exchange 1,000 Burger points (CNY 10) for Tea points
    response = _exchange(shopper_client(holder), 1000)

    # then they receive 70 Tea points, and Burger's deposit paid Tea's 10.00 SHARED
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["amount_out"] == 70 and body["value_in_cny"] == body["value_out_cny"]
    assert body["settlement_shared"] == "10.00"
    assert balance(brand(a), user=holder) == 99_000
    assert balance(brand(b), user=holder) == 70
    assert deposit(a) == deposit_a - 1000
    assert deposit(b) == deposit_b + 1000


def test_rounding_favours_the_alliance_by_less_than_one_point_and_is_quoted(a, b, holder):
    # given 999 Burger points: CNY 9.99, worth 69.93 Tea points
    client = shopper_client(holder)
    quote = client.get(EXCHANGE + "/quote", {"source": "BURGER", "target": "TEA",
                                             "amount": "999"}).json()

    # then the quote shows 69 Tea points (rounded down) and what rounding costs, in CNY
    assert quote["amount_out"] == 69
    assert quote["value_in_cny"] == "9.990000"
    assert quote["value_out_cny"] == "9.857142"
    assert quote["rounding_cny"] == "0.132857"
    # value out = value in minus less than one Tea point (1/7 CNY)
    rounding = Fraction(999, 100) - Fraction(69, 7)
    assert 0 <= rounding < Fraction(1, 7)
    # and the settlement backs the 69 Tea points fully, rounded up to the SHARED fen
    assert quote["settlement_shared"] == "9.86"

    # when they confirm what they saw
    deposit_a, deposit_b = deposit(a), deposit(b)
    done = _exchange(client, 999, expected_amount_out=69)

    # then the ledger matches the quote to the unit
    assert done.status_code == 201
    assert deposit(a) == deposit_a - 986 and deposit(b) == deposit_b + 986
    assert balance(brand(b), user=holder) == 69


def test_the_points_are_retired_and_issued_by_their_issuers(a, b, holder):
    done = exchange.exchange_execute(shopper=holder, source_asset=brand(a),
                                     target_asset=brand(b), amount=700, idempotency_key="k")
    legs = {(p.account.kind, p.account.asset.code, p.account.merchant_id): p.amount
            for p in Transaction.objects.get(pk=done.transaction_id)
            .postings.select_related("account__asset")}
    assert legs[("issuance", "BURGER", a.pk)] == 700
    assert legs[("issuance", "TEA", b.pk)] == -done.amount_out == -49
    assert legs[("deposit", "SHARED", a.pk)] == -700
    assert legs[("deposit", "SHARED", b.pk)] == 700


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(min_value=1, max_value=10**9),
       units_a=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
       units_b=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2),
       price=st.decimals(min_value=Decimal("0.05"), max_value=Decimal("20"), places=2))
def test_value_out_is_value_in_minus_under_one_minor_unit(a, b, amount, units_a, units_b,
                                                          price):
    # given any rates and reference price
    Asset.objects.filter(pk=brand(a).pk).update(units_per_cny=units_a)
    Asset.objects.filter(pk=brand(b).pk).update(units_per_cny=units_b)
    parameter_set(key="reference_price", value=price)
    source, target = brand(a), brand(b)
    try:
        quote = exchange.exchange_quote(source_asset=source, target_asset=target, amount=amount)
    except exchange.ExchangeTooSmall:
        # worth less than one point of B: refused, never rounded up
        assert Fraction(amount) / Fraction(units_a) * Fraction(units_b) < 1
        return
    # then the shopper loses under one minor unit of B to rounding, never gains
    one_b = 1 / Fraction(units_b)
    assert 0 <= quote.value_in - quote.value_out < one_b
    assert quote.value_in == Fraction(amount) / Fraction(units_a)
    # and the settlement covers B's new points by less than one SHARED fen over
    settled_cny = Fraction(quote.settlement, 100) * Fraction(price)
    assert quote.value_out <= settled_cny < quote.value_out + Fraction(price) / 100


# --- opt-in ------------------------------------------------------------------------------------


def test_a_merchant_that_has_not_opted_in_cannot_be_chosen(a, b, holder):
    # given a third merchant that has not opted in (or opted out)
    closed = onboard("closed", units_per_cny=Decimal("10"))
    fund(brand(closed), holder, 500)
    before = _snapshot(a, b, holder)
    client = shopper_client(holder)

    # then it is not offered, and choosing it either way is refused
    assert {asset.code for asset in exchange_assets()} == {"BURGER", "TEA"}
    into = _exchange(client, 100, target="CLOSED", key="1")
    out_of = _exchange(client, 100, source="CLOSED", key="2")
    assert into.status_code == out_of.status_code == 400
    assert error_code(into) == error_code(out_of) == "exchange_not_opted_in"
    exchange.exchange_settings_save(merchant=b, opted_in=False, daily_cap=Decimal("100"))
    opted_out = _exchange(client, 100, key="3")
    assert error_code(opted_out) == "exchange_not_opted_in"
    assert _snapshot(a, b, holder) == before
    assert balance(brand(closed), user=holder) == 500


# --- caps --------------------------------------------------------------------------------------


def test_a_daily_cap_stops_the_next_exchange(a, b, holder):
    # given Tea caps its exchanges at CNY 25 a day
    opt_in(b, daily_cap="25.00")
    client = shopper_client(holder)

    # when two exchanges of CNY 10 go through
    assert _exchange(client, 1000, key="1").status_code == 201
    assert _exchange(client, 1000, key="2").status_code == 201
    before = _snapshot(a, b, holder)

    # then the third (it would make CNY 30) is refused, saying what is left, nothing moves
    third = _exchange(client, 1000, key="3")
    assert third.status_code == 409 and error_code(third) == "exchange_daily_cap_reached"
    assert third.json()["error"]["details"]["left"] == "5.00"
    assert _snapshot(a, b, holder) == before
    # but CNY 5 still fits
    assert _exchange(client, 500, key="4").status_code == 201


def test_the_cap_counts_both_directions(a, b, holder):
    opt_in(a, daily_cap="15.00")
    fund(brand(b), holder, 700)
    client = shopper_client(holder)
    assert _exchange(client, 70, source="TEA", target="BURGER", key="in").status_code == 201
    refused = _exchange(client, 1000, key="out")
    assert refused.status_code == 409 and error_code(refused) == "exchange_daily_cap_reached"


# --- refusals that change nothing -------------------------------------------------------------


@pytest.mark.parametrize(("amount", "code"), [
    (-100, "invalid_amount"), (0, "invalid_amount"), ("1.5", "invalid_amount"),
    ("ten", "invalid_amount"), (1, "exchange_amount_too_small"),
    (10**19, "invalid_amount"),
])
def test_bad_amounts_are_refused(a, b, holder, amount, code):
    before = _snapshot(a, b, holder)
    response = _exchange(shopper_client(holder), amount)
    assert response.status_code == 400 and error_code(response) == code
    assert _snapshot(a, b, holder) == before


@pytest.mark.parametrize(("source", "target", "code"), [
    ("BURGER", "BURGER", "exchange_invalid"), ("SHARED", "TEA", "exchange_invalid"),
    ("BURGER", "NOPE", "asset_not_found"),
])
def test_bad_pairs_are_refused(a, b, holder, source, target, code):
    before = _snapshot(a, b, holder)
    response = _exchange(shopper_client(holder), 100, source=source, target=target)
    assert response.status_code == 400 and error_code(response) == code
    assert _snapshot(a, b, holder) == before


def test_more_than_the_shopper_holds_is_refused(a, b):
    poor = UserFactory()
    fund(brand(a), poor, 50)
    before = _snapshot(a, b, poor)
    response = _exchange(shopper_client(poor), 100)
    assert response.status_code == 409 and error_code(response) == "insufficient_balance"
    assert _snapshot(a, b, poor) == before


def test_a_deposit_at_its_minimum_cannot_settle(a, b, holder):
    # given the alliance raises the minimum deposit to what Burger holds
    parameter_set(key="min_deposit_shared", value=str(Decimal(deposit(a)) / 100))
    before = _snapshot(a, b, holder)
    response = _exchange(shopper_client(holder), 100)
    assert response.status_code == 409 and error_code(response) == "exchange_deposit_insufficient"
    assert _snapshot(a, b, holder) == before


def test_a_changed_rate_since_the_quote_is_refused(a, b, holder):
    before = _snapshot(a, b, holder)
    response = _exchange(shopper_client(holder), 1000, expected_amount_out=71)
    assert response.status_code == 409 and error_code(response) == "quote_changed"
    assert _snapshot(a, b, holder) == before


def test_the_same_key_exchanges_once(a, b, holder):
    client = shopper_client(holder)
    first = _exchange(client, 1000, key="same")
    again = _exchange(client, 1000, key="same")
    other = _exchange(client, 2000, key="same")
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    assert balance(brand(a), user=holder) == 99_000
    missing = client.post(EXCHANGE, {"source": "BURGER", "target": "TEA", "amount": 1},
                          format="json")
    assert missing.status_code == 400 and error_code(missing) == "idempotency_key_required"


def test_visitors_cannot_exchange(a, b):
    from rest_framework.test import APIClient

    response = APIClient().post(EXCHANGE, {"source": "BURGER", "target": "TEA", "amount": 1},
                                format="json", HTTP_IDEMPOTENCY_KEY="v")
    assert response.status_code in (401, 403)


# --- the matrix --------------------------------------------------------------------------------


def test_the_matrix_shows_who_paid_whom_and_the_net(a, b, holder):
    fund(brand(b), holder, 700)
    exchange.exchange_execute(shopper=holder, source_asset=brand(a), target_asset=brand(b),
                              amount=3000, idempotency_key="1")   # Burger pays Tea 30.00
    exchange.exchange_execute(shopper=holder, source_asset=brand(b), target_asset=brand(a),
                              amount=70, idempotency_key="2")     # Tea pays Burger 10.00
    matrix = exchange_matrix()
    assert matrix.paid[a.pk][b.pk] == Decimal("30.00")
    assert matrix.paid[b.pk][a.pk] == Decimal("10.00")
    assert matrix.net == [(a, b, Decimal("20.00"))]
    assert matrix.total == Decimal("40.00")
