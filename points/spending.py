"""What the spending services share: reading amounts as people type them, whose idempotency
keys a request carries, the errors with their stable codes, and a merchant's brand asset.

Amounts arrive as strings, integers or JSON numbers in *major* units ("50.5" SHARED, 5000
brand points); services work in integer minor units. Every refusal here is a 400 with a code
a till can act on, raised before anything is written.
"""

import hashlib
from decimal import Decimal, InvalidOperation, localcontext

from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict, DomainError, NotFound
from alliance.idempotency import KEY_PATTERN, IdempotencyKeyRequired
from ledger.models import Asset
from ledger.services import INT64_MAX

# Orders above this are a typing error, not a purchase (CNY).
ORDER_TOTAL_MAX = Decimal("100000000.00")


class InvalidAmount(DomainError):
    code = "invalid_amount"
    default_message = _("Enter a positive amount.")


class ItemNotFound(NotFound):
    code = "item_not_found"
    default_message = _("There is no such item in the catalog.")


class VoucherNotFound(NotFound):
    code = "voucher_not_found"
    default_message = _("There is no such voucher.")


class CampaignNotFound(NotFound):
    code = "campaign_not_found"
    default_message = _("There is no such lottery.")


class HoldNotFound(NotFound):
    code = "hold_not_found"
    default_message = _("There is no such hold.")


class MerchantNotFound(NotFound):
    code = "merchant_not_found"
    default_message = _("There is no such merchant.")


class SpendingConflict(Conflict):
    """A request that the current state refuses (out of stock, already used, closed)."""


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidAmount(_("Enter a number."), details={field: "not a number"})
    if isinstance(value, float):
        # JSON numbers arrive as floats; their shortest repr is what the client sent.
        value = repr(value)
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidAmount(_("Enter a number."), details={field: "not a number"}) from None
    if not number.is_finite():
        raise InvalidAmount(_("Enter a number."), details={field: "not a number"})
    return number


def _bounded(number: Decimal, field: str) -> Decimal:
    """Refuse numbers whose size alone makes them nonsense before any arithmetic, so that
    no exponent can overflow the decimal context (a 500) or round a fraction away."""
    if len(number.as_tuple().digits) > 40 or number.adjusted() > 20:
        raise InvalidAmount(_("The amount is too large."), details={field: "too large"})
    if number.adjusted() < -20:
        raise InvalidAmount(_("The amount has too many decimal places."),
                            details={field: "too many decimal places"})
    return number


def amount_parse(value: object, asset: Asset, *, field: str = "amount") -> int:
    """``value`` in major units of ``asset`` as positive integer minor units, or
    ``InvalidAmount`` naming the field: zero, negative, more decimals than the asset has, or
    larger than the ledger can hold."""
    number = _decimal(value, field)
    if number <= 0:
        raise InvalidAmount(_("The amount must be more than zero."),
                            details={field: "must be positive"})
    number = _bounded(number, field)
    with localcontext() as context:
        context.prec = 100
        minor = number.scaleb(asset.scale)
        integral = minor == minor.to_integral_value()
    if not integral:
        raise InvalidAmount(
            _("%(asset)s has at most %(places)d decimal places.")
            % {"asset": asset.code, "places": asset.scale},
            details={field: f"at most {asset.scale} decimal places"},
        )
    if minor > INT64_MAX:
        raise InvalidAmount(_("The amount is too large."), details={field: "too large"})
    return int(minor)


def cny_parse(value: object, *, field: str = "order_total") -> Decimal:
    """A CNY amount as typed: positive, at most two decimal places, not absurdly large."""
    number = _decimal(value, field)
    if number <= 0:
        raise InvalidAmount(_("The amount must be more than zero."),
                            details={field: "must be positive"})
    if number > ORDER_TOTAL_MAX:
        raise InvalidAmount(_("The amount is too large."), details={field: "too large"})
    number = _bounded(number, field)
    with localcontext() as context:
        context.prec = 100
        cents = number.quantize(Decimal("0.01"))
    if number != cents:
        raise InvalidAmount(_("CNY amounts have at most two decimal places."),
                            details={field: "at most 2 decimal places"})
    return cents


def shopper_client(user) -> str:
    """The ledger client of a shopper's own requests: its idempotency keys are its own."""
    return f"user:{user.pk}"


def key_check(idempotency_key: str) -> str:
    """An idempotency key as the API accepts it (``alliance.idempotency``: 1 to 128
    printable characters), or ``idempotency_key_required``."""
    key = idempotency_key or ""
    if not KEY_PATTERN.match(key):
        raise IdempotencyKeyRequired()
    return key


def ledger_key(prefix: str, key: str) -> str:
    """The ledger's idempotency key for one kind of request: ``prefix:key``, so one client
    key used for a hold and a purchase does not collide; a key too long for the journal is
    replaced by its SHA-256."""
    combined = f"{prefix}:{key}"
    if len(combined) <= 128:
        return combined
    return f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def brand_asset(merchant) -> Asset:
    """The merchant's brand points; ``NotFound`` for a merchant that issues none."""
    asset = merchant.assets.filter(family=Asset.Family.BRAND).order_by("pk").first()
    if asset is None:
        raise NotFound(_("This merchant has no point type."), code="asset_not_found")
    return asset
