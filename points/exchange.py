"""Exchange between merchants' points (积分互通, SPEC §4.5).

A shopper gives ``amount`` of merchant A's points and receives merchant B's:

* value in CNY = amount / units_per_cny(A), kept exact (a fraction);
* B's points = floor(value × units_per_cny(B)) in B's minor units, so the shopper gives up
  less than one minor unit of B to rounding, and that loss is shown before confirming;
* the settlement: A pays B ceil(value out / reference price) SHARED (in SHARED minor units),
  from A's deposit into B's deposit. Rounded up so the points B has just issued are always
  fully backed; A pays at most one SHARED minor unit more than their exact value.

One ledger transaction retires A's points to A's issuance, issues B's from B's issuance and
moves the settlement; it is refused as a whole. Both merchants must have opted in, and each
sets a daily cap in CNY counted over every exchange it took part in that day (alliance time
zone), in or out; the count is taken under a lock on both merchants' settings rows (locked in
primary-key order, so two opposite exchanges cannot deadlock).
"""

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from fractions import Fraction

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError
from alliance.parameters import parameter_get
from ledger.errors import IdempotencyConflict, InsufficientBalance
from ledger.models import Account, Asset
from ledger.services import (
    Leg,
    account_get_or_create,
    alliance_asset,
    issuance_account,
    transaction_post,
)
from merchants.api_auth import TRADING_STATUSES
from merchants.models import Merchant

from .models import Exchange, SpendingSettings
from .spending import SpendingConflict, key_check, ledger_key, shopper_client

VALUE_PLACES = Decimal("0.000001")


class ExchangeNotOptedIn(DomainError):
    code = "exchange_not_opted_in"
    default_message = _("This merchant's points cannot be exchanged.")


class ExchangeInvalid(DomainError):
    code = "exchange_invalid"
    default_message = _("Choose two different merchants' points.")


class ExchangeTooSmall(DomainError):
    code = "exchange_amount_too_small"
    default_message = _("This amount is worth less than one point of the other merchant.")


class ExchangeCapReached(SpendingConflict):
    code = "exchange_daily_cap_reached"
    default_message = _("A merchant's daily exchange limit is reached; try a smaller amount "
                        "or tomorrow.")


class ExchangeDepositShort(SpendingConflict):
    code = "exchange_deposit_insufficient"
    default_message = _("The merchant cannot settle exchanges now (its deposit is too low).")


class QuoteChanged(SpendingConflict):
    code = "quote_changed"
    default_message = _("The rate changed since you saw the quote; check the new one.")


class _Replayed(Exception):
    pass


@dataclass(frozen=True)
class ExchangeQuote:
    """What an exchange gives, all amounts exact; shown to the shopper before confirming."""

    source_asset: Asset
    target_asset: Asset
    amount_in: int
    amount_out: int
    value_in: Fraction
    value_out: Fraction
    settlement: int
    reference_price: Decimal

    @property
    def source_merchant(self) -> Merchant:
        return self.source_asset.issuer

    @property
    def target_merchant(self) -> Merchant:
        return self.target_asset.issuer

    @staticmethod
    def _cny(value: Fraction) -> Decimal:
        return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
            VALUE_PLACES, rounding=ROUND_DOWN)

    @property
    def value_in_cny(self) -> Decimal:
        return self._cny(self.value_in)

    @property
    def value_out_cny(self) -> Decimal:
        return self._cny(self.value_out)

    @property
    def rounding_cny(self) -> Decimal:
        """What the shopper gives up to rounding, in CNY (under one minor unit of B)."""
        return self._cny(self.value_in - self.value_out)

    @property
    def rounding_target_units(self) -> Fraction:
        """The same loss in minor units of B: always in [0, 1)."""
        return (self.value_in - self.value_out) * _minor_per_cny(self.target_asset)

    @property
    def amount_in_major(self) -> Decimal:
        return self.source_asset.to_major(self.amount_in)

    @property
    def amount_out_major(self) -> Decimal:
        return self.target_asset.to_major(self.amount_out)

    @property
    def settlement_major(self) -> Decimal:
        return alliance_asset("SHARED").to_major(self.settlement)


def _minor_per_cny(asset: Asset) -> Fraction:
    return Fraction(asset.units_per_cny) * asset.minor_per_unit


def exchange_settings(merchant: Merchant) -> SpendingSettings:
    found = SpendingSettings.objects.filter(merchant=merchant).first()
    return found or SpendingSettings(merchant=merchant)


def exchange_settings_save(*, merchant: Merchant, opted_in: bool, daily_cap: Decimal,
                           max_deduction_ratio: Decimal | None = None) -> SpendingSettings:
    """The owner's choices: opt in or out of the exchange, the daily cap in CNY, and the
    merchant's own cash-deduction ratio."""
    if daily_cap is None or daily_cap < 0 or daily_cap != daily_cap.quantize(Decimal("0.01")):
        raise DomainError(_("Enter a daily cap of zero or more, to the fen."),
                          code="invalid_amount", details={"daily_cap": "invalid"})
    row, _created = SpendingSettings.objects.update_or_create(
        merchant=merchant,
        defaults={"exchange_opted_in": opted_in, "exchange_daily_cap": daily_cap,
                  "max_deduction_ratio": max_deduction_ratio},
    )
    return row


def _exchangeable(asset: Asset, opted_in: dict[int, bool], field: str) -> None:
    merchant = asset.issuer
    if asset.family != Asset.Family.BRAND or merchant is None:
        raise ExchangeInvalid(_("Only merchants' points can be exchanged."),
                              details={field: asset.code})
    if merchant.status not in TRADING_STATUSES or not opted_in.get(merchant.pk, False):
        raise ExchangeNotOptedIn(
            _("%(asset)s points are not part of the exchange.") % {"asset": asset.code},
            details={field: asset.code},
        )


def exchange_quote(*, source_asset: Asset, target_asset: Asset, amount: int) -> ExchangeQuote:
    """Price an exchange of ``amount`` minor units of A for B (see the module docstring).
    Refuses a merchant that has not opted in, the same merchant twice, and an amount worth
    less than one minor unit of B."""
    if source_asset.issuer_id is not None and source_asset.issuer_id == target_asset.issuer_id:
        raise ExchangeInvalid(details={"to": target_asset.code})
    opted_in = dict(SpendingSettings.objects.filter(
        merchant_id__in=[source_asset.issuer_id, target_asset.issuer_id]
    ).values_list("merchant_id", "exchange_opted_in"))
    _exchangeable(source_asset, opted_in, "from")
    _exchangeable(target_asset, opted_in, "to")
    if type(amount) is not int or amount <= 0:
        raise ExchangeTooSmall(details={"amount": "must be positive"})
    value_in = Fraction(amount) / _minor_per_cny(source_asset)
    amount_out = math.floor(value_in * _minor_per_cny(target_asset))
    if amount_out <= 0:
        raise ExchangeTooSmall(details={"amount": str(source_asset.to_major(amount))})
    value_out = Fraction(amount_out) / _minor_per_cny(target_asset)
    price = parameter_get("reference_price")
    shared = alliance_asset("SHARED")
    settlement = math.ceil(value_out / Fraction(price) * shared.minor_per_unit)
    return ExchangeQuote(source_asset=source_asset, target_asset=target_asset,
                         amount_in=amount, amount_out=amount_out, value_in=value_in,
                         value_out=value_out, settlement=settlement, reference_price=price)


def exchange_used_today(merchant: Merchant, day) -> Decimal:
    """CNY exchanged in or out of the merchant's points on ``day``."""
    total = (Exchange.objects.filter(Q(source_merchant=merchant) | Q(target_merchant=merchant),
                                     day=day).aggregate(total=Sum("value_in"))["total"])
    return total or Decimal("0")


def _check_caps(quote: ExchangeQuote, day) -> None:
    merchants = sorted({quote.source_asset.issuer_id, quote.target_asset.issuer_id})
    # Locked in primary-key order: prevents deadlocks between opposite exchanges.
    rows = list(SpendingSettings.objects.filter(merchant_id__in=merchants).order_by("pk")
                .select_for_update().select_related("merchant"))
    if len(rows) != 2 or not all(row.exchange_opted_in for row in rows):
        raise ExchangeNotOptedIn()
    value = quote.value_in_cny
    for row in rows:
        used = exchange_used_today(row.merchant, day)
        if used + value > row.exchange_daily_cap:
            left = max(Decimal("0"), row.exchange_daily_cap - used).quantize(
                Decimal("0.01"), rounding=ROUND_DOWN)
            raise ExchangeCapReached(
                _("%(merchant)s can exchange only CNY %(left)s more today.")
                % {"merchant": row.merchant, "left": left},
                details={"merchant": row.merchant.slug, "cap": str(row.exchange_daily_cap),
                         "used": str(used.quantize(Decimal("0.01"), rounding=ROUND_UP)),
                         "left": str(left)},
            )


@transaction.atomic(durable=True)
def _execute(*, shopper, quote: ExchangeQuote, key: str) -> Exchange:
    now = timezone.now()
    day = timezone.localdate(now)
    _check_caps(quote, day)
    a, b = quote.source_asset, quote.target_asset
    shared = alliance_asset("SHARED")
    wallet_a = account_get_or_create(asset=a, kind=Account.Kind.WALLET, user=shopper)
    wallet_b = account_get_or_create(asset=b, kind=Account.Kind.WALLET, user=shopper)
    deposit_a = account_get_or_create(asset=shared, kind=Account.Kind.DEPOSIT,
                                      merchant=quote.source_merchant)
    deposit_b = account_get_or_create(asset=shared, kind=Account.Kind.DEPOSIT,
                                      merchant=quote.target_merchant)
    minimum = shared.to_minor(parameter_get("min_deposit_shared"))
    legs = [
        Leg(wallet_a, -quote.amount_in), Leg(issuance_account(a), quote.amount_in),
        Leg(issuance_account(b), -quote.amount_out), Leg(wallet_b, quote.amount_out),
        # A's deposit keeps the alliance's minimum: a member under it cannot settle.
        Leg(deposit_a, -quote.settlement, floor=minimum), Leg(deposit_b, quote.settlement),
    ]
    try:
        posted = transaction_post(
            kind="exchange", legs=legs, client=shopper_client(shopper),
            idempotency_key=ledger_key("exchange", key),
            metadata={"from": a.code, "to": b.code, "settlement": quote.settlement,
                      "reference_price": str(quote.reference_price)},
        )
    except InsufficientBalance as exc:
        if exc.details.get("account") == wallet_a.public_id:
            wallet_a.refresh_from_db(fields=["balance"])
            raise InsufficientBalance(
                _("You have %(balance)s %(asset)s points.")
                % {"balance": a.to_major(wallet_a.balance), "asset": a.code},
                details={**exc.details, "available": str(a.to_major(wallet_a.balance))},
            ) from None
        raise ExchangeDepositShort(details={"merchant": quote.source_merchant.slug}) from None
    if posted.replayed:
        raise _Replayed
    return Exchange.objects.create(
        shopper=shopper, source_merchant=quote.source_merchant,
        target_merchant=quote.target_merchant, source_asset=a, target_asset=b,
        amount_in=quote.amount_in, amount_out=quote.amount_out,
        value_in=quote.value_in_cny, value_out=quote.value_out_cny,
        settlement=quote.settlement, reference_price=quote.reference_price, day=day,
        transaction_id=posted.transaction_id, idempotency_key=key,
    )


def exchange_execute(
    *, shopper, source_asset: Asset, target_asset: Asset, amount: int, idempotency_key: str,
    expected_amount_out: int | None = None,
) -> Exchange:
    """Carry out an exchange as quoted. ``expected_amount_out`` is what the shopper saw and
    confirmed: if the rate moved since, ``quote_changed`` and nothing happens. The same
    idempotency key returns the first exchange."""
    from merchants.services import deposit_level_check

    key = key_check(idempotency_key)
    existing = Exchange.objects.filter(shopper=shopper, idempotency_key=key).first()
    if existing is None:
        quote = exchange_quote(source_asset=source_asset, target_asset=target_asset,
                               amount=amount)
        if expected_amount_out is not None and expected_amount_out != quote.amount_out:
            raise QuoteChanged(details={"quoted": str(target_asset.to_major(quote.amount_out))})
        try:
            exchange = _execute(shopper=shopper, quote=quote, key=key)
        except (_Replayed, IntegrityError):
            existing = Exchange.objects.filter(shopper=shopper, idempotency_key=key).first()
            if existing is None:
                raise
        else:
            # The deposit fell: alert its owner if it crossed a level (after commit).
            deposit_level_check(merchant=quote.source_merchant)
            return exchange
    # Idempotent: this exchange was carried out before.
    if (existing.source_asset_id, existing.target_asset_id, existing.amount_in) != (
            source_asset.pk, target_asset.pk, amount):
        raise IdempotencyConflict(details={"exchange": existing.pk})
    existing.replayed = True
    return existing
