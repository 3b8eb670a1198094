"""Reads for a merchant's reports: KPIs of its brand points, its deposit against its
liability, daily flows, and its own journal for export. Scoped to one merchant: its asset's
postings and its own accounts, never another merchant's shoppers."""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q

from alliance.parameters import parameter_get
from ledger import selectors as ledger_selectors
from ledger.models import Account, Asset, Posting


@dataclass
class Kpis:
    asset: Asset | None
    supply: ledger_selectors.AssetSupply | None
    reserve: ledger_selectors.Reserve
    share_value: Decimal

    @property
    def redemption_rate(self) -> Decimal | None:
        if not self.supply or not self.supply.issued:
            return None
        return (Decimal(self.supply.burned) * 100 / self.supply.issued).quantize(Decimal("0.1"))

    @property
    def breakage(self) -> Decimal | None:
        if not self.supply or not self.supply.issued:
            return None
        return (Decimal(self.supply.expired) * 100 / self.supply.issued).quantize(Decimal("0.1"))


def merchant_brand_asset(*, merchant) -> Asset | None:
    return (Asset.objects.filter(issuer=merchant, family=Asset.Family.BRAND)
            .order_by("-pk").first())


def merchant_kpis(*, merchant) -> Kpis:
    """Issued, redeemed (burned), expired and outstanding brand points; the liability in CNY
    against the deposit; the merchant's share value. A fixed handful of queries."""
    asset = merchant_brand_asset(merchant=merchant)
    supply = ledger_selectors.asset_supply_get(asset=asset) if asset else None
    reserve = ledger_selectors.reserve_list(
        reference_price=parameter_get("reference_price"), merchants=[merchant])[0]
    sv = (Account.objects.filter(merchant=merchant, asset__code="SV", bounded=True)
          .values_list("balance", "asset__scale"))
    share_value = sum((Decimal(balance).scaleb(-scale) for balance, scale in sv), Decimal(0))
    return Kpis(asset=asset, supply=supply, reserve=reserve, share_value=share_value)


def merchant_postings_for_export(*, merchant) -> Iterator[tuple]:
    """Every posting of the merchant's brand points and on the merchant's own accounts,
    oldest first, streamed in chunks: (transaction, recorded at, kind, asset, account public
    id, account kind, amount in minor units). Shoppers appear by public id only."""
    asset = merchant_brand_asset(merchant=merchant)
    scope = Q(account__merchant=merchant)
    if asset is not None:
        scope |= Q(asset=asset)
    return (Posting.objects.filter(scope).order_by("transaction_id", "leg")
            .values_list("transaction_id", "transaction__created_at", "transaction__kind",
                         "asset__code", "account__public_id", "account__kind", "amount")
            .iterator(chunk_size=2000))
