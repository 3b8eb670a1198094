"""Reads for the spending pages and endpoints: the catalog as a shopper sees it, vouchers and
their QR, what can be exchanged, the exchange matrix, lotteries."""

import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import segno
from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from alliance.models import User
from ledger.models import Account, Asset
from ledger.services import alliance_asset
from merchants.api_auth import TRADING_STATUSES
from merchants.models import Merchant

from .models import (
    CashDeduction,
    CatalogItem,
    Exchange,
    LotteryCampaign,
    LotteryDraw,
    SpendingSettings,
    Voucher,
)

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,50}")

# --- catalog -----------------------------------------------------------------------------------


def catalog_item_list(*, shopper: User | None = None, q: str = "", merchant: str = "",
                      affordable: bool = False) -> QuerySet[CatalogItem]:
    """Items a shopper can redeem now: listed, in their window, of a trading merchant. ``q``
    searches names and descriptions; ``merchant`` is a merchant's slug; ``affordable`` keeps
    what the shopper's wallet of the price's point type covers (``shopper_balance``)."""
    now = timezone.now()
    items = (CatalogItem.objects.select_related("merchant", "price_asset")
             .filter(active=True, merchant__status__in=TRADING_STATUSES)
             .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
             .filter(Q(available_until__isnull=True) | Q(available_until__gt=now)))
    # NUL cannot reach PostgreSQL in a text parameter; nobody searches for it anyway.
    q = (q or "").replace("\x00", "").strip()[:100]
    if q:
        items = items.filter(Q(name_zh__icontains=q) | Q(name_en__icontains=q)
                             | Q(description__icontains=q))
    if merchant:
        items = items.filter(merchant__slug=merchant if SLUG.fullmatch(merchant) else "")
    if shopper is not None and shopper.is_authenticated:
        balance = Account.objects.filter(
            asset=OuterRef("price_asset"), kind=Account.Kind.WALLET, holder_key=f"u:{shopper.pk}"
        ).values("balance")[:1]
        items = items.annotate(shopper_balance=Coalesce(Subquery(balance), Value(0)))
        if affordable:
            items = items.filter(price__lte=F("shopper_balance"))
    return items.order_by("-created_at", "-pk")


def catalog_merchants() -> QuerySet[Merchant]:
    """Merchants with something in the catalog, for the storefront's filter."""
    return (Merchant.objects.filter(status__in=TRADING_STATUSES, catalog_items__active=True)
            .distinct().order_by("name_en"))


def catalog_item_get(item_id: int) -> CatalogItem | None:
    return (CatalogItem.objects.select_related("merchant", "price_asset")
            .filter(pk=item_id).first())


def merchant_catalog_list(merchant: Merchant) -> QuerySet[CatalogItem]:
    return (CatalogItem.objects.filter(merchant=merchant).select_related("price_asset")
            .annotate(issued=Count("vouchers"),
                      used=Count("vouchers", filter=Q(vouchers__state=Voucher.State.USED)))
            .order_by("-created_at", "-pk"))


# --- vouchers ----------------------------------------------------------------------------------


def shopper_voucher_list(shopper: User) -> QuerySet[Voucher]:
    return (Voucher.objects.filter(shopper=shopper)
            .select_related("item", "merchant", "price_asset").order_by("-issued_at", "-pk"))


def shopper_voucher_get(shopper: User, code: str) -> Voucher | None:
    from .catalog import voucher_code_normalise

    normalised = voucher_code_normalise(code)
    if not normalised:
        return None
    return (Voucher.objects.select_related("item", "merchant", "price_asset")
            .filter(shopper=shopper, code=normalised).first())


def merchant_voucher_get(merchant: Merchant, code: str) -> Voucher | None:
    from .catalog import voucher_code_normalise

    normalised = voucher_code_normalise(code)
    if not normalised:
        return None
    return (Voucher.objects.select_related("item", "shopper", "used_by")
            .filter(merchant=merchant, code=normalised).first())


def merchant_recent_validations(merchant: Merchant, limit: int = 20) -> list[Voucher]:
    return list(Voucher.objects.filter(merchant=merchant, state=Voucher.State.USED)
                .select_related("item", "used_by", "used_store").order_by("-used_at")[:limit])


def voucher_qr_svg(voucher: Voucher, scale: int = 5) -> str:
    """The voucher's code as an inline SVG QR (segno): no script, no style attribute, so the
    strict CSP is happy; the code itself is what staff scan or type."""
    qr = segno.make(voucher.code, error="m")
    return qr.svg_inline(scale=scale, dark="#000", light="#fff", title=voucher.display_code)


# --- holds -------------------------------------------------------------------------------------


def deduction_get(merchant: Merchant, hold_id: int) -> CashDeduction | None:
    return (CashDeduction.objects.select_related("hold", "hold__wallet__asset", "shopper")
            .filter(merchant=merchant, hold_id=hold_id).first())


# --- exchange ----------------------------------------------------------------------------------


def exchange_assets() -> list[Asset]:
    """Brand point types of trading merchants that opted in to the exchange."""
    merchants = SpendingSettings.objects.filter(
        exchange_opted_in=True, merchant__status__in=TRADING_STATUSES
    ).values("merchant_id")
    return list(Asset.objects.filter(family=Asset.Family.BRAND, issuer_id__in=merchants)
                .select_related("issuer").order_by("code"))


def shopper_brand_wallets(shopper: User) -> list[Account]:
    """The shopper's brand-point wallets holding something, for the exchange form."""
    return list(Account.objects.filter(user=shopper, kind=Account.Kind.WALLET,
                                       asset__family=Asset.Family.BRAND, balance__gt=0)
                .select_related("asset", "asset__issuer").order_by("asset__code"))


def shopper_exchange_list(shopper: User, limit: int = 20) -> list[Exchange]:
    return list(Exchange.objects.filter(shopper=shopper)
                .select_related("source_asset", "target_asset")[:limit])


@dataclass(frozen=True)
class ExchangeMatrix:
    """Settlement between members: ``paid[a][b]`` SHARED (major units) a's deposit paid to
    b's for exchanges out of a's points into b's; ``net`` the pairs' balance."""

    merchants: list[Merchant]
    paid: dict[int, dict[int, Decimal]]
    counts: dict[int, dict[int, int]]
    net: list[tuple[Merchant, Merchant, Decimal]]
    total: Decimal

    def rows(self) -> list[tuple[Merchant, list[tuple[Decimal | None, int]], Decimal]]:
        out = []
        for a in self.merchants:
            cells = [(self.paid[a.pk].get(b.pk) if a.pk != b.pk else None,
                      self.counts[a.pk].get(b.pk, 0)) for b in self.merchants]
            out.append((a, cells, sum(self.paid[a.pk].values(), Decimal("0"))))
        return out


def exchange_matrix(*, day_from=None, day_to=None) -> ExchangeMatrix:
    shared = alliance_asset("SHARED")
    exchanges = Exchange.objects.all()
    if day_from:
        exchanges = exchanges.filter(day__gte=day_from)
    if day_to:
        exchanges = exchanges.filter(day__lte=day_to)
    flows = (exchanges.values("source_merchant", "target_merchant")
             .annotate(settled=Sum("settlement"), n=Count("pk")))
    paid: dict[int, dict[int, Decimal]] = defaultdict(dict)
    counts: dict[int, dict[int, int]] = defaultdict(dict)
    ids = set()
    total = Decimal("0")
    for flow in flows:
        a, b = flow["source_merchant"], flow["target_merchant"]
        paid[a][b] = shared.to_major(flow["settled"])
        counts[a][b] = flow["n"]
        total += paid[a][b]
        ids.update((a, b))
    merchants = list(Merchant.objects.filter(pk__in=ids).order_by("name_en"))
    net = []
    for i, a in enumerate(merchants):
        for b in merchants[i + 1:]:
            balance = paid[a.pk].get(b.pk, Decimal("0")) - paid[b.pk].get(a.pk, Decimal("0"))
            if balance > 0:
                net.append((a, b, balance))
            elif balance < 0:
                net.append((b, a, -balance))
    net.sort(key=lambda row: -row[2])
    return ExchangeMatrix(merchants=merchants, paid=paid, counts=counts, net=net, total=total)


# --- lotteries ---------------------------------------------------------------------------------


def lottery_open_list() -> QuerySet[LotteryCampaign]:
    return (LotteryCampaign.objects.filter(state=LotteryCampaign.State.OPEN,
                                           merchant__status__in=TRADING_STATUSES)
            .select_related("merchant", "asset").order_by("-opened_at", "-pk"))


def lottery_closed_list(limit: int = 20) -> list[LotteryCampaign]:
    return list(LotteryCampaign.objects.filter(state=LotteryCampaign.State.CLOSED)
                .select_related("merchant").order_by("-closed_at", "-pk")[:limit])


def lottery_get(campaign_id: int, *, published_only: bool = True) -> LotteryCampaign | None:
    campaigns = LotteryCampaign.objects.select_related("merchant", "asset")
    if published_only:
        campaigns = campaigns.exclude(state=LotteryCampaign.State.DRAFT)
    return campaigns.filter(pk=campaign_id).first()


def merchant_lottery_list(merchant: Merchant) -> QuerySet[LotteryCampaign]:
    return (LotteryCampaign.objects.filter(merchant=merchant).select_related("asset")
            .annotate(draw_count=Count("draws")).order_by("-created_at", "-pk"))


def shopper_draw_list(shopper: User, campaign: LotteryCampaign) -> list[LotteryDraw]:
    return list(LotteryDraw.objects.filter(shopper=shopper, campaign=campaign)
                .select_related("drawn_tier", "voucher").order_by("-pk")[:50])
