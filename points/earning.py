"""How many points a purchase earns: the merchant's active rule, its multipliers, the
shopper's tier, the daily cap. Pure reads and arithmetic; ``points.services`` writes."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import DecimalField, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from .models import EarningRule, MemberTier, Purchase

# A merchant without a rule earns its shoppers one point per CNY.
DEFAULT_BASE_RATE = Decimal("1")


@dataclass(frozen=True)
class Earning:
    points: int
    rule: EarningRule | None
    multiplier: Decimal
    tier: MemberTier | None  # looked up only when the rule has tier multipliers
    capped: bool


def active_rule(merchant) -> EarningRule | None:
    return EarningRule.objects.filter(merchant=merchant, active=True).first()


def trailing_spend(merchant, shopper, *, at: datetime) -> Decimal:
    """The shopper's spend at the merchant in the 12 months up to ``at``."""
    return (Purchase.objects.filter(merchant=merchant, shopper=shopper,
                                    occurred_at__gt=at - timedelta(days=365),
                                    occurred_at__lte=at)
            .aggregate(total=Sum("amount"))["total"]) or Decimal("0")


def tier_for(merchant, shopper, *, at: datetime) -> MemberTier | None:
    """The highest tier whose threshold the shopper's trailing 12-month spend reaches (one
    query: the spend is a subquery)."""
    spend = (Purchase.objects.filter(merchant=merchant, shopper=shopper,
                                     occurred_at__gt=at - timedelta(days=365),
                                     occurred_at__lte=at)
             .order_by().values("merchant").annotate(total=Sum("amount")).values("total"))
    zero = Value(Decimal("0"), output_field=DecimalField(max_digits=14, decimal_places=2))
    return (MemberTier.objects.filter(merchant=merchant,
                                      threshold__lte=Coalesce(Subquery(spend), zero))
            .order_by("-threshold").first())


@dataclass(frozen=True)
class TierProgress:
    """Where a shopper stands in one merchant's tiers, and what the next tier needs."""

    merchant: object
    spend: Decimal
    tier: MemberTier | None
    next_tier: MemberTier | None

    @property
    def gap(self) -> Decimal | None:
        return None if self.next_tier is None else self.next_tier.threshold - self.spend

    @property
    def percent(self) -> int:
        """How far from the current tier's threshold to the next one, 0-100, for a bar."""
        if self.next_tier is None:
            return 100
        floor = self.tier.threshold if self.tier else Decimal("0")
        span = self.next_tier.threshold - floor
        return int(max(0, min(100, (self.spend - floor) * 100 / span))) if span > 0 else 0


def tier_progress(*, shopper, at: datetime) -> list[TierProgress]:
    """For every merchant with tiers where the shopper bought in the last 12 months: the
    spend, the tier reached and the next one."""
    spends = dict(Purchase.objects.filter(shopper=shopper,
                                          occurred_at__gt=at - timedelta(days=365),
                                          occurred_at__lte=at)
                  .values("merchant_id").annotate(total=Sum("amount"))
                  .values_list("merchant_id", "total"))
    tiers: dict[int, list[MemberTier]] = {}
    for tier in (MemberTier.objects.filter(merchant_id__in=spends).select_related("merchant")
                 .order_by("merchant_id", "threshold")):
        tiers.setdefault(tier.merchant_id, []).append(tier)
    progress = []
    for merchant_id, ladder in tiers.items():
        spend = spends[merchant_id]
        reached = [t for t in ladder if t.threshold <= spend]
        ahead = [t for t in ladder if t.threshold > spend]
        progress.append(TierProgress(ladder[0].merchant, spend, reached[-1] if reached else None,
                                     ahead[0] if ahead else None))
    return progress


def _window_applies(window: dict, local: datetime) -> bool:
    weekdays = window.get("weekdays")
    if weekdays is not None and local.weekday() not in weekdays:
        return False
    start = time.fromisoformat(window.get("start", "00:00"))
    end = time.fromisoformat(window.get("end", "23:59:59.999999"))
    return start <= local.time() <= end


def multiplier_for(rule: EarningRule | None, *, at: datetime, tier: MemberTier | None,
                   categories: list[str]) -> Decimal:
    """The product of the rule's multipliers that apply: time window, tier, and the best
    category multiplier among the order's lines."""
    if rule is None:
        return Decimal("1")
    multipliers = rule.multipliers or {}
    result = Decimal("1")
    local = at.astimezone(ZoneInfo(settings.TIME_ZONE))
    for window in multipliers.get("time_windows", []):
        if _window_applies(window, local):
            result *= Decimal(str(window["multiplier"]))
    if tier is not None and tier.code in multipliers.get("tiers", {}):
        result *= Decimal(str(multipliers["tiers"][tier.code]))
    by_category = multipliers.get("categories", {})
    best = max((Decimal(str(by_category[c])) for c in categories if c in by_category),
               default=None)
    if best is not None:
        result *= best
    return result


def earned_today(merchant, shopper, *, at: datetime) -> int:
    local = at.astimezone(ZoneInfo(settings.TIME_ZONE))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return (Purchase.objects.filter(merchant=merchant, shopper=shopper,
                                    occurred_at__gte=day_start,
                                    occurred_at__lt=day_start + timedelta(days=1))
            .aggregate(total=Sum("points"))["total"]) or 0


def earning_for(*, merchant, shopper, amount: Decimal, at: datetime,
                lines: list[dict] | None = None) -> Earning:
    """Points (brand asset minor units = points, scale 0) for ``amount`` CNY, rounded down."""
    rule = active_rule(merchant)
    # The tier matters only to a rule with tier multipliers: without them it changes nothing.
    tiered = rule is not None and bool((rule.multipliers or {}).get("tiers"))
    tier = tier_for(merchant, shopper, at=at) if shopper is not None and tiered else None
    capped = rule is not None and rule.daily_cap is not None and shopper is not None
    return earning_compute(rule=rule, tier=tier, amount=amount, at=at, lines=lines,
                           earned=earned_today(merchant, shopper, at=at) if capped else None)


def earning_compute(*, rule: EarningRule | None, tier: MemberTier | None, amount: Decimal,
                    at: datetime, lines: list[dict] | None, earned: int | None) -> Earning:
    """``earning_for``'s arithmetic, given what it reads: the active rule, the shopper's tier
    (for a rule with tier multipliers) and the points the shopper earned here today (for a
    rule with a daily cap; None: no shopper to cap). ``points.purchase_engine`` reads them in
    one query."""
    categories = [line.get("category", "") for line in lines or []]
    multiplier = multiplier_for(rule, at=at, tier=tier, categories=categories)
    base = rule.base_rate if rule else DEFAULT_BASE_RATE
    points = int((amount * base * multiplier).to_integral_value(rounding=ROUND_FLOOR))
    capped = False
    if rule is not None and rule.daily_cap is not None and earned is not None:
        room = max(rule.daily_cap - earned, 0)
        if points > room:
            points, capped = room, True
    if rule is not None and rule.budget is not None:
        room = max(rule.budget - rule.budget_used, 0)
        if points > room:
            points, capped = room, True
    return Earning(points, rule, multiplier, tier, capped)


def preview(*, merchant, amount: Decimal, at: datetime, rule: EarningRule | None = None) -> int:
    """"A CNY 200 purchase now earns N points", for the rule editor (no tier, no cap): by the
    active rule, or by ``rule``, a draft not saved yet."""
    rule = rule if rule is not None else active_rule(merchant)
    multiplier = multiplier_for(rule, at=at, tier=None, categories=[])
    base = rule.base_rate if rule else DEFAULT_BASE_RATE
    return int((amount * base * multiplier).to_integral_value(rounding=ROUND_FLOOR))
