"""The posting engines: write one validated transaction to the journal.

Two implementations of one algorithm (``ledger_post()``, last replaced by migration 0009, is
the other half):

* ``post_sql``: PostgreSQL, one round trip to the ``ledger_post()`` function, as a prepared
  statement (``alliance.prepared``: libpq's own outside a transaction, psycopg's inside one).
* ``post_python``: the same steps through the ORM; the SQLite demo uses it, and the property
  tests run it on PostgreSQL too so both engines are held to the same invariants.

Steps: lock the bounded accounts in primary-key order; insert the transaction under its unique
``(client, idempotency_key)`` (an existing one is a replay or a conflict); check the bounded
balances under the locks; update balances; insert postings; move lots (debits consume
soonest-expiring first, freed lots are queued and credits take from the queue in leg order,
the rest opens a lot at the leg's expiry). ``ledger_post()`` answers a used key before taking
any lock, locks, checks and updates each account in one conditional ``UPDATE``, and runs
the lot queue only when a leg debits a lot-tracked account (a transaction that frees no lot
merges its credits into their lots); the outcome is the same. The per-asset balance is
checked by the caller before, and by the deferred trigger at commit.
"""

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import DatabaseError, IntegrityError
from django.db import transaction as db_transaction
from django.db.models import F
from django.utils import timezone

from alliance.prepared import fetchone_prepared

from .errors import InsufficientBalance, LedgerInvariantError
from .models import Account, Lot, Posting, Transaction


class PreparedLeg(NamedTuple):
    """A leg as the engines write it. A tuple rather than a dataclass: the hot path builds
    seven per transaction and reads them three times."""

    leg: int
    account: Account
    amount: int
    expires_at: datetime | None
    floor: int = 0
    account_id: int = 0


@dataclass(frozen=True)
class Outcome:
    transaction_id: int
    created_at: datetime
    status: str  # "posted", "replayed" or "conflict"


# --- PostgreSQL -------------------------------------------------------------------------------

_SQLSTATE_INSUFFICIENT = "LB001"
_SQLSTATE_UNBALANCED = "LB002"
_SQLSTATE_RACE = "LB005"
_POST_SQL = ("SELECT txn_id, txn_created, outcome FROM ledger_post(%s::text, %s::text, %s::text, "
             "%s::text, %s::jsonb, %s::timestamptz, %s::jsonb)")


class IdempotencyRace(Exception):
    """Two first requests with one key met on the unique (client, key): this one gave up with
    everything it did. Asking again answers the replay (or the conflict)."""


def legs_json(legs: list[PreparedLeg]) -> str:
    """The legs as ``ledger_post()`` reads them. Written by hand rather than by ``json.dumps``
    (the values are integers and ISO dates, nothing to escape): it is a tenth of the client's
    work per transaction. A floor of 0 and no expiry are left out: the function reads a
    missing key as NULL, which means just that."""
    parts = []
    for leg in legs:
        extra = ""
        if leg.expires_at is not None:
            extra = f',"expires_at":"{leg.expires_at.isoformat()}"'
        if leg.floor:
            extra += f',"floor":{leg.floor}'
        parts.append(f'{{"leg":{leg.leg},"account":{leg.account_id},"amount":{leg.amount}{extra}}}')
    return "[" + ",".join(parts) + "]"


def post_sql(*, kind: str, client: str, key: str, fingerprint: str, metadata: dict,
             occurred_at: datetime, legs: list[PreparedLeg]) -> Outcome:
    params = [kind, client, key, fingerprint, json.dumps(metadata), occurred_at, legs_json(legs)]
    try:
        txn_id, created_at, status = fetchone_prepared(_POST_SQL, params)
    except DatabaseError as exc:
        cause = exc.__cause__
        sqlstate = getattr(cause, "sqlstate", None)
        detail = getattr(getattr(cause, "diag", None), "message_detail", None)
        if sqlstate == _SQLSTATE_INSUFFICIENT:
            raise InsufficientBalance(details={"account": _public_id(legs, detail)}) from None
        if sqlstate == _SQLSTATE_UNBALANCED:
            raise LedgerInvariantError(details={"asset": detail}) from None
        if sqlstate == _SQLSTATE_RACE:
            raise IdempotencyRace from None
        raise
    return Outcome(txn_id, created_at, status)


def _public_id(legs: list[PreparedLeg], account_pk: str | None) -> str | None:
    for leg in legs:
        if str(leg.account.pk) == account_pk:
            return leg.account.public_id
    return None


# --- Python (ORM) -----------------------------------------------------------------------------


def post_python(*, kind: str, client: str, key: str, fingerprint: str, metadata: dict,
                occurred_at: datetime, legs: list[PreparedLeg]) -> Outcome:
    bounded_ids = sorted({leg.account.pk for leg in legs if leg.account.bounded})
    # Prevents deadlocks: every writer locks bounded accounts in primary-key order.
    locked = {
        account.pk: account
        for account in Account.objects.filter(pk__in=bounded_ids)
        .order_by("pk").select_for_update(of=("self",), no_key=True)
    }

    existing = _existing(client, key)
    if existing is not None:
        return _replay_or_conflict(existing, fingerprint)
    try:
        with db_transaction.atomic():
            txn = Transaction.objects.create(
                kind=kind, client=client, idempotency_key=key, fingerprint=fingerprint,
                metadata=metadata, occurred_at=occurred_at, created_at=timezone.now(),
            )
    except IntegrityError:
        existing = _existing(client, key)
        if existing is None:
            raise
        return _replay_or_conflict(existing, fingerprint)

    deltas: dict[int, int] = defaultdict(int)
    floors: dict[int, int] = defaultdict(int)
    for leg in legs:
        deltas[leg.account.pk] += leg.amount
        floors[leg.account.pk] = max(floors[leg.account.pk], leg.floor)
    for pk in bounded_ids:
        if deltas[pk] < 0 and locked[pk].balance + deltas[pk] < floors[pk]:
            raise InsufficientBalance(details={"account": locked[pk].public_id})
    for pk in bounded_ids:
        if deltas[pk]:
            Account.objects.filter(pk=pk).update(balance=F("balance") + deltas[pk])

    Posting.objects.bulk_create([
        Posting(transaction=txn, leg=leg.leg, account=leg.account, asset_id=leg.account.asset_id,
                amount=leg.amount, expires_at=leg.expires_at)
        for leg in legs
    ])
    _move_lots(legs)
    return Outcome(txn.pk, txn.created_at, "posted")


def _existing(client: str, key: str) -> Transaction | None:
    return (Transaction.objects.filter(client=client, idempotency_key=key)
            .only("pk", "created_at", "fingerprint").first())


def _replay_or_conflict(existing: Transaction, fingerprint: str) -> Outcome:
    status = "replayed" if existing.fingerprint == fingerprint else "conflict"
    return Outcome(existing.pk, existing.created_at, status)


def _move_lots(legs: list[PreparedLeg]) -> None:
    assets = sorted({leg.account.asset_id for leg in legs if leg.account.tracks_lots})
    for asset_id in assets:
        queue: list[list] = []  # [expires_at, amount] freed by debits, in consumption order
        for leg in legs:
            if leg.account.asset_id != asset_id or leg.amount >= 0 or not leg.account.tracks_lots:
                continue
            need = -leg.amount
            for lot in Lot.objects.filter(account_id=leg.account.pk, remaining__gt=0).order_by(
                "expires_at", "pk"
            ):
                take = min(lot.remaining, need)
                Lot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
                queue.append([lot.expires_at, take])
                need -= take
                if need == 0:
                    break
            if need:
                raise LedgerInvariantError(details={"lots_short": leg.account.public_id})
        for leg in legs:
            if leg.account.asset_id != asset_id or leg.amount <= 0:
                continue
            left = leg.amount
            while left and queue:
                take = min(left, queue[0][1])
                if leg.account.tracks_lots:
                    _lot_add(leg.account.pk, queue[0][0], take)
                left -= take
                queue[0][1] -= take
                if not queue[0][1]:
                    queue.pop(0)
            if left and leg.account.tracks_lots:
                if leg.expires_at is None:
                    missing = {"lot_expiry_missing": leg.account.public_id}
                    raise LedgerInvariantError(details=missing)
                _lot_add(leg.account.pk, leg.expires_at, left)


def _lot_add(account_pk: int, expires_at: datetime, amount: int) -> None:
    updated = Lot.objects.filter(account_id=account_pk, expires_at=expires_at).update(
        remaining=F("remaining") + amount
    )
    if not updated:
        Lot.objects.create(account_id=account_pk, expires_at=expires_at, remaining=amount)
