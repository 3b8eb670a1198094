"""Everything that moves value. No other module writes balances, postings, lots or holds.

The entry point is ``transaction_post``; holds, captures, voids and reversals are built on it.
Each runs in one database transaction: a service called inside a caller's atomic block joins
it (a savepoint), so a purchase can post and write its own rows all-or-nothing.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property

from django.conf import settings
from django.db import OperationalError, connection
from django.db import transaction as db_transaction
from django.db.models import Q
from django.utils import timezone

from . import engine
from .errors import HoldStateError, IdempotencyConflict, LedgerInvariantError
from .models import Account, Asset, Hold, Transaction, new_public_id

INT64_MAX = 2**63 - 1
SYSTEM_CLIENT = "system"
# Transactions of these kinds record a decision (governance) and carry no postings; they are
# journalled and anchored like every other transaction, so decisions are as tamper-evident.
EVENT_PREFIX = "event."


@dataclass(frozen=True)
class Leg:
    """One side of a transaction: ``amount`` minor units onto ``account`` (negative takes).

    ``expires_at`` matters only for a credit to a lot-tracked account that no debit of the
    same transaction carries lots into; it defaults to the asset's expiry policy.
    ``floor`` raises the balance a debited bounded account must keep (default 0): a
    merchant's deposit keeps the alliance's minimum."""

    account: Account
    amount: int
    expires_at: datetime | None = None
    floor: int = 0


@dataclass(frozen=True)
class Posted:
    transaction_id: int
    created_at: datetime
    replayed: bool

    @cached_property
    def transaction(self) -> Transaction:
        return Transaction.objects.get(pk=self.transaction_id)


# --- accounts ---------------------------------------------------------------------------------


def holder_key(*, user=None, merchant=None) -> str:
    if user is not None and merchant is not None:
        raise ValueError("an account has one holder")
    if user is not None:
        return f"u:{user.pk}"
    if merchant is not None:
        return f"m:{merchant.pk}"
    return "alliance"


def _account_limits(asset: Asset, kind: str) -> tuple[bool, bool]:
    """(bounded, tracks lots) of a new account: issuance and sinks are unbounded; a bounded
    account of an asset that expires keeps lots."""
    bounded = kind not in Account.UNBOUNDED_KINDS
    return bounded, bounded and asset.expires


def account_get_or_create(*, asset: Asset, kind: str, user=None, merchant=None) -> Account:
    """The account of ``(holder, asset, kind)``; created on first use. The alliance holds the
    accounts that name neither a user nor a merchant."""
    bounded, tracks_lots = _account_limits(asset, kind)
    account, _ = Account.objects.select_related("asset").get_or_create(
        asset=asset, kind=kind, holder_key=holder_key(user=user, merchant=merchant),
        defaults={"user": user, "merchant": merchant, "bounded": bounded,
                  "tracks_lots": tracks_lots},
    )
    account.asset = asset
    return account


# Every column of an account, in the model's order (``Account.from_db`` takes them so).
_ACCOUNT_FIELDS = [f.attname for f in Account._meta.concrete_fields]
# The missing ones of several accounts opened in one statement, each as
# ``account_get_or_create`` opens it; an account that exists (or that another request opened
# meanwhile) is left as it is and returns no row. The column names come from the model.
_ACCOUNTS_OPEN_SQL = f"""
INSERT INTO ledger_account (asset_id, kind, user_id, merchant_id, holder_key, public_id,
                            bounded, tracks_lots, balance, created_at)
SELECT w.asset, w.kind, w.person, w.merchant, w.holder, w.public_id, w.bounded, w.lots, 0,
       %s::timestamptz
  FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[],
              %s::boolean[], %s::boolean[])
       AS w(asset, kind, person, merchant, holder, public_id, bounded, lots)
ON CONFLICT (asset_id, kind, holder_key) DO NOTHING
RETURNING {", ".join(Account._meta.get_field(f).column for f in _ACCOUNT_FIELDS)}
"""  # noqa: S608


def accounts_get_or_create(wanted: Sequence[tuple[Asset, str, object, object]]
                           ) -> list[Account]:
    """``account_get_or_create`` for several accounts at once: ``wanted`` holds
    ``(asset, kind, user, merchant)``, the answer the accounts in that order. On PostgreSQL
    the missing ones are opened by one ``INSERT ... ON CONFLICT DO NOTHING`` and those that
    existed are read by one query (a shopper's first purchase opens its two wallets in one
    statement where ``get_or_create`` took four each); elsewhere one by one."""
    if not settings.USES_POSTGRES or not wanted:
        return [account_get_or_create(asset=asset, kind=kind, user=user, merchant=merchant)
                for asset, kind, user, merchant in wanted]
    keys = [(asset.pk, kind, holder_key(user=user, merchant=merchant))
            for asset, kind, user, merchant in wanted]
    rows = {}  # one row per account, however often it is asked for: the statement's columns
    for key, (asset, kind, user, merchant) in zip(keys, wanted, strict=True):
        rows.setdefault(key, (asset.pk, str(kind), user.pk if user else None,
                              merchant.pk if merchant else None, key[2], new_public_id(),
                              *_account_limits(asset, kind)))
    with connection.cursor() as cursor:
        columns = [list(column) for column in zip(*rows.values(), strict=True)]
        cursor.execute(_ACCOUNTS_OPEN_SQL, [timezone.now(), *columns])
        found = [Account.from_db(connection.alias, _ACCOUNT_FIELDS, row)
                 for row in cursor.fetchall()]
    accounts = {(a.asset_id, a.kind, a.holder_key): a for a in found}
    existing = [key for key in rows if key not in accounts]
    if existing:
        condition = Q()
        for asset_id, kind, holder in existing:
            condition |= Q(asset_id=asset_id, kind=kind, holder_key=holder)
        accounts.update({(a.asset_id, a.kind, a.holder_key): a
                         for a in Account.objects.filter(condition)})
    for key, (asset, *_rest) in zip(keys, wanted, strict=True):
        accounts[key].asset = asset
    return [accounts[key] for key in keys]


def issuance_account(asset: Asset) -> Account:
    """Where ``asset`` is minted from and retired to: its issuer's unbounded account."""
    return account_get_or_create(
        asset=asset, kind=Account.Kind.ISSUANCE, merchant=asset.issuer
    )


def sink_account(asset: Asset, kind: str) -> Account:
    """The issuer's burn or expired account for ``asset``."""
    if kind not in (Account.Kind.BURN, Account.Kind.EXPIRED):
        raise ValueError(kind)
    return account_get_or_create(asset=asset, kind=kind, merchant=asset.issuer)


# --- posting ----------------------------------------------------------------------------------


def _engine():
    choice = getattr(settings, "LEDGER_ENGINE", "auto")
    if choice == "python" or (choice == "auto" and not settings.USES_POSTGRES):
        return engine.post_python
    return engine.post_sql


def _fingerprint(kind: str, legs: Sequence[engine.PreparedLeg], metadata: dict) -> str:
    """SHA-256 of ``{"kind", "legs": [[account, "amount", expiry or null], ...], "metadata"}``
    as canonical JSON (sorted keys, no spaces). Stored with the transaction and compared on
    every replay, so these bytes never change; they are written by hand around the metadata
    (integers and ISO dates need no escaping), which costs a fraction of encoding the whole."""
    legs_text = ",".join(
        f'[{leg.account_id},"{leg.amount}",{_json_datetime(leg.expires_at)}]' for leg in legs
    )
    raw = (f'{{"kind":{json.dumps(kind)},"legs":[{legs_text}],"metadata":'
           f'{_CANONICAL_JSON.encode(metadata)}}}')
    return hashlib.sha256(raw.encode()).hexdigest()


# What ``json.dumps(..., sort_keys=True, separators=(",", ":"), default=str)`` builds per call.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _json_datetime(value: datetime | None) -> str:
    return "null" if value is None else f'"{value.isoformat()}"'


def _prepare(legs: Sequence[Leg], occurred_at: datetime, *, event: bool = False
             ) -> list[engine.PreparedLeg]:
    if event:
        if legs:
            raise LedgerInvariantError(details={"legs": "an event record moves no value"})
        return []
    if len(legs) < 2:
        raise LedgerInvariantError(details={"legs": "a transaction needs at least two legs"})
    # Every purchase passes here: each attribute is read once per leg (a model's ``pk`` and
    # its related ``asset`` are descriptors, and were read four times each).
    sums: dict[int, int] = defaultdict(int)
    signs: dict[str, set[bool]] = defaultdict(set)
    prepared = []
    for number, leg in enumerate(legs):
        account, amount = leg.account, leg.amount
        if type(amount) is not int or amount == 0 or abs(amount) > INT64_MAX:
            raise LedgerInvariantError(details={"leg": number, "amount": repr(amount)})
        account_id = account.id
        if account_id is None:
            raise LedgerInvariantError(details={"leg": number, "account": "unsaved"})
        asset = account.asset
        sums[account.asset_id] += amount
        # Share value never moves between holders: within one transaction its bounded legs
        # all point the same way (accrual from issuance, or reduction back to it).
        if account.bounded and not asset.transferable:
            signs[asset.code].add(amount > 0)
        expires_at = leg.expires_at
        if expires_at is None and amount > 0 and account.tracks_lots:
            expires_at = asset.expiry_for(occurred_at)
        floor = leg.floor
        if type(floor) is not int or floor < 0:
            raise LedgerInvariantError(details={"leg": number, "floor": repr(floor)})
        prepared.append(engine.PreparedLeg(number, account, amount, expires_at, floor,
                                           account_id))
    unbalanced = sorted(pk for pk, total in sums.items() if total)
    if unbalanced:
        raise LedgerInvariantError(details={"unbalanced_assets": unbalanced})
    for code, directions in signs.items():
        if len(directions) > 1:
            raise LedgerInvariantError(details={"non_transferable": code})
    return prepared


_RACE_ATTEMPTS = 3


def transaction_post(
    *,
    kind: str,
    legs: Sequence[Leg],
    client: str,
    idempotency_key: str,
    metadata: dict | None = None,
    occurred_at: datetime | None = None,
    fingerprint: str | None = None,
) -> Posted:
    """Post one balanced transaction, or return the one already posted under the key.

    Guards: per-asset balance, non-negative bounded balances (``InsufficientBalance`` naming
    the account), idempotency (the same key and request return the original; the same key
    with another request raises ``IdempotencyConflict``). ``fingerprint`` lets a caller hash
    its own request (an API body) instead of the legs, which may depend on the clock.
    """
    if not client or not idempotency_key or len(idempotency_key) > 128:
        raise LedgerInvariantError(details={"idempotency_key": "required, at most 128 chars"})
    occurred_at = occurred_at or timezone.now()
    metadata = dict(metadata or {})
    prepared = _prepare(legs, occurred_at, event=kind.startswith(EVENT_PREFIX))
    fingerprint = fingerprint or _fingerprint(kind, prepared, metadata)
    post = _engine()
    arguments = {"kind": kind, "client": client, "key": idempotency_key,
                 "fingerprint": fingerprint, "metadata": metadata,
                 "occurred_at": occurred_at, "legs": prepared}
    for attempt in range(_RACE_ATTEMPTS):
        try:
            if post is engine.post_sql and not db_transaction.get_connection().in_atomic_block:
                # The hot path: ledger_post() is one statement, so in autocommit it is its own
                # transaction (deferred checks included) and costs one round trip, commit and
                # all.
                outcome = post(**arguments)
            else:
                # Inside a caller's transaction: a savepoint, so a refusal leaves the caller's
                # work usable; the Python engine needs the transaction for its statements.
                with db_transaction.atomic():
                    outcome = post(**arguments)
            break
        except engine.IdempotencyRace:
            # Another request with this key committed first, after ours had looked: ours left
            # nothing behind, and asking again returns that transaction (or the conflict). A
            # caller's snapshot older than that commit cannot see it: a retryable error.
            if attempt + 1 == _RACE_ATTEMPTS:
                raise OperationalError("idempotency key raced; retry the request") from None
    if outcome.status == "conflict":
        raise IdempotencyConflict(details={"transaction": outcome.transaction_id})
    return Posted(outcome.transaction_id, outcome.created_at, outcome.status == "replayed")


def event_record(
    *, kind: str, metadata: dict, client: str, idempotency_key: str,
    fingerprint: str | None = None,
) -> Posted:
    """Journal a decision that moves no value (an application approved, a proposal executed).
    ``kind`` is ``event.<what>``; ``metadata`` must hold no personal data: it is public.
    ``fingerprint`` as for ``transaction_post`` (a caller's hash of its own request)."""
    if not kind.startswith(EVENT_PREFIX):
        raise LedgerInvariantError(details={"kind": f"must start with {EVENT_PREFIX!r}"})
    return transaction_post(kind=kind, legs=[], client=client, idempotency_key=idempotency_key,
                            metadata=metadata, fingerprint=fingerprint)


def transaction_reverse(
    *, transaction: Transaction, client: str = SYSTEM_CLIENT, reason: str = ""
) -> Posted:
    """Correct a transaction by posting its mirror image. One reversal per transaction: the
    idempotency key is derived from the original, so a repeated call returns the first."""
    postings = list(transaction.postings.select_related("account__asset").order_by("leg"))
    legs = [
        Leg(p.account, -p.amount,
            p.account.asset.expiry_for(transaction.occurred_at) if -p.amount > 0 else None)
        for p in postings
    ]
    return transaction_post(
        kind="reversal", legs=legs, client=client,
        idempotency_key=f"reverse:{transaction.pk}",
        metadata={"reverses": transaction.pk, "reason": reason},
    )


# --- holds ------------------------------------------------------------------------------------

DEFAULT_HOLD_TTL = timedelta(minutes=15)


def hold_place(
    *, wallet: Account, amount: int, client: str, idempotency_key: str,
    ttl: timedelta = DEFAULT_HOLD_TTL, metadata: dict | None = None,
) -> Hold:
    """Move ``amount`` from ``wallet`` into its holder's hold account until captured, voided
    or expired. Lots travel with the points, so a void restores their expiry dates."""
    hold_account = account_get_or_create(
        asset=wallet.asset, kind=Account.Kind.HOLD, user=wallet.user, merchant=wallet.merchant
    )
    with db_transaction.atomic():
        posted = transaction_post(
            kind="hold", legs=[Leg(wallet, -amount), Leg(hold_account, amount)],
            client=client, idempotency_key=idempotency_key, metadata=metadata,
        )
        if posted.replayed:
            return Hold.objects.get(placed_by_id=posted.transaction_id)
        return Hold.objects.create(
            wallet=wallet, hold_account=hold_account, amount=amount,
            expires_at=posted.created_at + ttl, placed_by_id=posted.transaction_id,
        )


def _locked_pending_hold(hold_id: int, client: str, idempotency_key: str) -> tuple[Hold, bool]:
    """Lock the hold row first (then the engine locks accounts): one settle per hold.
    Returns (hold, already_settled_by_this_request)."""
    hold = (Hold.objects.select_for_update(of=("self",))
            .select_related("wallet__asset", "hold_account__asset", "settled_by").get(pk=hold_id))
    if hold.state == Hold.State.PENDING:
        return hold, False
    settled = hold.settled_by
    if settled and settled.client == client and settled.idempotency_key == idempotency_key:
        return hold, True
    raise HoldStateError(details={"hold": hold.pk, "state": hold.state})


def hold_capture(
    *, hold_id: int, destination: Account, client: str, idempotency_key: str,
    amount: int | None = None, metadata: dict | None = None,
) -> Hold:
    """Capture ``amount`` (default: all) of a pending hold into ``destination``; the rest goes
    back to the wallet in the same transaction."""
    with db_transaction.atomic():
        hold, done = _locked_pending_hold(hold_id, client, idempotency_key)
        if done:
            return hold
        amount = hold.amount if amount is None else amount
        if type(amount) is not int or not 0 < amount <= hold.amount:
            raise LedgerInvariantError(details={"amount": "between 1 and the held amount"})
        legs = [Leg(hold.hold_account, -hold.amount), Leg(destination, amount)]
        if amount < hold.amount:
            legs.append(Leg(hold.wallet, hold.amount - amount))
        posted = transaction_post(
            kind="capture", legs=legs, client=client, idempotency_key=idempotency_key,
            metadata={**(metadata or {}), "hold": hold.pk},
        )
        hold.captured = amount
        hold.state = Hold.State.CAPTURED
        hold.settled_by_id = posted.transaction_id
        hold.save(update_fields=["captured", "state", "settled_by"])
        return hold


def hold_void(
    *, hold_id: int, client: str, idempotency_key: str, expired: bool = False
) -> Hold:
    """Give a pending hold back to its wallet whole (``expired`` marks the timeout path)."""
    with db_transaction.atomic():
        hold, done = _locked_pending_hold(hold_id, client, idempotency_key)
        if done:
            return hold
        posted = transaction_post(
            kind="hold_expiry" if expired else "void",
            legs=[Leg(hold.hold_account, -hold.amount), Leg(hold.wallet, hold.amount)],
            client=client, idempotency_key=idempotency_key, metadata={"hold": hold.pk},
        )
        hold.state = Hold.State.EXPIRED if expired else Hold.State.VOIDED
        hold.settled_by_id = posted.transaction_id
        hold.save(update_fields=["state", "settled_by"])
        return hold


def holds_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Void every pending hold past its expiry; safe to run from several workers at once
    (each hold is claimed with SKIP LOCKED and voided under a key derived from its id)."""
    now = now or timezone.now()
    expired = 0
    while True:
        with db_transaction.atomic():
            ids = list(
                Hold.objects.filter(state=Hold.State.PENDING, expires_at__lte=now)
                .order_by("pk").select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch]
            )
            for hold_id in ids:
                hold_void(hold_id=hold_id, client=SYSTEM_CLIENT,
                          idempotency_key=f"hold-expire:{hold_id}", expired=True)
        expired += len(ids)
        if len(ids) < batch:
            return expired


def accounts_by_id(ids: Iterable[int]) -> dict[int, Account]:
    return {a.pk: a for a in Account.objects.filter(pk__in=list(ids)).select_related("asset")}


# --- assets -----------------------------------------------------------------------------------


def asset_create_brand(
    *, merchant, code: str, name_zh: str, name_en: str, units_per_cny,
    expiry_months: int | None = 12, description: str = "",
) -> Asset:
    """A merchant's brand points: scale 0, issued only by that merchant."""
    return Asset.objects.create(
        code=code.upper(), family=Asset.Family.BRAND, name_zh=name_zh, name_en=name_en,
        issuer=merchant, scale=0, units_per_cny=units_per_cny, expiry_months=expiry_months,
        description=description,
    )


ALLIANCE_ASSETS = {
    "SHARED": {"family": Asset.Family.SHARED, "name_zh": "共享积分", "name_en": "Shared point",
               "scale": 2, "units_per_cny": Decimal("1"), "transferable": True},
    "SV": {"family": Asset.Family.SHARE_VALUE, "name_zh": "共享值", "name_en": "Share value",
           "scale": 2, "units_per_cny": Decimal("1"), "transferable": False},
    "ALLY": {"family": Asset.Family.ALLIANCE, "name_zh": "联盟积分", "name_en": "Alliance point",
             "scale": 2, "units_per_cny": Decimal("1"), "transferable": True},
}


def alliance_asset(code: str) -> Asset:
    """SHARED, SV or ALLY. Migration ledger/0003 creates them; a database emptied since (a
    test flush, a restore of data only) gets them back, identical, on first use."""
    try:
        return Asset.objects.get(code=code)
    except Asset.DoesNotExist:
        asset, _ = Asset.objects.get_or_create(code=code, defaults=ALLIANCE_ASSETS[code])
        return asset
