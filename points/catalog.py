"""The redemption catalog (兑换商品, SPEC §4.5): merchants list goods for points, shoppers
redeem them for vouchers, store staff validate each voucher once.

Redeeming takes one unit of stock and the price in ONE database transaction: the stock falls
by a conditional ``UPDATE … SET stock = stock - 1 WHERE stock > 0`` (PostgreSQL re-checks the
condition on the row a concurrent redemption just changed, so stock never goes below zero and
never sells twice), then the ledger posts the payment; a refusal of either rolls back both.
Brand points paid are retired to the merchant's issuance; SHARED paid go to the merchant's
SHARED wallet. Cancelling an unused voucher of a refundable item pays back and restocks.
"""

import hashlib
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.models import MEMBER_CODE_ALPHABET, User
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
from merchants.models import Merchant, Store
from merchants.webhooks import webhook_voucher_redeemed

from .models import CatalogItem, Voucher
from .spending import (
    InvalidAmount,
    ItemNotFound,
    SpendingConflict,
    VoucherNotFound,
    brand_asset,
    key_check,
    ledger_key,
    shopper_client,
)

VOUCHER_CODE_LENGTH = 12
IMAGE_MAX_BYTES = 2 * 1024 * 1024
# Crockford's reading of a typed code: the letters people confuse with digits.
_CODE_TRANSLATION = str.maketrans({"I": "1", "L": "1", "O": "0"})


class OutOfStock(SpendingConflict):
    code = "out_of_stock"
    default_message = _("This item is out of stock.")


class ItemUnavailable(SpendingConflict):
    code = "item_unavailable"
    default_message = _("This item cannot be redeemed now.")


class RedemptionLimitReached(SpendingConflict):
    code = "redemption_limit_reached"
    default_message = _("You have redeemed this item as many times as allowed.")


class VoucherAlreadyUsed(SpendingConflict):
    code = "voucher_already_used"
    default_message = _("This voucher was already used.")


class VoucherExpired(SpendingConflict):
    code = "voucher_expired"
    default_message = _("This voucher has expired.")


class VoucherCancelled(SpendingConflict):
    code = "voucher_cancelled"
    default_message = _("This voucher was cancelled.")


class VoucherNotRefundable(SpendingConflict):
    code = "voucher_not_refundable"
    default_message = _("This voucher cannot be cancelled for a refund.")


class _Replayed(Exception):
    """The ledger already holds this redemption: a retry raced the first request."""


# --- items -------------------------------------------------------------------------------------

# (leading bytes, content type, extensions the file name may carry). WebP is "RIFF....WEBP".
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", (".png",)),
    (b"\xff\xd8\xff", "image/jpeg", (".jpg", ".jpeg")),
    (b"GIF87a", "image/gif", (".gif",)),
    (b"GIF89a", "image/gif", (".gif",)),
)


def _sniff_image(head: bytes) -> tuple[str, tuple[str, ...]] | None:
    for signature, content_type, extensions in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return content_type, extensions
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", (".webp",)
    return None


def catalog_image_check(upload: UploadedFile) -> str:
    """The content type of an uploaded item picture, judged by its bytes (PNG, JPEG, GIF,
    WebP), or ``ValidationError``: an HTML page or SVG renamed ``.png`` is refused, and so is
    a name whose extension disagrees with the content."""
    if not upload.size:
        raise ValidationError(_("The file is empty."), code="empty")
    if upload.size > IMAGE_MAX_BYTES:
        raise ValidationError(
            _("The picture is %(size)s; the limit is %(limit)s.")
            % {"size": filesizeformat(upload.size), "limit": filesizeformat(IMAGE_MAX_BYTES)},
            code="too_large",
        )
    upload.seek(0)
    head = upload.read(32)
    upload.seek(0)
    found = _sniff_image(head)
    if found is None:
        raise ValidationError(_("The file is not a PNG, JPEG, GIF or WebP picture."),
                              code="unknown_type")
    content_type, extensions = found
    name = (upload.name or "").lower()
    extension = name[name.rfind("."):] if "." in name else ""
    if extension not in extensions:
        raise ValidationError(
            _("The file's content is %(type)s but its name ends in “%(extension)s”.")
            % {"type": content_type, "extension": extension or "—"},
            code="disguised",
        )
    return content_type


def catalog_price_assets(merchant: Merchant) -> list[Asset]:
    """What a merchant may price its goods in: its brand points and SHARED."""
    return [brand_asset(merchant), alliance_asset("SHARED")]


@transaction.atomic
def catalog_item_save(
    *, merchant: Merchant, fields: dict, item: CatalogItem | None = None,
    image: UploadedFile | None = None,
) -> CatalogItem:
    """Create (``item`` None) or change one of the merchant's items. ``fields`` are model
    fields with ``price`` in minor units of ``price_asset``; ``image`` is replaced when given
    (checked by content)."""
    if item is not None and item.merchant_id != merchant.pk:
        raise ItemNotFound(details={"item": item.pk})
    allowed = {asset.pk for asset in catalog_price_assets(merchant)}
    if fields["price_asset"].pk not in allowed:
        raise InvalidAmount(_("Price goods in your own points or in SHARED."),
                            details={"price_asset": "not allowed"})
    price = fields["price"]
    if type(price) is not int or price <= 0:
        raise InvalidAmount(details={"price": "must be positive"})
    item = item or CatalogItem(merchant=merchant)
    for name, value in fields.items():
        setattr(item, name, value)
    if image is not None:
        content_type = catalog_image_check(image)
        image.seek(0)
        digest = hashlib.sha256()
        for chunk in image.chunks():
            digest.update(chunk)
        image.seek(0)
        item.image_sha256 = digest.hexdigest()
        item.image_type = content_type
        item.image.save(image.name, image, save=False)
    item.full_clean(exclude=["image"])
    item.save()
    return item


# --- redeeming ---------------------------------------------------------------------------------


def voucher_code_new() -> str:
    return "".join(secrets.choice(MEMBER_CODE_ALPHABET) for _ in range(VOUCHER_CODE_LENGTH))


def voucher_code_normalise(raw: str) -> str:
    """A code as staff type or scan it (any case, dashes, spaces) in its stored form; the
    empty string when it cannot be a voucher code."""
    code = "".join((raw or "").split()).replace("-", "").upper().translate(_CODE_TRANSLATION)
    if len(code) != VOUCHER_CODE_LENGTH or any(c not in MEMBER_CODE_ALPHABET for c in code):
        return ""
    return code


def _payment_legs(item: CatalogItem, shopper: User) -> tuple[list[Leg], Account]:
    asset = item.price_asset
    wallet = account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=shopper)
    if asset.family == Asset.Family.BRAND:
        receiver = issuance_account(asset)
    else:
        receiver = account_get_or_create(asset=asset, kind=Account.Kind.WALLET,
                                         merchant=item.merchant)
    return [Leg(wallet, -item.price), Leg(receiver, item.price)], wallet


def _voucher_create(**fields) -> Voucher:
    """A voucher with a fresh unique code (60 random bits; a clash is drawn again)."""
    for _attempt in range(5):
        code = voucher_code_new()
        try:
            with transaction.atomic():
                return Voucher.objects.create(code=code, **fields)
        except IntegrityError:
            if not Voucher.objects.filter(code=code).exists():
                raise
    raise IntegrityError("could not draw a free voucher code")


@transaction.atomic(durable=True)
def _redeem(*, shopper: User, item_id: int, key: str) -> Voucher:
    item = (CatalogItem.objects.select_related("merchant", "price_asset")
            .filter(pk=item_id).first())
    if item is None:
        raise ItemNotFound(details={"item": item_id})
    now = timezone.now()
    if item.merchant.status not in TRADING_STATUSES or not item.is_available(now):
        raise ItemUnavailable(details={"item": item.pk})
    if item.per_shopper_limit is not None:
        # One shopper's redemptions of a limited item queue on the shopper's row, so two
        # parallel ones cannot both see the count below the limit.
        User.objects.select_for_update().filter(pk=shopper.pk).values_list("pk").first()
        taken = (Voucher.objects.filter(item=item, shopper=shopper)
                 .exclude(state=Voucher.State.CANCELLED).count())
        if taken >= item.per_shopper_limit:
            raise RedemptionLimitReached(details={"limit": item.per_shopper_limit})
    # The stock check and the decrement are one statement (see the module docstring).
    if not CatalogItem.objects.filter(pk=item.pk, stock__gt=0).update(stock=F("stock") - 1):
        raise OutOfStock(details={"item": item.pk})
    legs, wallet = _payment_legs(item, shopper)
    try:
        posted = transaction_post(
            kind="catalog_redemption", legs=legs, client=shopper_client(shopper),
            idempotency_key=ledger_key("catalog-redeem", key),
            metadata={"item": item.pk, "merchant": item.merchant_id},
        )
    except InsufficientBalance as exc:
        wallet.refresh_from_db(fields=["balance"])
        asset = item.price_asset
        raise InsufficientBalance(
            _("You have %(balance)s %(asset)s; this costs %(price)s.")
            % {"balance": asset.to_major(wallet.balance), "asset": asset.code,
               "price": asset.to_major(item.price)},
            details={**exc.details, "available": str(asset.to_major(wallet.balance)),
                     "price": str(asset.to_major(item.price))},
        ) from None
    if posted.replayed:
        raise _Replayed
    return _voucher_create(
        item=item, merchant=item.merchant, shopper=shopper, source=Voucher.Source.CATALOG,
        price_asset=item.price_asset, price=item.price, issued_at=now,
        expires_at=now + timedelta(days=item.voucher_valid_days), idempotency_key=key,
        payment_id=posted.transaction_id,
    )


def catalog_redeem(*, shopper: User, item_id: int, idempotency_key: str) -> Voucher:
    """Redeem one unit of an item for a voucher: stock and points in one transaction.

    Refusals (nothing changes): ``item_not_found`` 404, ``item_unavailable``,
    ``out_of_stock``, ``redemption_limit_reached``, ``insufficient_balance`` (409). The same
    idempotency key returns the first voucher; with another item it is refused."""
    key = key_check(idempotency_key)
    existing = Voucher.objects.filter(shopper=shopper, idempotency_key=key).first()
    if existing is None:
        try:
            return _redeem(shopper=shopper, item_id=item_id, key=key)
        except (_Replayed, IntegrityError):
            existing = Voucher.objects.filter(shopper=shopper, idempotency_key=key).first()
            if existing is None:
                raise
    # Idempotent: this request was carried out before.
    if existing.item_id != item_id:
        raise IdempotencyConflict(details={"voucher": existing.display_code})
    existing.replayed = True
    return existing


def voucher_issue_prize(*, item: CatalogItem, shopper: User) -> Voucher:
    """A voucher won in a lottery: nothing paid, the tier's stock already taken (call inside
    the draw's transaction)."""
    now = timezone.now()
    return _voucher_create(
        item=item, merchant_id=item.merchant_id, shopper=shopper, source=Voucher.Source.LOTTERY,
        price=0, issued_at=now, expires_at=now + timedelta(days=item.voucher_valid_days),
    )


# --- using, cancelling, expiring ---------------------------------------------------------------


def _locked_voucher(code: str, **owner) -> Voucher:
    normalised = voucher_code_normalise(code)
    voucher = None
    if normalised:
        voucher = (Voucher.objects.select_for_update(of=("self",))
                   .select_related("item", "price_asset").filter(code=normalised, **owner)
                   .first())
    if voucher is None:
        raise VoucherNotFound(details={"code": (code or "")[:40]})
    return voucher


def _refuse_unless_usable(voucher: Voucher, now) -> None:
    state = voucher.effective_state(now)
    if state == Voucher.State.USED:
        raise VoucherAlreadyUsed(
            _("This voucher was already used on %(when)s.")
            % {"when": timezone.localtime(voucher.used_at).strftime("%Y-%m-%d %H:%M")},
            details={"used_at": voucher.used_at.isoformat()},
        )
    if state == Voucher.State.CANCELLED:
        raise VoucherCancelled()
    if state == Voucher.State.EXPIRED:
        raise VoucherExpired(details={"expired_at": voucher.expires_at.isoformat()})


@transaction.atomic(durable=True)
def voucher_validate(*, merchant: Merchant, code: str, by: User | None = None,
                     via: str = Voucher.Channel.DASHBOARD, store: Store | None = None) -> Voucher:
    """Store staff accept a voucher: once. Another merchant's voucher is "not found"; a
    second validation is refused with ``voucher_already_used``. The merchant's systems hear
    ``voucher.redeemed`` once it is committed."""
    if store is not None and store.merchant_id != merchant.pk:
        raise ValueError("store of another merchant")
    voucher = _locked_voucher(code, merchant=merchant)
    now = timezone.now()
    _refuse_unless_usable(voucher, now)
    voucher.state = Voucher.State.USED
    voucher.used_at = now
    voucher.used_by = by
    voucher.used_via = via
    voucher.used_store = store
    voucher.save(update_fields=["state", "used_at", "used_by", "used_via", "used_store"])
    transaction.on_commit(lambda: webhook_voucher_redeemed(voucher=voucher))
    return voucher


@transaction.atomic(durable=True)
def voucher_cancel(*, shopper: User, code: str) -> Voucher:
    """The shopper gives back an unused, unexpired voucher of a refundable item: the price
    returns to them (brand points with the expiry they would have had) and the stock to the
    item. Cancelling twice changes nothing the second time."""
    voucher = _locked_voucher(code, shopper=shopper)
    if voucher.state == Voucher.State.CANCELLED:
        return voucher  # Idempotent: already cancelled and refunded.
    now = timezone.now()
    _refuse_unless_usable(voucher, now)
    if voucher.source != Voucher.Source.CATALOG or not voucher.item.refundable \
            or voucher.payment_id is None:
        raise VoucherNotRefundable()
    payment = voucher.payment
    legs = []
    for posting in payment.postings.select_related("account__asset").order_by("leg"):
        expiry = (posting.account.asset.expiry_for(payment.occurred_at)
                  if -posting.amount > 0 and posting.account.tracks_lots else None)
        legs.append(Leg(posting.account, -posting.amount, expiry))
    try:
        posted = transaction_post(
            kind="voucher_refund", legs=legs, client=shopper_client(shopper),
            idempotency_key=f"voucher-refund:{voucher.pk}",
            metadata={"voucher": voucher.pk, "refunds": payment.pk,
                      "merchant": voucher.merchant_id},
        )
    except InsufficientBalance as exc:
        raise VoucherNotRefundable(
            _("The merchant cannot refund this voucher now; ask at the store."),
            details=exc.details,
        ) from None
    CatalogItem.objects.filter(pk=voucher.item_id).update(stock=F("stock") + 1)
    voucher.state = Voucher.State.CANCELLED
    voucher.cancelled_at = now
    voucher.refund_id = posted.transaction_id
    voucher.save(update_fields=["state", "cancelled_at", "refund"])
    return voucher


def vouchers_expire(*, now=None) -> int:
    """Mark issued vouchers past their date as expired (pages already treat them so); the
    stock they took is not returned. Safe to repeat."""
    now = now or timezone.now()
    return Voucher.objects.filter(state=Voucher.State.ISSUED, expires_at__lte=now).update(
        state=Voucher.State.EXPIRED
    )
