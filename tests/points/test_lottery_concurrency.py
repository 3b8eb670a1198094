"""Draws racing on the real PostgreSQL: prize stock, nonces and the close hold."""

import pytest

from points import lottery
from points.models import LotteryDraw, PrizeTier
from tests.factories import UserFactory

from .conftest import onboard
from .spending_helpers import alliance_assets_restore, balance, brand, fund, race

# Many connections each: kept on one xdist worker so two races never add up past
# PostgreSQL's max_connections.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]


@pytest.fixture
def merchant():
    alliance_assets_restore()
    return onboard("lucky", shared=0, deposit=0)


def test_100_parallel_draws_never_give_more_prizes_than_stock(merchant):
    # given a campaign whose every draw lands on a prize tier of stock 5, or on one of 3
    points = brand(merchant)
    campaign = lottery.campaign_create(merchant=merchant, name_zh="抢", name_en="Rush",
                                       entry_cost=10)
    lottery.tier_add(campaign=campaign, label="Five", kind="points", weight=3, stock=5,
                     points=1000)
    lottery.tier_add(campaign=campaign, label="Three", kind="coupon", weight=1, stock=3,
                     coupon_text="free refill")
    lottery.campaign_open(campaign=campaign)
    shoppers = [UserFactory() for _ in range(25)]
    for shopper in shoppers:
        fund(points, shopper, 1000)

    # when 25 shoppers make 4 draws each, 100 at once over 50 connections
    results = race(lambda i: lottery.lottery_draw(
        shopper=shoppers[i % 25], campaign_id=campaign.pk, idempotency_key=f"d-{i}"),
        100, workers=50)

    # then all 100 draws happened, and no tier gave more than its stock
    assert not [r for r in results if isinstance(r, Exception)], results[:3]
    draws = LotteryDraw.objects.filter(campaign=campaign)
    assert draws.count() == 100
    for tier in PrizeTier.objects.filter(campaign=campaign):
        won = draws.filter(drawn_tier=tier, outcome="won").count()
        drawn = draws.filter(drawn_tier=tier).count()
        assert won == min(tier.stock, drawn)
        assert tier.remaining == tier.stock - won
    # each shopper's nonces are 1..4, and the charges and prizes add up
    for shopper in shoppers:
        assert sorted(draws.filter(shopper=shopper).values_list("nonce", flat=True)) == [
            1, 2, 3, 4]
    prizes = sum(draws.values_list("prize_points", flat=True))
    assert prizes == 1000 * draws.filter(drawn_tier__position=1, outcome="won").count()
    assert sum(balance(points, user=s) for s in shoppers) == 25 * 1000 - 100 * 10 + prizes

    # and after the reveal every draw recomputes
    lottery.campaign_close(campaign=campaign)
    report = lottery.lottery_verify(campaign=campaign)
    assert report.ok, report.problems
