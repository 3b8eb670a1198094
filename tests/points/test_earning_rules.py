"""Earning rules (SPEC §4.4): versions and their hashes in the ledger, multipliers by time
window, category and tier, the daily cap, the rule budget, the editor's preview, and the
tiers a shopper sees with what the next one needs."""

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from alliance.errors import DomainError
from points.earning import preview, tier_progress
from points.models import EarningRule, Purchase
from points.services import earning_rule_publish, member_tier_set, purchase_record
from tests.points.task_helpers import balance

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def buy(merchant, shopper, amount="100.00", *, at=None, lines=None):
    purchase, _ = purchase_record(
        merchant=merchant, shopper=shopper, amount=Decimal(amount), order_ref="o",
        idempotency_key=uuid.uuid4().hex, fingerprint=uuid.uuid4().hex, lines=lines,
        occurred_at=at)
    return purchase


def test_each_purchase_records_its_rule_versions_hash(merchant, shopper):
    # given version 1 of a rule, then version 2
    v1 = earning_rule_publish(merchant=merchant, base_rate=Decimal("1"))
    first = buy(merchant, shopper)
    v2 = earning_rule_publish(merchant=merchant, base_rate=Decimal("3"))
    second = buy(merchant, shopper)

    # then each purchase's ledger transaction names the version that produced its points
    assert (v1.version, v2.version) == (1, 2)
    assert v1.content_hash != v2.content_hash and len(v2.content_hash) == 64
    assert first.transaction.metadata["rule"] == v1.content_hash
    assert second.transaction.metadata["rule"] == v2.content_hash
    assert (first.points, second.points) == (100, 300)
    # and only the newest version is in force; the old one stays for the record
    v1.refresh_from_db()
    assert not v1.active and EarningRule.objects.get(active=True) == v2
    assert v2.content_hash == v2.compute_hash()


def test_time_window_multiplier_applies_only_inside_the_window(merchant, shopper):
    # given double points all day on today's weekday (alliance time), and 12:00-14:00 on Mondays
    now = timezone.now()
    today = now.astimezone(SHANGHAI).weekday()
    earning_rule_publish(merchant=merchant, base_rate=Decimal("1"), multipliers={
        "time_windows": [{"weekdays": [today], "multiplier": "2"},
                         {"weekdays": [0], "start": "12:00", "end": "14:00",
                          "multiplier": "3"}]})

    # then a purchase now earns double, one two days ago (another weekday) does not
    assert buy(merchant, shopper, at=now).points == 200
    assert buy(merchant, shopper, at=now - timedelta(hours=48)).points == 100
    # and the hours of a window bound it (the preview shares the arithmetic)
    monday = {"merchant": merchant, "amount": Decimal("100")}
    expected_monday = 6 if today == 0 else 3
    assert preview(**monday, at=datetime(2026, 1, 5, 13, 0, tzinfo=SHANGHAI)) \
        == 100 * expected_monday
    assert preview(**monday, at=datetime(2026, 1, 5, 15, 0, tzinfo=SHANGHAI)) \
        == 100 * (2 if today == 0 else 1)


def test_category_and_tier_multipliers_multiply(merchant, shopper):
    # given coffee earning 1.5x and gold members 2x, gold from CNY 500 a year
    member_tier_set(merchant=merchant, code="gold", name_zh="金卡", name_en="Gold",
                    threshold=Decimal("500"))
    earning_rule_publish(merchant=merchant, base_rate=Decimal("1"), multipliers={
        "categories": {"coffee": "1.5", "cake": "1.2"}, "tiers": {"gold": "2"}})

    # when a shopper without a tier buys coffee and cake: the best category counts
    first = buy(merchant, shopper, "100.00", lines=[{"category": "coffee", "amount": "50"},
                                                    {"category": "cake", "amount": "50"}])
    assert first.points == 150
    # once gold (CNY 600 spent in 12 months), coffee earns 1.5 × 2
    buy(merchant, shopper, "500.00")
    gold = buy(merchant, shopper, "100.00", lines=[{"category": "coffee", "amount": "100"}])
    assert gold.points == 300
    assert gold.transaction.metadata["multiplier"] == "3.0"


def test_daily_cap_holds_per_shopper(merchant, shopper):
    earning_rule_publish(merchant=merchant, base_rate=Decimal("1"), daily_cap=250)
    earned = [buy(merchant, shopper).points for _ in range(4)]
    assert earned == [100, 100, 50, 0]
    assert balance("BURGER", user=shopper) == 250


def test_rule_budget_holds_across_shoppers(merchant):
    from tests.factories import UserFactory

    rule = earning_rule_publish(merchant=merchant, base_rate=Decimal("1"), budget=250)
    earned = [buy(merchant, UserFactory()).points for _ in range(4)]
    assert earned == [100, 100, 50, 0]
    rule.refresh_from_db()
    assert rule.budget_used == 250


def test_preview_says_what_a_cny_200_purchase_earns_now(merchant):
    assert preview(merchant=merchant, amount=Decimal("200"), at=timezone.now()) == 200
    earning_rule_publish(merchant=merchant, base_rate=Decimal("2.5"))
    assert preview(merchant=merchant, amount=Decimal("200"), at=timezone.now()) == 500
    draft = EarningRule(merchant=merchant, base_rate=Decimal("0.1"), multipliers={})
    assert preview(merchant=merchant, amount=Decimal("200"), at=timezone.now(),
                   rule=draft) == 20


@pytest.mark.parametrize("multipliers", [
    {"time_windows": [{"start": "25:00", "multiplier": "2"}]},
    {"time_windows": [{"start": "10:00"}]},
    {"categories": {"coffee": "-1"}},
    {"tiers": {"gold": "x"}},
])
def test_invalid_rules_are_refused(merchant, multipliers):
    with pytest.raises(DomainError):
        earning_rule_publish(merchant=merchant, base_rate=Decimal("1"), multipliers=multipliers)
    assert EarningRule.objects.count() == 0


def test_tier_progress_shows_the_gap_to_the_next_tier(merchant, shopper):
    # given silver at CNY 500 and gold at CNY 2000
    member_tier_set(merchant=merchant, code="silver", name_zh="银卡", name_en="Silver",
                    threshold=Decimal("500"))
    member_tier_set(merchant=merchant, code="gold", name_zh="金卡", name_en="Gold",
                    threshold=Decimal("2000"))

    # when the shopper has spent CNY 800 in the last 12 months
    buy(merchant, shopper, "800.00")
    [progress] = tier_progress(shopper=shopper, at=timezone.now())

    # then they are silver, and gold needs CNY 1200 more
    assert progress.tier.code == "silver"
    assert progress.next_tier.code == "gold"
    assert progress.gap == Decimal("1200.00")
    assert progress.percent == 20

    # and purchases older than 12 months do not count
    Purchase.objects.update(occurred_at=timezone.now() - timedelta(days=400))
    assert tier_progress(shopper=shopper, at=timezone.now()) == []
