"""Set-based posting: one journal transaction whose legs come from a SQL query (PostgreSQL).

The scheduled jobs touch every holder at once (the daily airdrop, point expiry); a Python loop
of ``transaction_post`` calls over a million holders would take hours. ``bulk_post`` is the
only other writer of postings besides the posting engines (``ledger.engine`` and the
``ledger_post()`` function of migration 0002), and it keeps their invariants:

* the legs of a transaction sum to zero per asset, each names an existing account, none is
  zero, a non-transferable asset's bounded legs all point one way (checked here before
  anything is written; the deferred ``ledger_posting_balanced`` trigger checks again at
  commit);
* bounded accounts are locked in primary-key order (so the job never deadlocks with the
  posting engine, which locks the same way) *before* the journal id is drawn, so ids order
  two transactions sharing an account as they committed (``verify_ledger`` replays lots in
  id order); balances are updated under the locks by one statement, in the same database
  transaction as the postings, and the table's CHECK refuses a bounded account below zero
  (``InsufficientBalance`` naming it);
* lots: debits from lot-tracked accounts consume soonest-expiring first, credits to
  lot-tracked accounts open (or add to) the lot of their ``expires_at``: the engines'
  algorithm, done with window functions. A transaction that both debits and credits
  lot-tracked accounts of one asset (lots travelling between holders) is refused: only the
  engines carry lots across, leg by leg;
* idempotency rests on the unique ``(client, idempotency_key)``: the same key posts once;
  a replay with the same request returns the original, another request raises
  ``IdempotencyConflict``;
* the journal stays append-only: rows are only inserted.

A transaction may carry at most ``MAX_LEGS`` legs (``Posting.leg`` is a smallint), so a job
over more holders posts several chunk transactions, each its own journal row under its own
key.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection
from django.db import transaction as db_transaction
from django.utils import timezone

from .errors import IdempotencyConflict, InsufficientBalance, LedgerInvariantError

# Posting.leg is a PositiveSmallIntegerField: legs 0 .. 32767.
MAX_LEGS = 32_768



@dataclass(frozen=True)
class BulkPosted:
    transaction_id: int
    legs: int
    replayed: bool


def _fingerprint(kind: str, metadata: dict) -> str:
    raw = json.dumps({"kind": kind, "metadata": metadata, "bulk": True}, sort_keys=True,
                     separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _one(cursor, sql: str, params=()) -> tuple | None:
    cursor.execute(sql, params)
    return cursor.fetchone()


def accounts_lock(*, ids_sql: str, params=()) -> int:
    """Lock the bounded accounts whose ids ``ids_sql`` selects, in primary-key order (the
    order every writer of the ledger uses, which is what prevents deadlocks); returns how
    many. Held until the surrounding database transaction ends."""
    with connection.cursor() as cursor:
        (count,) = _one(
            cursor,
            # ``= ANY(ARRAY(...))`` keeps the planner on the primary key: a join would hash
            # the whole account table for every chunk of a job.
            "SELECT count(*) FROM (SELECT a.id FROM ledger_account a "  # noqa: S608
            f"WHERE a.id = ANY(ARRAY({ids_sql})) AND a.bounded "
            "ORDER BY a.id FOR NO KEY UPDATE OF a) locked",
            params,
        )
    return count


def bulk_post(
    *,
    kind: str,
    client: str,
    idempotency_key: str,
    legs_sql: str,
    params=(),
    metadata: dict | None = None,
    occurred_at: datetime | None = None,
    lock_sql: str | None = None,
    lock_params=(),
) -> BulkPosted | None:
    """Post one balanced transaction whose legs ``legs_sql`` selects, set-based.

    ``legs_sql`` is a SELECT (trusted SQL written by a service, values as ``params``) with
    the columns ``ord`` (legs are numbered in this order), ``account_id``, ``amount``
    (minor units, positive raises the balance) and ``expires_at`` (the lot a credit to a
    lot-tracked account opens; NULL otherwise).

    Legs that depend on balances or lots (an airdrop capped at a holder's SV, the expired
    remainder of a wallet) must be read under the accounts' locks: pass ``lock_sql``, a
    SELECT of the ids of every bounded account the legs will name; those are locked in
    primary-key order before ``legs_sql`` runs. When ``legs_sql`` then selects no legs at all
    (what it would have moved is gone), nothing is written and the result is None.

    Runs in one database transaction (a savepoint inside the caller's). Raises
    ``LedgerInvariantError`` (unbalanced, unknown account, too many legs, lots that cannot
    move here), ``InsufficientBalance`` naming the account, ``IdempotencyConflict``.
    """
    if connection.vendor != "postgresql":
        raise LedgerInvariantError(details={"bulk_post": "PostgreSQL only"})
    if not client or not idempotency_key or len(idempotency_key) > 128:
        raise LedgerInvariantError(details={"idempotency_key": "required, at most 128 chars"})
    metadata = dict(metadata or {})
    occurred_at = occurred_at or timezone.now()
    fingerprint = _fingerprint(kind, metadata)
    with db_transaction.atomic(), connection.cursor() as cursor:
        if lock_sql is not None:
            _lock_into(cursor, lock_sql, lock_params)
        legs = _materialise(cursor, legs_sql, params)
        if not legs:
            return None
        lots = _validate(cursor, legs)
        if lock_sql is None:
            accounts_lock(ids_sql="SELECT account_id FROM ledger_bulk_legs WHERE bounded")
        else:
            _check_locked(cursor)

        cursor.execute(
            "INSERT INTO ledger_transaction (kind, client, idempotency_key, fingerprint, "
            "metadata, occurred_at, created_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s, now()) "
            "ON CONFLICT (client, idempotency_key) DO NOTHING RETURNING id",
            [kind, client, idempotency_key, fingerprint, json.dumps(metadata), occurred_at],
        )
        row = cursor.fetchone()
        if row is None:
            existing = _one(cursor, "SELECT id, fingerprint FROM ledger_transaction "
                                    "WHERE client = %s AND idempotency_key = %s",
                            [client, idempotency_key])
            if existing[1] != fingerprint:
                raise IdempotencyConflict(details={"transaction": existing[0]})
            return BulkPosted(existing[0], 0, True)
        (txn_id,) = row

        _update_balances(cursor)
        cursor.execute(
            "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount, "
            "expires_at) SELECT %s, leg, account_id, asset_id, amount, expires_at "
            "FROM ledger_bulk_legs ORDER BY leg",
            [txn_id],
        )
        if lots:
            _move_lots(cursor)
    return BulkPosted(txn_id, legs, False)


def _lock_into(cursor, lock_sql: str, params) -> None:
    cursor.execute("DROP TABLE IF EXISTS pg_temp.ledger_bulk_locked")
    cursor.execute("CREATE TEMP TABLE ledger_bulk_locked (id bigint PRIMARY KEY) ON COMMIT DROP")
    cursor.execute(
        "INSERT INTO ledger_bulk_locked SELECT id FROM ("  # noqa: S608
        "  SELECT a.id FROM ledger_account a "
        f"  WHERE a.id = ANY(ARRAY({lock_sql})) AND a.bounded "
        "  ORDER BY a.id FOR NO KEY UPDATE OF a) locked",
        params,
    )


def _check_locked(cursor) -> None:
    """Legs read under ``lock_sql``'s locks may only name accounts it locked: locking more
    now would break the primary-key order (and the reads would not have been under lock)."""
    stray = _one(cursor, "SELECT count(*) FROM ledger_bulk_legs l WHERE l.bounded AND NOT "
                         "EXISTS (SELECT 1 FROM ledger_bulk_locked k WHERE k.id = l.account_id)")
    if stray[0]:
        raise LedgerInvariantError(details={"legs": f"{stray[0]} name accounts lock_sql did "
                                                    "not lock"})


def _update_balances(cursor) -> None:
    """One statement, under the locks; the table's CHECK refuses a bounded account below
    zero, and only then is the account looked up to name it."""
    try:
        with db_transaction.atomic():
            cursor.execute(
                "UPDATE ledger_account a SET balance = a.balance + d.delta "
                "FROM (SELECT account_id, sum(amount)::bigint AS delta FROM ledger_bulk_legs "
                "      WHERE bounded GROUP BY account_id) d "
                "WHERE a.id = ANY(ARRAY(SELECT account_id FROM ledger_bulk_legs "
                "                        WHERE bounded)) "
                "AND a.id = d.account_id AND d.delta <> 0"
            )
    except IntegrityError:
        short = _one(
            cursor,
            "SELECT a.public_id FROM (SELECT account_id, sum(amount) AS delta "
            "  FROM ledger_bulk_legs WHERE bounded GROUP BY account_id) d "
            "CROSS JOIN LATERAL (SELECT x.id, x.public_id, x.balance FROM ledger_account x "
            "                     WHERE x.id = d.account_id LIMIT 1) a "
            "WHERE a.balance + d.delta < 0 ORDER BY a.id LIMIT 1",
        )
        raise InsufficientBalance(details={"account": short[0] if short else None}) from None


def _materialise(cursor, legs_sql: str, params) -> int:
    cursor.execute("DROP TABLE IF EXISTS pg_temp.ledger_bulk_legs")
    cursor.execute(
        "CREATE TEMP TABLE ledger_bulk_legs (leg int PRIMARY KEY, account_id bigint, "
        "asset_id bigint, amount bigint, expires_at timestamptz, bounded boolean, "
        "tracks_lots boolean) ON COMMIT DROP"
    )
    cursor.execute(
        "INSERT INTO ledger_bulk_legs SELECT (row_number() OVER (ORDER BY s.ord) - 1)::int, "  # noqa: S608
        "s.account_id, a.asset_id, s.amount, s.expires_at, a.bounded, a.tracks_lots "
        f"FROM ({legs_sql}) s LEFT JOIN LATERAL ("
        # LATERAL ... LIMIT 1: one index lookup per leg, never a hash of every account.
        "  SELECT x.asset_id, x.bounded, x.tracks_lots FROM ledger_account x "
        "   WHERE x.id = s.account_id LIMIT 1) a ON true",
        params,
    )
    legs = cursor.rowcount
    cursor.execute("ANALYZE ledger_bulk_legs")
    return legs


def _validate(cursor, legs: int) -> bool:
    """Refuse legs that break a ledger rule; returns whether any leg touches lots."""
    if legs < 2:
        raise LedgerInvariantError(details={"legs": "a transaction needs at least two legs"})
    if legs > MAX_LEGS:
        raise LedgerInvariantError(details={"legs": f"at most {MAX_LEGS} per transaction"})
    unknown, zero, lots = _one(
        cursor,
        "SELECT count(*) FILTER (WHERE asset_id IS NULL), "
        "count(*) FILTER (WHERE amount IS NULL OR amount = 0), "
        "coalesce(bool_or(tracks_lots), false) FROM ledger_bulk_legs",
    )
    if unknown:
        raise LedgerInvariantError(details={"legs": f"{unknown} name an unknown account"})
    if zero:
        raise LedgerInvariantError(details={"legs": f"{zero} have a zero amount"})
    unbalanced = _one(
        cursor,
        "SELECT asset_id FROM ledger_bulk_legs GROUP BY asset_id HAVING sum(amount) <> 0 "
        "ORDER BY asset_id LIMIT 1",
    )
    if unbalanced:
        raise LedgerInvariantError(details={"unbalanced_assets": [unbalanced[0]]})
    # Share value never moves between holders: its bounded legs all point the same way.
    moving = _one(
        cursor,
        "SELECT s.code FROM ledger_bulk_legs l JOIN ledger_asset s ON s.id = l.asset_id "
        "WHERE NOT s.transferable AND l.bounded GROUP BY s.code "
        "HAVING bool_or(l.amount > 0) AND bool_or(l.amount < 0) LIMIT 1",
    )
    if moving:
        raise LedgerInvariantError(details={"non_transferable": moving[0]})
    if not lots:
        return False
    carried = _one(
        cursor,
        "SELECT asset_id FROM ledger_bulk_legs WHERE tracks_lots GROUP BY asset_id "
        "HAVING bool_or(amount > 0) AND bool_or(amount < 0) LIMIT 1",
    )
    if carried:
        raise LedgerInvariantError(details={"lots": "lots move between lot-tracked accounts "
                                                    "only through transaction_post"})
    undated = _one(
        cursor,
        "SELECT a.public_id FROM ledger_bulk_legs l "
        "JOIN ledger_account a ON a.id = l.account_id "
        "WHERE l.tracks_lots AND l.amount > 0 AND l.expires_at IS NULL LIMIT 1",
    )
    if undated:
        raise LedgerInvariantError(details={"lot_expiry_missing": undated[0]})
    return True


def _check_lots(cursor) -> None:
    # A lot-tracked account's lots sum to its balance, so this holds whenever the balance
    # does; checked all the same, as the engines do, so drifted lots cannot go negative.
    lots_short = _one(
        cursor,
        "SELECT a.public_id FROM ("
        "  SELECT account_id, -sum(amount) AS need FROM ledger_bulk_legs "
        "   WHERE tracks_lots AND amount < 0 GROUP BY account_id) n "
        "CROSS JOIN LATERAL (SELECT x.id, x.public_id FROM ledger_account x "
        "                     WHERE x.id = n.account_id LIMIT 1) a "
        "LEFT JOIN LATERAL (SELECT sum(remaining) AS held FROM ledger_lot "
        "                   WHERE account_id = n.account_id) l ON true "
        "WHERE coalesce(l.held, 0) < n.need ORDER BY a.id LIMIT 1",
    )
    if lots_short:
        raise LedgerInvariantError(details={"lots_short": lots_short[0]})


def _move_lots(cursor) -> None:
    _check_lots(cursor)
    # Debits: each account's need taken from its lots soonest-expiring first (expiry dates
    # are unique per account, the id breaks ties as the engines' ORDER BY does).
    cursor.execute(
        "WITH need AS ("
        "  SELECT account_id, -sum(amount) AS need FROM ledger_bulk_legs "
        "   WHERE tracks_lots AND amount < 0 GROUP BY account_id), "
        "ordered AS ("
        "  SELECT l.id, l.remaining, n.need, sum(l.remaining) OVER ("
        "         PARTITION BY n.account_id ORDER BY l.expires_at, l.id) AS upto "
        "    FROM need n CROSS JOIN LATERAL ("
        "         SELECT id, expires_at, remaining FROM ledger_lot "
        "          WHERE account_id = n.account_id AND remaining > 0) l) "
        "UPDATE ledger_lot l SET remaining = l.remaining "
        "       - least(o.remaining, o.need - (o.upto - o.remaining)) "
        "  FROM ordered o WHERE l.id = ANY(ARRAY(SELECT id FROM ordered)) "
        "   AND l.id = o.id AND o.upto - o.remaining < o.need"
    )
    # Credits: no lot-tracked debit of the same asset in this transaction (refused above),
    # so nothing is carried over and each credit opens the lot of its own expiry.
    cursor.execute(
        "INSERT INTO ledger_lot (account_id, expires_at, remaining) "
        "SELECT account_id, expires_at, sum(amount) FROM ledger_bulk_legs "
        "WHERE tracks_lots AND amount > 0 GROUP BY account_id, expires_at "
        "ON CONFLICT (account_id, expires_at) "
        "DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining"
    )
