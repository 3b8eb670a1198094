"""The purchase on PostgreSQL: its reads in one query, its writes in one statement.

The ORM path (``points.services._purchase_record_orm``, which the SQLite demo takes) costs
some twenty statements per purchase, most of its time spent building them in Python. Here:

* ``purchase_context`` reads with one call of ``points_purchase_context()`` (migration
  ``points/0007``) everything a purchase needs: the shopper
  (by id, or by member code among active users), an earlier purchase under the key, the
  store, the three assets, the parameters, the active rule with the shopper's tier and
  earnings of the day (each only when the rule needs it), the seven accounts, and whether
  any follow-up could apply (a purchase task, an endpoint listening for purchase.recorded);
* the split, the legs and the metadata are computed by the same Python as the ORM path
  (``points.earning``, ``points.services.split_for``);
* ``points_purchase_post()`` (migration ``points/0007``) posts through ``ledger_post()``,
  claims the rule's budget, inserts the purchase row and returns the deposit's balance, in
  one statement: in autocommit it is its own transaction, commit included.

A shopper's first purchase at a merchant opens its wallets first (``ledger``), then goes the
same way.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection
from django.db import transaction as db_transaction
from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict
from alliance.parameters import parameters_from
from alliance.prepared import fetchone_prepared
from ledger import services as ledger
from ledger.errors import InsufficientBalance, LedgerInvariantError
from ledger.models import Account, Asset
from merchants.api_auth import (
    KEY_COLUMNS,
    KEY_TABLES,
    KEY_WIDTH,
    TRADING_STATUSES,
    api_key_from_row,
)
from merchants.models import ApiKey

from .models import EarningRule, MemberTier, Purchase

_CONTEXT_SQL = """
SELECT * FROM points_purchase_context(%s::bigint, %s::bigint, %s::text, %s::text, %s::bigint,
                                      %s::numeric, %s::timestamptz, %s::timestamptz,
                                      %s::timestamptz, %s::timestamptz)
"""

_POST_SQL = """
SELECT purchase_id, txn_id, txn_created, outcome, deposit_balance, deposit_level
  FROM points_purchase_post(%s::bigint, %s::bigint, %s::bigint, %s::text, %s::text,
                            %s::numeric, %s::jsonb, %s::timestamptz, %s::bigint, %s::bigint,
                            %s::bigint, %s::numeric, %s::bigint, %s::bigint, %s::bigint,
                            %s::bigint, %s::text, %s::text, %s::text, %s::jsonb, %s::jsonb)
"""

_SQLSTATE_INSUFFICIENT = "LB001"
_SQLSTATE_UNBALANCED = "LB002"
_SQLSTATE_RACE = "LB005"
_SQLSTATE_BUDGET = "PB001"
_RACE_ATTEMPTS = 3


def _asset(row: list | None) -> Asset | None:
    if row is None:
        return None
    pk, code, family, scale, units, expiry, transferable, issuer = row
    return Asset(pk=pk, code=code, family=family, scale=scale, units_per_cny=Decimal(units),
                 expiry_months=expiry, transferable=transferable, issuer_id=issuer)


@dataclass
class PurchaseContext:
    """What ``purchase_context`` read; ``None`` where there is nothing."""

    shopper_id: int | None
    existing: list | None
    store_id: int | None
    parameters: dict
    brand: Asset | None
    sv: Asset | None
    shared: Asset | None
    rule: EarningRule | None
    tier: MemberTier | None
    earned_today: int
    accounts: dict  # (asset id, kind, holder key) -> row
    followups: bool


def _context_params(*, member_code: str | None, key: str, store_id: int | None,
                    amount: Decimal, at: datetime) -> list:
    """``points_purchase_context()``'s parameters after the merchant and the shopper id."""
    local = at.astimezone(ZoneInfo(settings.TIME_ZONE))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return [member_code, key, store_id, amount, at, at - timedelta(days=365), day_start,
            day_start + timedelta(days=1)]


def _context_from_row(row, merchant_id: int) -> PurchaseContext:
    (shopper, existing, store, stored, brand, sv, shared, rule, tier, earned_today,
     accounts, followups) = row
    if rule is not None:
        pk, version, base_rate, multipliers, daily_cap, budget, budget_used, content_hash = rule
        rule = EarningRule(pk=pk, merchant_id=merchant_id, version=version,
                           base_rate=Decimal(base_rate), multipliers=multipliers,
                           daily_cap=daily_cap, budget=budget, budget_used=budget_used,
                           content_hash=content_hash, active=True)
    return PurchaseContext(
        shopper_id=shopper, existing=existing, store_id=store,
        parameters=parameters_from({k: Decimal(v) for k, v in (stored or {}).items()}),
        brand=_asset(brand), sv=_asset(sv), shared=_asset(shared), rule=rule,
        tier=MemberTier(pk=tier[0], code=tier[1]) if tier else None,
        earned_today=int(earned_today or 0),
        accounts={(a[0], a[1], a[2]): a for a in accounts or []},
        followups=bool(followups),
    )


def purchase_context(*, merchant_id: int, shopper_id: int | None, member_code: str | None,
                     key: str, store_id: int | None, amount: Decimal,
                     at: datetime) -> PurchaseContext:
    row = fetchone_prepared(_CONTEXT_SQL, [
        merchant_id, shopper_id, *_context_params(member_code=member_code, key=key,
                                                  store_id=store_id, amount=amount, at=at)])
    return _context_from_row(row, merchant_id)


@dataclass(frozen=True)
class ContextAsked:
    """What a purchase's context was read for: ``_purchase_record_sql`` uses a context read
    ahead (by ``purchase_context_keyed``) only for exactly the purchase it is recording."""

    merchant_id: int
    member_code: str
    key: str
    store_id: int | None
    amount: Decimal
    at: datetime


# The API key with its merchant and, in the same statement, the purchase's context: read
# only for a key that matches, is live, may record purchases and belongs to a trading
# merchant. ``OFFSET 0`` keeps the subquery whole, so that its condition (on the key's row
# alone) is a one-time filter evaluated before the function, which is then never called for
# any other key; without it the planner pulls the subquery up, calls the function and
# filters its row afterwards. The columns are the models'.
_KEYED_CONTEXT_SQL = f"""
SELECT {KEY_COLUMNS}, c.*
  FROM {KEY_TABLES}
  LEFT JOIN LATERAL (
       SELECT true AS o_read, * FROM points_purchase_context(
            m.id, NULL::bigint, %s::text, %s::text, %s::bigint, %s::numeric, %s::timestamptz,
            %s::timestamptz, %s::timestamptz, %s::timestamptz)
        WHERE k.key_hash = %s::text AND k.revoked_at IS NULL
          AND m.status = ANY (%s::text[]) AND k.scopes @> '["purchases"]'::jsonb
       OFFSET 0) c ON true
 WHERE k.prefix = %s::text
"""  # noqa: S608


def purchase_context_keyed(*, prefix: str, hashed: str, member_code: str, key: str,
                           store_id: int | None, amount: Decimal, at: datetime,
                           ) -> tuple[ApiKey | None, ContextAsked | None, PurchaseContext | None]:
    """The API key of ``prefix`` (with its merchant) and, when ``hashed`` is its hash and the
    key may record purchases, the context of the purchase asked for: one round trip where
    the key and the context took two. The caller still checks the key as for any request."""
    row = fetchone_prepared(_KEYED_CONTEXT_SQL, [
        *_context_params(member_code=member_code, key=key, store_id=store_id, amount=amount,
                         at=at),
        hashed, list(TRADING_STATUSES), prefix])
    if row is None:
        return None, None, None
    api_key = api_key_from_row(row)
    if not row[KEY_WIDTH]:  # the key failed a condition: nothing was read
        return api_key, None, None
    asked = ContextAsked(api_key.merchant_id, member_code, key, store_id, amount, at)
    return api_key, asked, _context_from_row(row[KEY_WIDTH + 1:], api_key.merchant_id)


def existing_purchase(context: PurchaseContext, merchant, key: str) -> Purchase | None:
    """The purchase the context found under the key, as a ``Purchase`` (not read again)."""
    if context.existing is None:
        return None
    pk, txn, _fp, points, rebate, sv_shopper, sv_merchant, burned, refunded = context.existing
    return Purchase(pk=pk, merchant=merchant, shopper_id=context.shopper_id,
                    idempotency_key=key, transaction_id=txn, points=points,
                    rebate=Decimal(rebate), sv_shopper=sv_shopper, sv_merchant=sv_merchant,
                    shared_burned=burned, refunded_amount=Decimal(refunded))


@dataclass(frozen=True)
class AccountRef:
    """What a purchase's legs use of an account. Seven model instances cost a third of the
    purchase's Python; these cost nothing."""

    pk: int
    public_id: str
    tracks_lots: bool
    asset: Asset


@dataclass(frozen=True)
class PlainLeg:
    """A leg for ``points_purchase_post()``: ``ledger.Leg`` with an ``AccountRef``."""

    account: AccountRef | Account
    amount: int
    floor: int = 0
    expires_at: datetime | None = None


def accounts_for(context: PurchaseContext, merchant,
                 shopper_id: int) -> dict[str, AccountRef | Account]:
    """The seven accounts of ``points.services._accounts``, from the context; the ones
    missing (a shopper's first purchase here, the alliance's first burn) are opened, all in
    one statement."""
    brand, sv, shared = context.brand, context.sv, context.shared
    wanted = {
        "brand_issuance": (brand, Account.Kind.ISSUANCE, f"m:{merchant.pk}"),
        "brand_wallet": (brand, Account.Kind.WALLET, f"u:{shopper_id}"),
        "sv_issuance": (sv, Account.Kind.ISSUANCE, "alliance"),
        "sv_shopper": (sv, Account.Kind.WALLET, f"u:{shopper_id}"),
        "sv_merchant": (sv, Account.Kind.WALLET, f"m:{merchant.pk}"),
        "deposit": (shared, Account.Kind.DEPOSIT, f"m:{merchant.pk}"),
        "burn": (shared, Account.Kind.BURN, "alliance"),
    }
    accounts: dict[str, AccountRef | Account] = {}
    missing = []
    for name, (asset, kind, holder) in wanted.items():
        row = context.accounts.get((asset.pk, kind, holder))
        if row is None:
            missing.append(name)
        else:
            _asset_id, _kind, _holder, pk, public_id, _bounded, tracks_lots = row
            accounts[name] = AccountRef(pk, public_id, tracks_lots, asset)
    if missing:
        from alliance.models import User

        shopper = User(pk=shopper_id)
        opened = ledger.accounts_get_or_create([
            (wanted[name][0], wanted[name][1],
             shopper if wanted[name][2].startswith("u:") else None,
             merchant if wanted[name][2].startswith("m:") else None) for name in missing])
        accounts.update(zip(missing, opened, strict=True))
    return accounts


@dataclass(frozen=True)
class Posted:
    purchase_id: int | None
    transaction_id: int
    outcome: str  # posted, replayed or conflict
    deposit_balance: int | None
    deposit_level: str | None


def purchase_post(*, merchant, shopper_id: int, store_id: int | None, order_ref: str,
                  key: str, amount: Decimal, lines: list, occurred_at: datetime,
                  rule: EarningRule | None, points: int, budget_points: int, rebate: Decimal,
                  sv_shopper: int, sv_merchant: int, burn: int, deposit: AccountRef | Account,
                  kind: str, client: str, fingerprint: str, metadata: dict,
                  legs: list[PlainLeg], minimum_major: Decimal) -> Posted:
    """One call of ``points_purchase_post()``. Raises what ``ledger.transaction_post``
    would, ``DepositInsufficient`` for the deposit's floor, a ``Conflict`` for a spent
    budget."""
    from .services import DepositInsufficient

    payload = []
    for number, leg in enumerate(legs):
        expires_at = leg.expires_at
        if expires_at is None and leg.amount > 0 and leg.account.tracks_lots:
            # As ledger.services does: a credit opens a lot by its asset's expiry policy.
            expires_at = leg.account.asset.expiry_for(occurred_at)
        payload.append({"leg": number, "account": leg.account.pk, "amount": leg.amount,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                        "floor": leg.floor})
    params = [merchant.pk, shopper_id, store_id, order_ref, key, amount, json.dumps(lines),
              occurred_at, rule.pk if rule else None, points, budget_points, rebate,
              sv_shopper, sv_merchant, burn, deposit.pk, kind, client, fingerprint,
              json.dumps(metadata), json.dumps(payload)]
    for _attempt in range(_RACE_ATTEMPTS):
        try:
            if connection.in_atomic_block:
                # Inside a caller's transaction (a test's): a savepoint, so that a refusal
                # leaves the caller's transaction usable.
                with db_transaction.atomic():
                    row = fetchone_prepared(_POST_SQL, params)
            else:
                row = fetchone_prepared(_POST_SQL, params)
            return Posted(row[0], row[1], row[3], row[4], row[5])
        except DatabaseError as exc:
            cause = exc.__cause__
            sqlstate = getattr(cause, "sqlstate", None)
            detail = getattr(getattr(cause, "diag", None), "message_detail", None)
            if sqlstate == _SQLSTATE_INSUFFICIENT:
                if detail == str(deposit.pk):
                    raise DepositInsufficient(details={"minimum": str(minimum_major)}) from None
                public = next((leg.account.public_id for leg in legs
                               if str(leg.account.pk) == detail), None)
                raise InsufficientBalance(details={"account": public}) from None
            if sqlstate == _SQLSTATE_BUDGET:
                raise Conflict(_("The earning rule's budget is used up."),
                               code="rule_budget_exhausted") from None
            if sqlstate == _SQLSTATE_UNBALANCED:
                raise LedgerInvariantError(details={"asset": detail}) from None
            if sqlstate != _SQLSTATE_RACE:
                raise
            # Another request with this key committed first: asking again answers it.
    raise OperationalError("idempotency key raced; retry the request")

