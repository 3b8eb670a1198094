"""Earning writes: purchases (共享购, SPEC §4.1), refunds, earning rules and tiers, the sign-up
bonus. Every value movement goes through ``ledger.services``."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from kombu.exceptions import OperationalError as KombuOperationalError

from alliance.errors import Conflict, DomainError, NotFound
from alliance.parameters import parameter_get, parameters_current
from ledger import services as ledger
from ledger.errors import IdempotencyConflict, InsufficientBalance, LedgerInvariantError
from ledger.models import Account, Asset
from merchants.models import Merchant, Store
from merchants.webhooks import webhook_purchase_recorded

from .earning import earning_compute, earning_for
from .models import EarningRule, MemberTier, Purchase, Refund

logger = logging.getLogger(__name__)

MAX_AMOUNT = Decimal("1000000000")
OFFLINE_WINDOW = timedelta(hours=72)
# A till's clock may run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)


class InvalidAmount(DomainError):
    code = "invalid_amount"
    default_message = _("The amount must be a positive number of CNY with at most two decimals.")


class InvalidOccurredAt(DomainError):
    code = "invalid_occurred_at"
    default_message = _("occurred_at must be within the last 72 hours and not in the future.")


class DepositInsufficient(Conflict):
    code = "deposit_insufficient"
    default_message = _("The merchant's deposit cannot cover this purchase's rebate without "
                        "falling below the alliance's minimum.")


class PointsAlreadySpent(Conflict):
    code = "points_already_spent"
    default_message = _("The shopper no longer has the points this refund takes back. The "
                        "merchant may absorb the shortfall.")


class RefundTooLarge(DomainError):
    code = "refund_exceeds_purchase"
    default_message = _("The refund is larger than what is left of the purchase.")


class MerchantNotBrandIssuer(Conflict):
    code = "merchant_has_no_points"
    default_message = _("This merchant has no point type yet.")


def merchant_client(merchant: Merchant) -> str:
    return f"merchant:{merchant.pk}"


def cny_amount(value) -> Decimal:
    """A CNY amount as typed or sent: positive, at most two decimals, at most 1e9."""
    if isinstance(value, float | bool):
        raise InvalidAmount()
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidAmount() from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        raise InvalidAmount()
    if -amount.as_tuple().exponent > 2:
        raise InvalidAmount()
    return amount


def brand_asset(merchant: Merchant) -> Asset:
    asset = Asset.objects.filter(issuer=merchant, family=Asset.Family.BRAND).first()
    if asset is None:
        raise MerchantNotBrandIssuer()
    return asset


@dataclass(frozen=True)
class PurchaseAssets:
    """What a purchase moves: the merchant's brand points, SV and SHARED."""

    brand: Asset
    sv: Asset
    shared: Asset


def purchase_assets(merchant: Merchant) -> PurchaseAssets:
    """The merchant's brand asset (as ``brand_asset``), SV and SHARED, in one query."""
    brand = None
    alliance: dict[str, Asset] = {}
    for asset in Asset.objects.filter(Q(issuer=merchant, family=Asset.Family.BRAND)
                                      | Q(code__in=("SV", "SHARED"), issuer__isnull=True)):
        if asset.family == Asset.Family.BRAND:
            brand = brand or asset  # ordered by pk: the first, as brand_asset answers
        else:
            alliance[asset.code] = asset
    if brand is None:
        raise MerchantNotBrandIssuer()
    brand.issuer = merchant  # its issuance account names the merchant: no second look-up
    return PurchaseAssets(brand, alliance.get("SV") or ledger.alliance_asset("SV"),
                          alliance.get("SHARED") or ledger.alliance_asset("SHARED"))


@dataclass(frozen=True)
class Split:
    """What a purchase produces, in minor units (SPEC §4.1)."""

    points: int
    rebate: Decimal  # CNY, rounded down to the fen
    sv_shopper: int
    sv_merchant: int
    burn: int


def split_for(*, amount: Decimal, rebate_rate: Decimal, points: int, price: Decimal) -> Split:
    """R = amount × rebate rate (down to the fen); the shopper gains 10R SV, the merchant 2R;
    R / price SHARED leave the deposit, rounded up: rounding favours the alliance."""
    rebate = (amount * rebate_rate).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    rebate_fen = int(rebate * 100)
    burn = int((Decimal(rebate_fen) / price).to_integral_value(rounding=ROUND_CEILING))
    return Split(points, rebate, 10 * rebate_fen, 2 * rebate_fen, burn)


def _accounts(merchant: Merchant, shopper, assets: PurchaseAssets) -> dict[str, Account]:
    """The seven accounts a purchase (or its refund) touches, read in one query; the few a
    first purchase lacks (the shopper's wallets) are opened by ``ledger.accounts_get_or_create``."""
    brand, sv, shared = assets.brand, assets.sv, assets.shared
    wanted = {
        "brand_issuance": (brand, Account.Kind.ISSUANCE, {"merchant": brand.issuer}),
        "brand_wallet": (brand, Account.Kind.WALLET, {"user": shopper}),
        "sv_issuance": (sv, Account.Kind.ISSUANCE, {"merchant": sv.issuer}),
        "sv_shopper": (sv, Account.Kind.WALLET, {"user": shopper}),
        "sv_merchant": (sv, Account.Kind.WALLET, {"merchant": merchant}),
        "deposit": (shared, Account.Kind.DEPOSIT, {"merchant": merchant}),
        "burn": (shared, Account.Kind.BURN, {"merchant": shared.issuer}),
    }
    keys = {name: (asset.pk, kind, ledger.holder_key(**holder))
            for name, (asset, kind, holder) in wanted.items()}
    found = {
        (account.asset_id, account.kind, account.holder_key): account
        for account in Account.objects.filter(
            asset_id__in={key[0] for key in keys.values()},
            kind__in={key[1] for key in keys.values()},
            holder_key__in={key[2] for key in keys.values()})
    }
    accounts = {}
    for name, (asset, _kind, _holder) in wanted.items():
        account = found.get(keys[name])
        if account is not None:
            account.asset = asset
            accounts[name] = account
    missing = [name for name in wanted if name not in accounts]
    if missing:
        opened = ledger.accounts_get_or_create([
            (wanted[name][0], wanted[name][1], wanted[name][2].get("user"),
             wanted[name][2].get("merchant")) for name in missing])
        accounts.update(zip(missing, opened, strict=True))
    return {name: accounts[name] for name in wanted}


def _existing_purchase(merchant: Merchant, key: str, fingerprint: str) -> Purchase | None:
    purchase = (Purchase.objects.select_related("transaction")
                .filter(merchant=merchant, idempotency_key=key).first())
    if purchase is None:
        return None
    if purchase.transaction.fingerprint != fingerprint:
        raise IdempotencyConflict(details={"transaction": purchase.transaction_id})
    return purchase


def purchase_engine_sql() -> bool:
    """Whether purchases take ``points.purchase_engine`` (see ``_fast_path``)."""
    return _fast_path()


def _fast_path() -> bool:
    """PostgreSQL: ``points.purchase_engine`` (one read, one write). Elsewhere (the SQLite
    demo), or with ``PURCHASE_ENGINE = "orm"``: the ORM path, with the same results."""
    choice = settings.PURCHASE_ENGINE
    return choice == "sql" or (choice == "auto" and settings.USES_POSTGRES)


def _checked_time(occurred_at: datetime | None) -> datetime:
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + CLOCK_SKEW or occurred_at < now - OFFLINE_WINDOW:
        raise InvalidOccurredAt()
    return occurred_at


def purchase_record(
    *,
    merchant: Merchant,
    shopper,
    amount: Decimal,
    order_ref: str,
    idempotency_key: str,
    fingerprint: str,
    store: Store | None = None,
    lines: list[dict] | None = None,
    occurred_at: datetime | None = None,
    assets: PurchaseAssets | None = None,
) -> tuple[Purchase, bool]:
    """Record a shared purchase in one ledger transaction; returns (purchase, replayed).

    Guards: the deposit keeps the alliance's minimum after the burn (``DepositInsufficient``,
    nothing written); the same idempotency key and request return the original purchase, a
    changed request is an ``IdempotencyConflict``; an offline till may send ``occurred_at``
    up to 72 hours back. ``assets`` saves the look-up when the caller has them already
    (``purchase_assets``).
    """
    amount = cny_amount(amount)
    occurred_at = _checked_time(occurred_at)
    if store is not None and store.merchant_id != merchant.pk:
        raise NotFound(_("No such store at this merchant."), details={"store": store.pk},
                       code="store_not_found")
    if _fast_path():
        purchase, replayed, _assets = _purchase_record_sql(
            merchant=merchant, shopper_id=shopper.pk, member=None, amount=amount,
            order_ref=order_ref, idempotency_key=idempotency_key, fingerprint=fingerprint,
            store_id=store.pk if store else None, lines=lines, occurred_at=occurred_at)
        return purchase, replayed
    return _purchase_record_orm(
        merchant=merchant, shopper=shopper, amount=amount, order_ref=order_ref,
        idempotency_key=idempotency_key, fingerprint=fingerprint, store=store, lines=lines,
        occurred_at=occurred_at, assets=assets)


def purchase_record_for_member(
    *,
    merchant: Merchant,
    member: str,
    amount: Decimal,
    order_ref: str,
    idempotency_key: str,
    fingerprint: str,
    store_id: int | None = None,
    lines: list[dict] | None = None,
    occurred_at: datetime | None = None,
    read_ahead: tuple | None = None,
) -> tuple[Purchase, bool, PurchaseAssets]:
    """``purchase_record`` for a till, which names the shopper by member code or member QR
    token and the store by id; returns (purchase, replayed, the assets it moved). Refusals
    in this order: the member (``MemberNotFound``, ``MemberTokenExpired``), the store
    (``store_not_found``), the merchant's points, the amount and time, the key.
    ``read_ahead``: (what was asked, the context) of ``purchase_engine.purchase_context_keyed``,
    used when it was read for this very purchase."""
    from .members import member_code_parse, member_resolve

    if _fast_path():
        return _purchase_record_sql(
            merchant=merchant, shopper_id=None, member=(member_code_parse(member), member),
            amount=amount, order_ref=order_ref, idempotency_key=idempotency_key,
            fingerprint=fingerprint, store_id=store_id, lines=lines, occurred_at=occurred_at,
            read_ahead=read_ahead)
    shopper = member_resolve(member)
    store = None
    if store_id is not None:
        store = Store.objects.filter(pk=store_id, merchant=merchant).first()
        if store is None:
            raise NotFound(details={"store": store_id}, code="store_not_found")
    assets = purchase_assets(merchant)
    purchase, replayed = purchase_record(
        merchant=merchant, shopper=shopper, amount=amount, order_ref=order_ref,
        idempotency_key=idempotency_key, fingerprint=fingerprint, store=store, lines=lines,
        occurred_at=occurred_at, assets=assets)
    return purchase, replayed, assets


def _legs(accounts: dict, split: Split, minimum: int, leg=ledger.Leg) -> list:
    """The purchase's legs (SPEC §4.1), made by ``leg``: ``ledger.Leg`` for
    ``ledger.transaction_post``, ``purchase_engine.PlainLeg`` for ``points_purchase_post()``."""
    legs = []
    if split.points:
        legs += [leg(accounts["brand_issuance"], -split.points),
                 leg(accounts["brand_wallet"], split.points)]
    if split.sv_shopper:
        sv_total = split.sv_shopper + split.sv_merchant
        legs += [leg(accounts["sv_issuance"], -sv_total),
                 leg(accounts["sv_shopper"], split.sv_shopper),
                 leg(accounts["sv_merchant"], split.sv_merchant)]
    if split.burn:
        legs += [leg(accounts["deposit"], -split.burn, floor=minimum),
                 leg(accounts["burn"], split.burn)]
    return legs


def _metadata(merchant: Merchant, *, order_ref: str, amount: Decimal, split: Split,
              price: Decimal, earning, store_id: int | None) -> dict:
    return {
        "merchant": merchant.slug, "order_ref": order_ref, "amount": str(amount),
        "rebate": str(split.rebate), "price": str(price),
        "rule": earning.rule.content_hash if earning.rule else None,
        "multiplier": str(earning.multiplier), "store": store_id,
    }


def _purchase_record_sql(
    *, merchant: Merchant, shopper_id: int | None, member: tuple[str, str] | None,
    amount, order_ref: str, idempotency_key: str, fingerprint: str, store_id: int | None,
    lines: list[dict] | None, occurred_at: datetime | None, _again: bool = False,
    read_ahead: tuple | None = None,
) -> tuple[Purchase, bool, PurchaseAssets]:
    """``purchase_record`` in one read and one write (``points.purchase_engine``); the
    shopper by id, or by ``member`` (code, as sent) among active users. The read is skipped
    when ``read_ahead`` holds it, read for exactly this purchase at the API's key check."""
    from .members import MemberNotFound
    from .purchase_engine import (
        ContextAsked,
        PlainLeg,
        accounts_for,
        existing_purchase,
        purchase_context,
        purchase_post,
    )

    if not idempotency_key or len(idempotency_key) > 128:
        raise LedgerInvariantError(details={"idempotency_key": "required, at most 128 chars"})
    # An id out of the database's range names no store (as the ORM's look-up answers).
    store_lookup = store_id if store_id is None or 0 < store_id < 2**63 else -1
    at = occurred_at or timezone.now()
    known_amount = amount if isinstance(amount, Decimal) and amount.is_finite() else Decimal(0)
    asked, context = read_ahead or (None, None)
    if asked is None or asked != ContextAsked(
            merchant.pk, member[0] if member and shopper_id is None else None,
            idempotency_key, store_lookup, known_amount, asked.at if occurred_at is None else at):
        context = purchase_context(
            merchant_id=merchant.pk, shopper_id=shopper_id,
            member_code=member[0] if member else None, key=idempotency_key,
            store_id=store_lookup, amount=known_amount, at=at)
    if context.shopper_id is None:
        raise MemberNotFound(details={"member": member[1].strip()[:40]} if member else {})
    if store_id is not None and context.store_id is None:
        raise NotFound(details={"store": store_id}, code="store_not_found")
    if context.brand is None:
        raise MerchantNotBrandIssuer()
    if (context.sv is None or context.shared is None) and not _again:
        # An emptied database (a test flush): the alliance's assets come back on first use.
        ledger.alliance_asset("SV"), ledger.alliance_asset("SHARED")
        return _purchase_record_sql(
            merchant=merchant, shopper_id=shopper_id, member=member, amount=amount,
            order_ref=order_ref, idempotency_key=idempotency_key, fingerprint=fingerprint,
            store_id=store_id, lines=lines, occurred_at=occurred_at, _again=True)
    context.brand.issuer = merchant
    assets = PurchaseAssets(context.brand, context.sv, context.shared)
    amount = cny_amount(amount)
    occurred_at = _checked_time(occurred_at)
    if context.existing is not None:
        if context.existing[2] != fingerprint:
            raise IdempotencyConflict(details={"transaction": context.existing[1]})
        return existing_purchase(context, merchant, idempotency_key), True, assets

    parameters = context.parameters
    price = parameters["reference_price"]
    minimum = assets.shared.to_minor(parameters["min_deposit_shared"])
    earning = earning_compute(rule=context.rule, tier=context.tier, amount=amount,
                              at=occurred_at, lines=lines, earned=context.earned_today)
    split = split_for(amount=amount, rebate_rate=merchant.rebate_rate, points=earning.points,
                      price=price)
    accounts = accounts_for(context, merchant, context.shopper_id)
    legs = _legs(accounts, split, minimum, leg=PlainLeg)
    rule = earning.rule
    posted = purchase_post(
        merchant=merchant, shopper_id=context.shopper_id, store_id=store_id,
        order_ref=order_ref, key=idempotency_key, amount=amount, lines=lines or [],
        occurred_at=occurred_at, rule=rule, points=split.points,
        budget_points=split.points if rule is not None and rule.budget is not None else 0,
        rebate=split.rebate, sv_shopper=split.sv_shopper, sv_merchant=split.sv_merchant,
        burn=split.burn, deposit=accounts["deposit"],
        kind="purchase" if legs else "event.purchase", client=merchant_client(merchant),
        fingerprint=fingerprint,
        metadata=_metadata(merchant, order_ref=order_ref, amount=amount, split=split,
                           price=price, earning=earning, store_id=store_id),
        legs=legs, minimum_major=assets.shared.to_major(minimum))
    if posted.outcome != "posted":
        # A concurrent request with the same key won the race; answer what it recorded.
        existing = _existing_purchase(merchant, idempotency_key, fingerprint)
        if existing is None:
            raise IdempotencyConflict(details={"transaction": posted.transaction_id})
        return existing, True, assets
    purchase = Purchase(
        pk=posted.purchase_id, merchant=merchant, shopper_id=context.shopper_id,
        store_id=store_id, order_ref=order_ref, idempotency_key=idempotency_key,
        amount=amount, lines=lines or [], occurred_at=occurred_at,
        transaction_id=posted.transaction_id, rule=rule, points=split.points,
        rebate=split.rebate, sv_shopper=split.sv_shopper, sv_merchant=split.sv_merchant,
        shared_burned=split.burn, refunded_amount=Decimal("0"))
    if split.burn:
        seen = (posted.deposit_balance, posted.deposit_level)
        db_transaction.on_commit(
            lambda: _deposit_watch(merchant, assets.shared, parameters, seen))
    if context.followups:
        _followups_queue(purchase.pk)
    return purchase, False, assets


def _purchase_record_orm(
    *, merchant: Merchant, shopper, amount: Decimal, order_ref: str, idempotency_key: str,
    fingerprint: str, store: Store | None, lines: list[dict] | None, occurred_at: datetime,
    assets: PurchaseAssets | None,
) -> tuple[Purchase, bool]:
    existing = _existing_purchase(merchant, idempotency_key, fingerprint)
    if existing is not None:
        return existing, True

    assets = assets or purchase_assets(merchant)
    shared = assets.shared
    parameters = parameters_current()  # one query for the price, the minimum and the warning
    price = parameters["reference_price"]
    minimum = shared.to_minor(parameters["min_deposit_shared"])
    accounts: dict[str, Account] = {}
    try:
        with db_transaction.atomic(durable=True):
            earning = earning_for(merchant=merchant, shopper=shopper, amount=amount,
                                  at=occurred_at, lines=lines)
            if earning.rule is not None and earning.rule.budget is not None and earning.points:
                # Conditional: two tills racing for the last of a budget cannot both spend it.
                claimed = EarningRule.objects.filter(
                    pk=earning.rule.pk, budget_used__lte=F("budget") - earning.points
                ).update(budget_used=F("budget_used") + earning.points)
                if not claimed:
                    raise Conflict(_("The earning rule's budget is used up."),
                                   code="rule_budget_exhausted")
            split = split_for(amount=amount, rebate_rate=merchant.rebate_rate,
                              points=earning.points, price=price)
            accounts = _accounts(merchant, shopper, assets)
            legs = _legs(accounts, split, minimum)
            metadata = _metadata(merchant, order_ref=order_ref, amount=amount, split=split,
                                 price=price, earning=earning,
                                 store_id=store.pk if store else None)
            client = merchant_client(merchant)
            if legs:
                posted = ledger.transaction_post(
                    kind="purchase", legs=legs, client=client, idempotency_key=idempotency_key,
                    metadata=metadata, occurred_at=occurred_at, fingerprint=fingerprint)
            else:
                posted = ledger.event_record(kind="event.purchase", metadata=metadata,
                                             client=client, idempotency_key=idempotency_key,
                                             fingerprint=fingerprint)
            if posted.replayed:
                raise _Replayed()
            purchase = Purchase.objects.create(
                merchant=merchant, shopper=shopper, store=store, order_ref=order_ref,
                idempotency_key=idempotency_key, amount=amount, lines=lines or [],
                occurred_at=occurred_at, transaction_id=posted.transaction_id,
                rule=earning.rule, points=split.points, rebate=split.rebate,
                sv_shopper=split.sv_shopper, sv_merchant=split.sv_merchant,
                shared_burned=split.burn,
            )
    except InsufficientBalance as exc:
        deposit = accounts.get("deposit")
        deposit_id = deposit.public_id if deposit else _accounts_deposit_public_id(merchant)
        if exc.details.get("account") == deposit_id:
            raise DepositInsufficient(details={"minimum": str(shared.to_major(minimum))}) from None
        raise
    except (_Replayed, IntegrityError):
        # A concurrent request with the same key won the race; answer what it recorded.
        existing = _existing_purchase(merchant, idempotency_key, fingerprint)
        if existing is None:
            raise
        return existing, True
    if split.burn:
        db_transaction.on_commit(lambda: _deposit_watch(merchant, shared, parameters))
    _followups_queue(purchase.pk)
    return purchase, False


def _followups_queue(purchase_id: int) -> None:
    """After commit, one message for the worker: the purchase's tasks and its webhook
    (``purchase_followups``). A broker that cannot be reached does not lose them, nor fail
    the purchase: they run here instead."""
    from .purchase_tasks import purchase_followups_task

    def send() -> None:
        try:
            purchase_followups_task.delay(purchase_id)
        except (KombuOperationalError, OSError):
            logger.warning("broker unreachable: a purchase's follow-ups run in the request",
                           extra={"purchase": purchase_id})
            purchase_followups(purchase_id=purchase_id)

    # Robust: the purchase is committed; nothing after it may turn its answer into an error.
    db_transaction.on_commit(send, robust=True)


def purchase_followups(*, purchase_id: int) -> None:
    """What follows a recorded purchase, off the till's request: the purchase and
    first-purchase tasks it completes (``tasks_on_purchase``, idempotent per purchase) and
    ``purchase.recorded`` for the merchant's systems."""
    from .tasks_services import tasks_on_purchase  # here: tasks_services imports this module

    purchase = (Purchase.objects.select_related("merchant", "shopper")
                .filter(pk=purchase_id).first())
    if purchase is None:
        return
    tasks_on_purchase(purchase)
    webhook_purchase_recorded(purchase=purchase)


class _Replayed(Exception):
    """Internal: the ledger already holds this request's transaction."""


def _accounts_deposit_public_id(merchant: Merchant) -> str | None:
    return (Account.objects.filter(merchant=merchant, kind=Account.Kind.DEPOSIT,
                                   asset__code="SHARED")
            .values_list("public_id", flat=True).first())


def _deposit_watch(merchant: Merchant, shared: Asset, parameters: dict,
                   seen: tuple[int | None, str | None] | None = None) -> None:
    from merchants.services import deposit_level_watch

    deposit_level_watch(merchant=merchant, shared=shared, parameters=parameters, seen=seen)


# --- refunds ----------------------------------------------------------------------------------


def _share(total: int, part: Decimal, whole: Decimal) -> int:
    """``total × part / whole`` rounded down: cumulative shares of partial refunds never
    exceed the whole, and the last refund takes exactly what is left."""
    return int((Decimal(total) * part / whole).to_integral_value(rounding=ROUND_FLOOR))


def purchase_refund(
    *, purchase: Purchase, amount: Decimal | None, idempotency_key: str,
    absorb_shortfall: bool = False,
) -> tuple[Refund, bool]:
    """Refund ``amount`` CNY (default: what is left) of a purchase, reversing its points, SV
    and burn in proportion. If the shopper has spent the points, ``PointsAlreadySpent``
    unless the merchant absorbs the shortfall (recorded on the refund)."""
    existing = Refund.objects.filter(purchase=purchase, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, True
    with db_transaction.atomic(durable=True):
        purchase = Purchase.objects.select_for_update().select_related("merchant").get(
            pk=purchase.pk)
        left = purchase.amount - purchase.refunded_amount
        amount = left if amount is None else cny_amount(amount)
        if amount > left:
            raise RefundTooLarge(details={"refundable": str(left)})
        before, after = purchase.refunded_amount, purchase.refunded_amount + amount
        wanted = {
            field: _share(getattr(purchase, field), after, purchase.amount)
            - _share(getattr(purchase, field), before, purchase.amount)
            for field in ("points", "sv_shopper", "sv_merchant", "shared_burned")
        }
        merchant = purchase.merchant
        accounts = _accounts(merchant, purchase.shopper, purchase_assets(merchant))
        taken = {
            "points": _take(accounts["brand_wallet"], wanted["points"], absorb_shortfall),
            "sv_shopper": _take(accounts["sv_shopper"], wanted["sv_shopper"], absorb_shortfall),
            "sv_merchant": min(wanted["sv_merchant"], accounts["sv_merchant"].balance),
        }
        legs = []
        if taken["points"]:
            legs += [ledger.Leg(accounts["brand_wallet"], -taken["points"]),
                     ledger.Leg(accounts["brand_issuance"], taken["points"])]
        sv_back = taken["sv_shopper"] + taken["sv_merchant"]
        if sv_back:
            if taken["sv_shopper"]:
                legs.append(ledger.Leg(accounts["sv_shopper"], -taken["sv_shopper"]))
            if taken["sv_merchant"]:
                legs.append(ledger.Leg(accounts["sv_merchant"], -taken["sv_merchant"]))
            legs.append(ledger.Leg(accounts["sv_issuance"], sv_back))
        if wanted["shared_burned"]:
            legs += [ledger.Leg(accounts["burn"], -wanted["shared_burned"]),
                     ledger.Leg(accounts["deposit"], wanted["shared_burned"])]
        shortfall_points = wanted["points"] - taken["points"]
        shortfall_sv = (wanted["sv_shopper"] - taken["sv_shopper"]
                        + wanted["sv_merchant"] - taken["sv_merchant"])
        metadata = {"purchase": purchase.transaction_id, "amount": str(amount),
                    "shortfall_points": shortfall_points, "shortfall_sv": shortfall_sv}
        client = merchant_client(merchant)
        key = f"refund:{purchase.pk}:{idempotency_key}"
        try:
            if legs:
                posted = ledger.transaction_post(kind="refund", legs=legs, client=client,
                                                 idempotency_key=key, metadata=metadata)
            else:
                posted = ledger.event_record(kind="event.refund", metadata=metadata,
                                             client=client, idempotency_key=key)
        except InsufficientBalance:
            raise PointsAlreadySpent() from None
        purchase.refunded_amount = after
        purchase.save(update_fields=["refunded_amount"])
        refund = Refund.objects.create(
            purchase=purchase, amount=amount, idempotency_key=idempotency_key,
            transaction_id=posted.transaction_id, points=taken["points"],
            sv_shopper=taken["sv_shopper"], sv_merchant=taken["sv_merchant"],
            shared_unburned=wanted["shared_burned"], shortfall_points=shortfall_points,
            shortfall_sv=shortfall_sv,
        )
    return refund, False


def _take(account: Account, wanted: int, absorb_shortfall: bool) -> int:
    """How much of ``wanted`` to take back from ``account``: all of it, or (when the merchant
    absorbs the shortfall) what is there."""
    if wanted <= 0:
        return 0
    account.refresh_from_db(fields=["balance"])
    if account.balance >= wanted:
        return wanted
    if not absorb_shortfall:
        raise PointsAlreadySpent(details={"wanted": wanted, "available": account.balance})
    return account.balance


# --- rules and tiers --------------------------------------------------------------------------


@db_transaction.atomic
def earning_rule_publish(
    *, merchant: Merchant, base_rate: Decimal, multipliers: dict | None = None,
    daily_cap: int | None = None, budget: int | None = None, created_by=None,
) -> EarningRule:
    """Make a new version the merchant's one active rule; the old one stays for the record."""
    if base_rate < 0:
        raise DomainError(_("The base rate cannot be negative."), code="invalid_rule")
    last = (EarningRule.objects.select_for_update().filter(merchant=merchant)
            .order_by("-version").first())
    EarningRule.objects.filter(merchant=merchant, active=True).update(active=False)
    rule = EarningRule(
        merchant=merchant, version=(last.version + 1) if last else 1, base_rate=base_rate,
        multipliers=multipliers or {}, daily_cap=daily_cap, budget=budget,
        created_by=created_by,
    )
    _validate_multipliers(rule.multipliers)
    rule.content_hash = rule.compute_hash()
    rule.save()
    return rule


def _validate_multipliers(multipliers: dict) -> None:
    try:
        for window in multipliers.get("time_windows", []):
            Decimal(str(window["multiplier"]))
            for key in ("start", "end"):
                if key in window:
                    datetime.strptime(window[key][:5], "%H:%M")
        for group in ("categories", "tiers"):
            for value in multipliers.get(group, {}).values():
                if Decimal(str(value)) < 0:
                    raise ValueError(value)
    except (KeyError, ValueError, InvalidOperation, TypeError, AttributeError):
        raise DomainError(_("The multipliers are not valid."), code="invalid_rule") from None


def member_tier_set(*, merchant: Merchant, code: str, name_zh: str, name_en: str,
                    threshold: Decimal) -> MemberTier:
    tier, _ = MemberTier.objects.update_or_create(
        merchant=merchant, code=code,
        defaults={"name_zh": name_zh, "name_en": name_en, "threshold": threshold},
    )
    return tier


def member_tier_delete(*, merchant: Merchant, code: str) -> bool:
    """Remove a tier; shoppers in it fall to the tier below. False when there was none."""
    deleted, _rows = MemberTier.objects.filter(merchant=merchant, code=code).delete()
    return bool(deleted)


# --- sign-up bonus ----------------------------------------------------------------------------


def signup_bonus_pay(*, user) -> int:
    """Pay the alliance's sign-up bonus in SV once per verified phone number (whoever holds
    it now): the idempotency key is the number itself. Returns the SV minor units paid."""
    if not user.phone or not user.phone_verified:
        return 0
    sv = ledger.alliance_asset("SV")
    amount = sv.to_minor(parameter_get("signup_bonus_sv"))
    if amount <= 0:
        return 0
    wallet = ledger.account_get_or_create(asset=sv, kind=Account.Kind.WALLET, user=user)
    posted = ledger.transaction_post(
        kind="signup_bonus", client=ledger.SYSTEM_CLIENT,
        idempotency_key=f"signup-bonus:{user.phone}",
        legs=[ledger.Leg(ledger.issuance_account(sv), -amount), ledger.Leg(wallet, amount)],
        fingerprint=f"signup-bonus:{user.phone}",
    )
    return 0 if posted.replayed else amount
