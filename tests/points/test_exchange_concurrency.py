"""Exchanges racing on the real PostgreSQL: the daily cap and the deposits hold."""

from decimal import Decimal

import pytest

from points import exchange
from points.exchange import ExchangeCapReached
from points.models import Exchange
from tests.factories import UserFactory

from .conftest import onboard
from .spending_helpers import alliance_assets_restore, balance, brand, deposit, fund, opt_in, race

# Many connections each: kept on one xdist worker so two races never add up past
# PostgreSQL's max_connections.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]


def test_parallel_exchanges_never_pass_the_daily_cap():
    # given two opted-in merchants, the target capping its day at CNY 50
    alliance_assets_restore()
    a = onboard("pa", units_per_cny=Decimal("100"))
    b = onboard("pb", units_per_cny=Decimal("10"))
    opt_in(a)
    opt_in(b, daily_cap="50.00")
    shoppers = [UserFactory() for _ in range(20)]
    for shopper in shoppers:
        fund(brand(a), shopper, 1000)
    deposit_a, deposit_b = deposit(a), deposit(b)

    # when 20 shoppers each exchange CNY 10 at once
    results = race(lambda i: exchange.exchange_execute(
        shopper=shoppers[i], source_asset=brand(a), target_asset=brand(b), amount=1000,
        idempotency_key=f"p-{i}"), 20)

    # then exactly 5 go through and 15 are stopped by the cap
    done = [r for r in results if isinstance(r, Exchange)]
    assert len(done) == 5, [r for r in results if not isinstance(r, Exchange)][:3]
    assert all(isinstance(r, ExchangeCapReached) for r in results if r not in done)
    # and the deposits moved by exactly the five settlements
    assert deposit(a) == deposit_a - 5 * 1000
    assert deposit(b) == deposit_b + 5 * 1000
    assert sum(balance(brand(b), user=s) for s in shoppers) == 5 * 100
    assert sum(balance(brand(a), user=s) for s in shoppers) == 15 * 1000
