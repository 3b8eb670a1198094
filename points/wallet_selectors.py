"""Reads for the shopper's storefront: the wallet and its value in CNY, points about to
expire, the history of the shopper's transactions, and offers nearby.

Each function runs a fixed number of queries whatever the shopper's history: balances come
from the shopper's wallet rows, expiring points from the lots of those wallets, history from
postings on those wallets with their transactions joined.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.apps import apps
from django.db.models import Avg, QuerySet
from django.utils import timezone

from alliance.parameters import parameter_get
from ledger.models import Account, Asset, Lot, Posting

CENT = Decimal("0.01")
EXPIRING_DAYS = 30


@dataclass
class Balance:
    asset: Asset
    amount: int
    value_cny: Decimal | None  # None for share value, which is not money (SPEC §4)

    @property
    def amount_major(self) -> Decimal:
        return self.asset.to_major(self.amount)


@dataclass
class Wallet:
    balances: list[Balance] = field(default_factory=list)
    total_cny: Decimal = Decimal(0)
    share_value: Decimal = Decimal(0)
    expiring: list[dict] = field(default_factory=list)

    @property
    def brand_balances(self) -> dict[int, Balance]:
        return {b.asset.issuer_id: b for b in self.balances
                if b.asset.family == Asset.Family.BRAND}


def asset_value_cny(asset: Asset, amount: int, reference_price: Decimal) -> Decimal | None:
    """CNY value of ``amount`` minor units: brand points at the merchant's own rate, the
    shared and alliance points at the reference price; share value has none."""
    if asset.family == Asset.Family.SHARE_VALUE:
        return None
    major = asset.to_major(amount)
    if asset.family == Asset.Family.BRAND:
        return (major / asset.units_per_cny).quantize(CENT)
    return (major * reference_price).quantize(CENT)


def wallet_get(*, user, now: datetime | None = None) -> Wallet:
    """Every asset the shopper holds, the total in CNY, share value apart, and what expires
    within ``EXPIRING_DAYS`` days (per asset and date). Three queries."""
    now = now or timezone.now()
    price = parameter_get("reference_price")
    wallet = Wallet()
    accounts = (Account.objects.filter(user=user, kind=Account.Kind.WALLET)
                .select_related("asset", "asset__issuer").order_by("asset_id"))
    for account in accounts:
        value = asset_value_cny(account.asset, account.balance, price)
        wallet.balances.append(Balance(account.asset, account.balance, value))
        if account.asset.family == Asset.Family.SHARE_VALUE:
            wallet.share_value += account.asset.to_major(account.balance)
        elif value is not None:
            wallet.total_cny += value
    lots = (Lot.objects.filter(account__user=user, account__kind=Account.Kind.WALLET,
                               remaining__gt=0, expires_at__gt=now,
                               expires_at__lte=now + timedelta(days=EXPIRING_DAYS))
            .select_related("account__asset").order_by("expires_at"))
    for lot in lots:
        wallet.expiring.append({"asset": lot.account.asset, "expires_at": lot.expires_at,
                                "amount": lot.account.asset.to_major(lot.remaining)})
    return wallet


def history_list(*, user, asset_code: str = "", kind: str = "",
                 since: date | None = None, until: date | None = None) -> QuerySet[Posting]:
    """The shopper's postings on their own wallets, newest first, each with its transaction
    and asset: one row per transaction leg that touched the shopper."""
    postings = (Posting.objects.filter(account__user=user)
                .select_related("transaction", "asset", "account")
                .order_by("-transaction_id", "leg"))
    if asset_code:
        postings = postings.filter(asset__code=asset_code)
    if kind:
        postings = postings.filter(transaction__kind=kind)
    if since:
        postings = postings.filter(transaction__created_at__gte=timezone.make_aware(
            datetime.combine(since, time.min)))
    if until:
        postings = postings.filter(transaction__created_at__lt=timezone.make_aware(
            datetime.combine(until + timedelta(days=1), time.min)))
    return postings


def history_filter_choices(*, user) -> dict:
    """The assets and transaction kinds the shopper has, for the filter form (two queries)."""
    assets = list(Asset.objects.filter(accounts__user=user).distinct().order_by("code"))
    kinds = list(Posting.objects.filter(account__user=user)
                 .values_list("transaction__kind", flat=True).distinct()
                 .order_by("transaction__kind"))
    return {"assets": assets, "kinds": kinds}


def notification_list(*, user, limit: int = 20) -> list:
    """The shopper's notifications, newest first; empty where the jobs app keeps none."""
    try:
        model = apps.get_model("points", "Notification")
    except LookupError:
        return []
    return list(model.objects.filter(user=user).order_by("-created_at", "-pk")[:limit])


# --- nearby -----------------------------------------------------------------------------


@dataclass
class Offer:
    store: object
    distance_km: float
    direct_cny: Decimal
    exchange_cny: Decimal

    @property
    def usable_cny(self) -> Decimal:
        return self.direct_cny + self.exchange_cny


def _distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(min(1.0, a)))


def district_centre(district_id: int) -> tuple[float, float] | None:
    """The centre of a district: the mean position of its stores (one query)."""
    from merchants.models import Store

    row = Store.objects.filter(merchant__district_id=district_id).aggregate(
        lat=Avg("latitude"), lng=Avg("longitude"))
    if row["lat"] is None:
        return None
    return float(row["lat"]), float(row["lng"])


def nearby_offers(*, user, district_id: int, lat: float, lng: float,
                  wallet: Wallet) -> list[Offer]:
    """Stores of trading merchants in the district, ranked by the CNY value of the points the
    shopper can use there (their brand points directly, plus other brand points if both
    merchants take part in the exchange), then by distance. Two queries."""
    from merchants.api_auth import TRADING_STATUSES
    from merchants.models import Store
    from points.models.spending import SpendingSettings

    stores = list(Store.objects.filter(merchant__district_id=district_id,
                                       merchant__status__in=list(TRADING_STATUSES))
                  .select_related("merchant"))
    opted_in = set(SpendingSettings.objects.filter(
        exchange_opted_in=True, merchant__status__in=list(TRADING_STATUSES))
        .values_list("merchant_id", flat=True))
    brand = wallet.brand_balances
    exchangeable = {merchant_id: b.value_cny or Decimal(0)
                    for merchant_id, b in brand.items() if merchant_id in opted_in}
    offers = []
    for store in stores:
        own = brand.get(store.merchant_id)
        direct = (own.value_cny or Decimal(0)) if own else Decimal(0)
        by_exchange = Decimal(0)
        if store.merchant_id in opted_in:
            by_exchange = sum((v for m, v in exchangeable.items() if m != store.merchant_id),
                              Decimal(0))
        offers.append(Offer(store, _distance_km(lat, lng, float(store.latitude),
                                                float(store.longitude)), direct, by_exchange))
    offers.sort(key=lambda o: (-o.usable_cny, o.distance_km))
    return offers


def shopper_district_id(*, user) -> int | None:
    """The district a shopper belongs to: where most of their points come from (the
    issuer of their largest brand balance), else the first district."""
    from alliance.models import District

    account = (Account.objects.filter(user=user, kind=Account.Kind.WALLET,
                                      asset__family=Asset.Family.BRAND, balance__gt=0,
                                      asset__issuer__district__isnull=False)
               .order_by("-balance").values_list("asset__issuer__district_id", flat=True)
               .first())
    if account is not None:
        return account
    return District.objects.order_by("pk").values_list("pk", flat=True).first()

