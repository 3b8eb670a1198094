"""Reads of the ledger for pages: supply, holders, distribution and daily flows per asset,
the public journal, and each merchant's deposit against what it owes.

Every function runs a fixed number of queries whatever the volume: totals are aggregated by
the database (GROUP BY over ``ledger_posting`` joined to its account and transaction), never
summed in Python row by row. Nothing here returns a person: accounts are shown by their
pseudonymous ``public_id``.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import Account, Asset, Checkpoint, LogLeaf, Posting, Transaction

_SINK_FIELD = {Account.Kind.ISSUANCE: "issued", Account.Kind.BURN: "burned",
               Account.Kind.EXPIRED: "expired"}

# Upper bounds (in major units) of the balance buckets of the distribution chart.
DISTRIBUTION_BOUNDS = (10, 100, 1_000, 10_000, 100_000)


@dataclass
class AssetSupply:
    """One asset's totals in minor units; ``issued = burned + expired + circulating``."""

    asset: Asset
    issued: int = 0
    burned: int = 0
    expired: int = 0
    circulating: int = 0
    holders: int = 0

    def major(self, name: str) -> Decimal:
        return self.asset.to_major(getattr(self, name))

    @property
    def issued_major(self) -> Decimal:
        return self.major("issued")

    @property
    def burned_major(self) -> Decimal:
        return self.major("burned")

    @property
    def expired_major(self) -> Decimal:
        return self.major("expired")

    @property
    def circulating_major(self) -> Decimal:
        return self.major("circulating")


def _supply_rows(asset_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    postings = Posting.objects.all()
    if asset_ids is not None:
        postings = postings.filter(asset_id__in=asset_ids)
    totals: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        ("issued", "burned", "expired", "circulating"), 0))
    for row in postings.values("asset_id", "account__kind").annotate(total=Sum("amount")):
        name = _SINK_FIELD.get(row["account__kind"], "circulating")
        amount = row["total"] or 0
        totals[row["asset_id"]][name] += -amount if name == "issued" else amount
    return totals


def _holders(asset_ids: list[int] | None = None) -> dict[int, int]:
    wallets = Account.objects.filter(kind=Account.Kind.WALLET, balance__gt=0)
    if asset_ids is not None:
        wallets = wallets.filter(asset_id__in=asset_ids)
    return dict(wallets.values("asset_id").annotate(n=Count("id")).values_list("asset_id", "n"))


def asset_supply_list() -> list[AssetSupply]:
    """Every asset with its issued, burned, expired and circulating totals and its holders
    (wallets with a positive balance). Three queries."""
    assets = list(Asset.objects.select_related("issuer").order_by("pk"))
    totals = _supply_rows()
    holders = _holders()
    return [AssetSupply(asset=a, holders=holders.get(a.pk, 0), **totals.get(a.pk, {}))
            for a in assets]


def asset_get(*, code: str) -> Asset:
    return Asset.objects.select_related("issuer", "issuer__district").get(code=code.upper())


def asset_supply_get(*, asset: Asset) -> AssetSupply:
    totals = _supply_rows([asset.pk]).get(asset.pk, {})
    return AssetSupply(asset=asset, holders=_holders([asset.pk]).get(asset.pk, 0), **totals)


def asset_distribution(*, asset: Asset) -> list[dict]:
    """How many wallets hold how much: one row per balance bucket (major units), in one
    query of conditional counts."""
    minor = asset.minor_per_unit
    edges = [0, *DISTRIBUTION_BOUNDS]
    aggregates = {}
    for i, low in enumerate(edges):
        cond = Q(balance__gt=low * minor)
        if i + 1 < len(edges):
            cond &= Q(balance__lte=edges[i + 1] * minor)
        aggregates[f"b{i}"] = Count("id", filter=cond)
    counts = Account.objects.filter(asset=asset, kind=Account.Kind.WALLET).aggregate(**aggregates)
    rows = []
    for i, low in enumerate(edges):
        high = edges[i + 1] if i + 1 < len(edges) else None
        label = f"{low:,}–{high:,}" if high is not None else f"> {low:,}"
        rows.append({"label": label, "wallets": counts[f"b{i}"] or 0})
    return rows


def asset_daily_flows(*, asset: Asset, days: int = 30, today: date | None = None) -> list[dict]:
    """Per day of the last ``days`` (by the day a transaction was recorded, in the current
    time zone): points issued, burned, expired and moved between holders, in major units.
    One GROUP BY query; days without traffic are filled with zeros."""
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    rows = (
        Posting.objects.filter(asset=asset, transaction__created_at__gte=since)
        .annotate(day=TruncDate("transaction__created_at"))
        .values("day", "account__kind")
        .annotate(total=Sum("amount"), credited=Sum("amount", filter=Q(amount__gt=0)))
    )
    by_day: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(
        ("issued", "burned", "expired", "moved"), 0))
    for row in rows:
        totals = by_day[row["day"]]
        kind = row["account__kind"]
        if kind == Account.Kind.ISSUANCE:
            totals["issued"] += -(row["total"] or 0)
        elif kind in (Account.Kind.BURN, Account.Kind.EXPIRED):
            totals[_SINK_FIELD[kind]] += row["total"] or 0
        else:
            totals["moved"] += row["credited"] or 0
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        totals = by_day.get(day, dict.fromkeys(("issued", "burned", "expired", "moved"), 0))
        out.append({"day": day.isoformat(),
                    **{k: float(asset.to_major(v)) for k, v in totals.items()}})
    return out


def transaction_public_list(*, asset: Asset | None = None) -> QuerySet[Transaction]:
    """The journal, newest first, with postings (account public ids and asset codes) fetched
    in one more query per page."""
    transactions = Transaction.objects.order_by("-pk")
    if asset is not None:
        transactions = transactions.filter(
            pk__in=Posting.objects.filter(asset=asset).values("transaction_id"))
    return transactions.only("pk", "kind", "created_at", "occurred_at").prefetch_related(
        Prefetch("postings", queryset=Posting.objects.select_related("account", "asset")
                 .only("transaction_id", "leg", "amount", "account__public_id",
                       "account__kind", "asset__code", "asset__scale").order_by("leg")),
    )


def transaction_public_get(*, transaction_id: int) -> Transaction:
    return transaction_public_list().get(pk=transaction_id)


def transaction_log_place(*, transaction: Transaction) -> dict | None:
    """Where a transaction sits in the transparency log: its leaf index and the first
    checkpoint that includes it (None while it waits for the next anchoring)."""
    leaf = LogLeaf.objects.filter(transaction=transaction).only("index").first()
    if leaf is None:
        return None
    checkpoint = (Checkpoint.objects.filter(size__gt=leaf.index).order_by("size")
                  .only("size", "created_at").first())
    return {"index": leaf.index, "checkpoint": checkpoint}


@dataclass
class Reserve:
    """A merchant's proof of reserve: its brand points outstanding, valued in CNY, against
    its SHARED deposit valued at the reference price."""

    merchant: object
    asset: Asset | None
    outstanding: int = 0
    liability_cny: Decimal = Decimal(0)
    deposit: int = 0
    deposit_cny: Decimal = Decimal(0)
    coverage: Decimal | None = field(default=None)

    @property
    def outstanding_major(self) -> Decimal:
        return self.asset.to_major(self.outstanding) if self.asset else Decimal(0)

    @property
    def coverage_percent(self) -> Decimal | None:
        return None if self.coverage is None else (self.coverage * 100).quantize(Decimal("1"))

    @property
    def covered(self) -> bool:
        return self.coverage is None or self.coverage >= 1


def reserve_list(*, reference_price: Decimal, merchants=None) -> list[Reserve]:
    """Each merchant's outstanding brand points (balances of bounded accounts: wallets,
    holds, settlement) in CNY against its deposit in CNY. Four queries whatever the number
    of merchants."""
    from merchants.models import Merchant

    if merchants is None:
        merchants = Merchant.objects.exclude(status=Merchant.Status.LEFT).order_by("pk")
    merchants = list(merchants)
    ids = [m.pk for m in merchants]
    assets = {a.issuer_id: a for a in Asset.objects.filter(
        family=Asset.Family.BRAND, issuer_id__in=ids).order_by("-pk")}
    outstanding = dict(
        Account.objects.filter(asset__in=list(assets.values()), bounded=True)
        .values("asset_id").annotate(total=Sum("balance")).values_list("asset_id", "total"))
    shared_scale = Asset.objects.filter(code="SHARED").values_list("scale", flat=True).first()
    deposits = dict(
        Account.objects.filter(asset__code="SHARED", kind=Account.Kind.DEPOSIT,
                               merchant_id__in=ids).values_list("merchant_id", "balance"))
    rows = []
    cent = Decimal("0.01")
    for merchant in merchants:
        asset = assets.get(merchant.pk)
        out = (outstanding.get(asset.pk) or 0) if asset else 0
        liability = (asset.to_major(out) / asset.units_per_cny) if asset else Decimal(0)
        deposit = deposits.get(merchant.pk, 0)
        deposit_cny = Decimal(deposit).scaleb(-(shared_scale or 0)) * reference_price
        coverage = (deposit_cny / liability).quantize(Decimal("0.0001")) if liability else None
        rows.append(Reserve(merchant=merchant, asset=asset, outstanding=out,
                            liability_cny=liability.quantize(cent), deposit=deposit,
                            deposit_cny=deposit_cny.quantize(cent), coverage=coverage))
    return rows
