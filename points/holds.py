"""Cash deduction (积分抵扣, SPEC §4.5): a till pays part of an order with the shopper's brand
points, in two phases. ``deduction_hold`` moves the points into a ledger hold; the till then
captures all or part of it (the captured points are retired to the merchant's issuance, the
rest goes back) or voids it. A hold nobody settles expires by itself
(``ledger.services.holds_expire``, run every minute) and gives everything back.

The cap: points may pay at most ``ratio × order total`` CNY, where ``ratio`` is the merchant's
own cash-deduction ratio under the alliance's ``max_deduction_ratio`` (default 50%). In points:
``floor(ratio × order_total × units_per_cny)`` major units, so an order of CNY 100 at 100
points per CNY and 50% takes at most 5,000 points.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict, DomainError
from alliance.parameters import parameter_get
from ledger.errors import IdempotencyConflict, InsufficientBalance
from ledger.models import Account, Asset, Hold
from ledger.services import (
    DEFAULT_HOLD_TTL,
    account_get_or_create,
    hold_capture,
    hold_place,
    hold_void,
    issuance_account,
)
from merchants.models import Merchant
from merchants.services import merchant_client

from .models import CashDeduction, SpendingSettings
from .spending import HoldNotFound, InvalidAmount, brand_asset, key_check, ledger_key


class DeductionCapExceeded(DomainError):
    code = "deduction_cap_exceeded"
    status = 422
    default_message = _("Points may pay only part of this order.")


class HoldExpired(Conflict):
    code = "hold_expired"
    default_message = _("The hold has expired; its points went back to the shopper.")


@dataclass(frozen=True)
class DeductionQuote:
    """What a till may deduct for one order, in the merchant's points (minor units)."""

    asset: Asset
    order_total: Decimal
    ratio: Decimal
    balance: int
    cap: int

    @property
    def max_points(self) -> int:
        return max(0, min(self.balance, self.cap))

    @property
    def cny_covered(self) -> Decimal:
        return cny_covered(self.asset, self.max_points)


def deduction_ratio(merchant: Merchant) -> Decimal:
    """The merchant's own ratio, never above the alliance's ``max_deduction_ratio``."""
    ceiling = parameter_get("max_deduction_ratio")
    own = (SpendingSettings.objects.filter(merchant=merchant)
           .values_list("max_deduction_ratio", flat=True).first())
    return ceiling if own is None else min(own, ceiling)


def deduction_cap(*, asset: Asset, order_total: Decimal, ratio: Decimal) -> int:
    """Most points (minor units) that may pay ``order_total``: rounded down, so points never
    cover more than the ratio allows."""
    with localcontext() as context:
        context.prec = 60
        exact = ratio * order_total * asset.units_per_cny * asset.minor_per_unit
        return int(exact.to_integral_value(rounding=ROUND_FLOOR))


def cny_covered(asset: Asset, minor: int) -> Decimal:
    """The CNY that ``minor`` points pay, to the fen, rounded down (the till never takes off
    more than the points are worth)."""
    with localcontext() as context:
        context.prec = 60
        value = Decimal(minor) / (asset.units_per_cny * asset.minor_per_unit)
        return value.quantize(Decimal("0.01"), rounding=ROUND_FLOOR)


def _wallet_balance(asset: Asset, shopper) -> int:
    return (Account.objects.filter(asset=asset, kind=Account.Kind.WALLET,
                                   holder_key=f"u:{shopper.pk}")
            .values_list("balance", flat=True).first()) or 0


def deduction_quote(*, merchant: Merchant, shopper, order_total: Decimal) -> DeductionQuote:
    """The most points the shopper can put toward this order: the cap or the balance."""
    asset = brand_asset(merchant)
    ratio = deduction_ratio(merchant)
    return DeductionQuote(asset=asset, order_total=order_total, ratio=ratio,
                          balance=_wallet_balance(asset, shopper),
                          cap=deduction_cap(asset=asset, order_total=order_total, ratio=ratio))


@transaction.atomic(durable=True)
def deduction_hold(
    *, merchant: Merchant, shopper, order_total: Decimal, points: int, idempotency_key: str,
    order_ref: str = "", ttl: timedelta = DEFAULT_HOLD_TTL,
) -> CashDeduction:
    """Hold ``points`` (minor units) of the shopper's brand points against an order.

    Guards the cap (``deduction_cap_exceeded``) and the balance (``insufficient_balance``);
    the same idempotency key returns the first hold, and with another request is refused."""
    asset = brand_asset(merchant)
    client = merchant_client(merchant)
    key = ledger_key("deduction-hold", key_check(idempotency_key))
    existing = (CashDeduction.objects.select_related("hold", "hold__placed_by")
                .filter(merchant=merchant, hold__placed_by__client=client,
                        hold__placed_by__idempotency_key=key).first())
    if existing is not None:
        # Idempotent: the till retried a hold it already placed.
        if existing.shopper_id != shopper.pk or existing.hold.amount != points \
                or existing.order_total != order_total:
            raise IdempotencyConflict(details={"hold": existing.hold_id})
        existing.replayed = True
        return existing
    if type(points) is not int or points <= 0:
        raise InvalidAmount(details={"points": "must be positive"})
    ratio = deduction_ratio(merchant)
    cap = deduction_cap(asset=asset, order_total=order_total, ratio=ratio)
    if points > cap:
        raise DeductionCapExceeded(
            _("Points may pay at most %(ratio)s%% of this order: %(cap)s points.")
            % {"ratio": (ratio * 100).normalize(), "cap": asset.to_major(cap)},
            details={"cap": str(asset.to_major(cap)), "requested": str(asset.to_major(points)),
                     "ratio": str(ratio)},
        )
    wallet = account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=shopper)
    try:
        hold = hold_place(
            wallet=wallet, amount=points, client=client, idempotency_key=key, ttl=ttl,
            metadata={"merchant": merchant.pk, "order_total": str(order_total),
                      "order_ref": order_ref[:64]},
        )
    except InsufficientBalance as exc:
        balance = _wallet_balance(asset, shopper)
        raise InsufficientBalance(
            _("The shopper has %(balance)s points; the hold asks for %(points)s.")
            % {"balance": asset.to_major(balance), "points": asset.to_major(points)},
            details={**exc.details, "available": str(asset.to_major(balance))},
        ) from None
    deduction, _created = CashDeduction.objects.get_or_create(
        hold=hold, defaults={"merchant": merchant, "shopper": shopper,
                             "order_total": order_total, "order_ref": order_ref[:64]},
    )
    return deduction


def _own_deduction(merchant: Merchant, hold_id: int) -> CashDeduction:
    """The merchant's own hold, locked; another merchant's is "not found", not "forbidden",
    so a till learns nothing about other merchants' holds."""
    deduction = (CashDeduction.objects.select_related("hold")
                 .filter(merchant=merchant, hold_id=hold_id).first())
    if deduction is None:
        raise HoldNotFound(details={"hold": hold_id})
    deduction.hold = (Hold.objects.select_for_update(of=("self",))
                      .select_related("wallet__asset").get(pk=hold_id))
    return deduction


def _refuse_if_expired(hold: Hold) -> None:
    if hold.state == Hold.State.PENDING and hold.expires_at <= timezone.now():
        raise HoldExpired(details={"hold": hold.pk, "expired_at": hold.expires_at.isoformat()})


@transaction.atomic(durable=True)
def deduction_capture(
    *, merchant: Merchant, hold_id: int, idempotency_key: str, points: int | None = None,
) -> CashDeduction:
    """Capture all (``points`` None) or part of the merchant's pending hold. The captured
    points are retired to the merchant's issuance; the rest returns to the shopper in the same
    ledger transaction."""
    deduction = _own_deduction(merchant, hold_id)
    hold = deduction.hold
    _refuse_if_expired(hold)
    if points is not None and (type(points) is not int or not 0 < points <= hold.amount):
        raise InvalidAmount(
            _("Capture between 1 and the %(held)s points held.")
            % {"held": hold.wallet.asset.to_major(hold.amount)},
            details={"points": f"between 1 and {hold.amount}"},
        )
    deduction.hold = hold_capture(
        hold_id=hold.pk, destination=issuance_account(hold.wallet.asset),
        client=merchant_client(merchant),
        idempotency_key=ledger_key("deduction-capture", key_check(idempotency_key)),
        amount=points, metadata={"merchant": merchant.pk},
    )
    return deduction


@transaction.atomic(durable=True)
def deduction_void(*, merchant: Merchant, hold_id: int, idempotency_key: str) -> CashDeduction:
    """Give the merchant's pending hold back to the shopper whole."""
    deduction = _own_deduction(merchant, hold_id)
    deduction.hold = hold_void(hold_id=hold_id, client=merchant_client(merchant),
                               idempotency_key=ledger_key("deduction-void",
                                                          key_check(idempotency_key)))
    return deduction
