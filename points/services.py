"""Earning writes: purchases (共享购, SPEC §4.1), refunds, earning rules and tiers, the sign-up
bonus. Every value movement goes through ``ledger.services``."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from django.db import IntegrityError
from django.db import transaction as db_transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict, DomainError, NotFound
from alliance.parameters import parameter_get, parameters_current
from ledger import services as ledger
from ledger.errors import IdempotencyConflict, InsufficientBalance
from ledger.models import Account, Asset
from merchants.models import Merchant, Store
from merchants.webhooks import webhook_purchase_recorded

from .earning import earning_for
from .models import EarningRule, MemberTier, Purchase, Refund

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
    first purchase lacks (the shopper's wallets) are made by ``ledger.account_get_or_create``."""
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
    for name, (asset, kind, holder) in wanted.items():
        account = found.get(keys[name])
        if account is None:
            account = ledger.account_get_or_create(asset=asset, kind=kind, **holder)
        account.asset = asset
        accounts[name] = account
    return accounts


def _existing_purchase(merchant: Merchant, key: str, fingerprint: str) -> Purchase | None:
    purchase = (Purchase.objects.select_related("transaction")
                .filter(merchant=merchant, idempotency_key=key).first())
    if purchase is None:
        return None
    if purchase.transaction.fingerprint != fingerprint:
        raise IdempotencyConflict(details={"transaction": purchase.transaction_id})
    return purchase


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
    now = timezone.now()
    occurred_at = occurred_at or now
    if occurred_at > now + CLOCK_SKEW or occurred_at < now - OFFLINE_WINDOW:
        raise InvalidOccurredAt()
    if store is not None and store.merchant_id != merchant.pk:
        raise NotFound(_("No such store at this merchant."), details={"store": store.pk},
                       code="store_not_found")
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
            legs = []
            if split.points:
                legs += [ledger.Leg(accounts["brand_issuance"], -split.points),
                         ledger.Leg(accounts["brand_wallet"], split.points)]
            if split.sv_shopper:
                sv_total = split.sv_shopper + split.sv_merchant
                legs += [ledger.Leg(accounts["sv_issuance"], -sv_total),
                         ledger.Leg(accounts["sv_shopper"], split.sv_shopper),
                         ledger.Leg(accounts["sv_merchant"], split.sv_merchant)]
            if split.burn:
                legs += [ledger.Leg(accounts["deposit"], -split.burn, floor=minimum),
                         ledger.Leg(accounts["burn"], split.burn)]
            metadata = {
                "merchant": merchant.slug, "order_ref": order_ref, "amount": str(amount),
                "rebate": str(split.rebate), "price": str(price),
                "rule": earning.rule.content_hash if earning.rule else None,
                "multiplier": str(earning.multiplier),
                "store": store.pk if store else None,
            }
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
    from .tasks_services import tasks_on_purchase  # here: tasks_services imports this module

    db_transaction.on_commit(lambda: tasks_on_purchase(purchase))
    db_transaction.on_commit(lambda: webhook_purchase_recorded(purchase=purchase))
    return purchase, False


class _Replayed(Exception):
    """Internal: the ledger already holds this request's transaction."""


def _accounts_deposit_public_id(merchant: Merchant) -> str | None:
    return (Account.objects.filter(merchant=merchant, kind=Account.Kind.DEPOSIT,
                                   asset__code="SHARED")
            .values_list("public_id", flat=True).first())


def _deposit_watch(merchant: Merchant, shared: Asset, parameters: dict) -> None:
    from merchants.services import deposit_level_watch

    deposit_level_watch(merchant=merchant, shared=shared, parameters=parameters)


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
