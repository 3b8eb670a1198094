"""Redemptions racing on the real PostgreSQL: separate connections, one item's stock."""

import pytest

from ledger.models import Transaction
from points import catalog
from points.catalog import OutOfStock, RedemptionLimitReached
from points.models import CatalogItem, Voucher
from tests.factories import UserFactory

from .conftest import onboard
from .spending_helpers import alliance_assets_restore, balance, brand, catalog_item, fund, race

# Many connections each: kept on one xdist worker so two races never add up past
# PostgreSQL's max_connections.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]


@pytest.fixture
def merchant():
    alliance_assets_restore()
    return onboard("race", shared=0, deposit=0)


def test_50_parallel_redemptions_of_a_stock_of_5(merchant):
    # given an item with a stock of 5 priced 100, and 50 shoppers holding 1,000 each
    points = brand(merchant)
    item = catalog_item(merchant, price=100, stock=5)
    shoppers = [UserFactory() for _ in range(50)]
    for shopper in shoppers:
        fund(points, shopper, 1000)

    # when all 50 redeem at once, each on its own connection
    results = race(lambda i: catalog.catalog_redeem(
        shopper=shoppers[i], item_id=item.pk, idempotency_key=f"race-{i}"), 50)

    # then exactly 5 vouchers and 45 clear out-of-stock refusals
    vouchers = [r for r in results if isinstance(r, Voucher)]
    refusals = [r for r in results if isinstance(r, Exception)]
    assert len(vouchers) == 5, refusals[:3]
    assert len(refusals) == 45
    assert all(isinstance(r, OutOfStock) and r.code == "out_of_stock" for r in refusals)
    assert CatalogItem.objects.get(pk=item.pk).stock == 0
    assert Voucher.objects.filter(item=item).count() == 5
    assert len({v.code for v in vouchers}) == 5
    # and points were taken only from the 5 who got a voucher
    paid = {v.shopper_id for v in vouchers}
    for shopper in shoppers:
        assert balance(points, user=shopper) == (900 if shopper.pk in paid else 1000)
    assert Transaction.objects.filter(kind="catalog_redemption").count() == 5


def test_one_shoppers_parallel_redemptions_keep_the_per_shopper_limit(merchant):
    # given an item limited to 2 per shopper, plenty in stock, a shopper with plenty of points
    points = brand(merchant)
    item = catalog_item(merchant, price=10, stock=100, per_shopper_limit=2)
    shopper = UserFactory()
    fund(points, shopper, 1000)

    # when the shopper fires 12 redemptions at once
    results = race(lambda i: catalog.catalog_redeem(
        shopper=shopper, item_id=item.pk, idempotency_key=f"limit-{i}"), 12)

    # then exactly 2 succeed and the others are refused by the limit
    assert sum(isinstance(r, Voucher) for r in results) == 2
    assert all(isinstance(r, RedemptionLimitReached)
               for r in results if not isinstance(r, Voucher))
    assert CatalogItem.objects.get(pk=item.pk).stock == 98
    assert balance(points, user=shopper) == 980


def test_one_voucher_validated_from_many_tills_at_once_is_used_once(merchant):
    points = brand(merchant)
    item = catalog_item(merchant, price=10, stock=1)
    shopper = UserFactory()
    fund(points, shopper, 10)
    voucher = catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key="v")

    results = race(lambda i: catalog.voucher_validate(merchant=merchant, code=voucher.code), 10)

    assert sum(isinstance(r, Voucher) for r in results) == 1
    assert {getattr(r, "code", None) for r in results if isinstance(r, Exception)} == {
        "voucher_already_used"}
