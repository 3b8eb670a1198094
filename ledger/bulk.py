"""Set-based posting: journal transactions whose legs come from one SQL query (PostgreSQL).

The scheduled jobs touch every holder at once (the daily airdrop, point expiry); a Python loop
of ``transaction_post`` calls over a million holders would take hours. ``bulk_post_many`` (and
``bulk_post``, its one-transaction form) is the only other writer of postings besides the
posting engines (``ledger.engine`` and the ``ledger_post()`` function of migration 0002), and it
keeps their invariants:

* the legs of each transaction sum to zero per asset, each names an existing account, none is
  zero, a non-transferable asset's bounded legs all point one way (checked here before the
  journal is written; the deferred ``ledger_posting_balanced`` trigger checks each
  transaction again at commit);
* bounded accounts are locked in primary-key order (so the job never deadlocks with the
  posting engine, which locks the same way) *before* the journal ids are drawn, so ids order
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
over more holders posts several transactions, each its own journal row under its own key.
``bulk_post_many`` writes a batch of them with one statement per step (lock, legs, journal,
balances, postings, lots) rather than one round of statements per transaction: the work per
leg is the same, the fixed cost of each step is paid once per batch.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection
from django.db import transaction as db_transaction
from django.utils import timezone

from .errors import IdempotencyConflict, InsufficientBalance, LedgerInvariantError

# Posting.leg is a PositiveSmallIntegerField: legs 0 .. 32767.
MAX_LEGS = 32_768

# The sorts, hashes and windows of a batch of a few hundred thousand legs: enough to keep
# them in memory (a spilled sort of the legs costs more than the statement around it). Set
# for the batch's database transaction only.
BATCH_WORK_MEM = "256MB"


@dataclass(frozen=True)
class BulkPosted:
    transaction_id: int
    legs: int
    replayed: bool


@dataclass(frozen=True)
class BulkTransaction:
    """One journal transaction of a ``bulk_post_many`` batch: its key and its metadata."""

    idempotency_key: str
    metadata: dict = field(default_factory=dict)


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
            # the whole account table.
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

    ``legs_sql`` selects the columns ``ord``, ``account_id``, ``amount`` and ``expires_at``
    (see ``bulk_post_many``, of which this is the one-transaction form). Returns None when
    ``legs_sql`` selects no legs (nothing is written)."""
    (posted,) = bulk_post_many(
        kind=kind, client=client,
        transactions=[BulkTransaction(idempotency_key, dict(metadata or {}))],
        legs_sql=f"SELECT 0 AS txn, s.ord, s.account_id, s.amount, s.expires_at "  # noqa: S608
                 f"FROM ({legs_sql}) s",
        params=params, occurred_at=occurred_at, lock_sql=lock_sql, lock_params=lock_params,
    )
    return posted


def bulk_post_many(
    *,
    kind: str,
    client: str,
    transactions: Sequence[BulkTransaction],
    legs_sql: str,
    params=(),
    occurred_at: datetime | None = None,
    lock_sql: str | None = None,
    lock_params=(),
    under_locks: Callable[[Any], None] | None = None,
) -> list[BulkPosted | None]:
    """Post a batch of balanced transactions whose legs ``legs_sql`` selects, set-based.

    ``legs_sql`` is a SELECT (trusted SQL written by a service, values as ``params``) with
    the columns ``txn`` (the leg's transaction: an index into ``transactions``), ``ord``
    (legs of a transaction are numbered in this order), ``account_id``, ``amount`` (minor
    units, positive raises the balance) and ``expires_at`` (the lot a credit to a lot-tracked
    account opens; NULL otherwise).

    Legs that depend on balances or lots (an airdrop capped at a holder's SV, the expired
    remainder of a wallet) must be read under the accounts' locks: pass ``lock_sql``, a
    SELECT of the ids of every bounded account the legs will name; those are locked in
    primary-key order before ``legs_sql`` runs, and ``legs_sql`` may read the temporary table
    ``ledger_bulk_locked (id, asset_id, balance)``: each locked account's balance as read
    under its lock. ``under_locks(cursor)``, if given, runs right after the locks are taken
    and before the legs are read: for what the caller must read under the same locks (the
    expiry counts the lots it will empty), without locking twice.

    Returns, per transaction of ``transactions``, what was posted (``replayed`` when its key
    had posted before) or None when ``legs_sql`` selected no legs for it (nothing is written
    for it: what it would have moved is gone). Runs in one database transaction (a savepoint
    inside the caller's). Raises ``LedgerInvariantError`` (unbalanced, unknown account, too
    many legs, lots that cannot move here), ``InsufficientBalance`` naming the account,
    ``IdempotencyConflict``.
    """
    if connection.vendor != "postgresql":
        raise LedgerInvariantError(details={"bulk_post": "PostgreSQL only"})
    keys = [t.idempotency_key for t in transactions]
    if not client or not keys or any(not k or len(k) > 128 for k in keys):
        raise LedgerInvariantError(details={"idempotency_key": "required, at most 128 chars"})
    if len(set(keys)) != len(keys):
        raise LedgerInvariantError(details={"idempotency_key": "one key per transaction"})
    occurred_at = occurred_at or timezone.now()
    results: list[BulkPosted | None] = [None] * len(transactions)
    with db_transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{BATCH_WORK_MEM}'")
        # Compiling each statement of a batch (0.1-0.2 s with inlining and optimisation)
        # costs more than it saves on statements that are mostly index and heap work.
        cursor.execute("SET LOCAL jit = off")
        if lock_sql is not None:
            _lock_into(cursor, lock_sql, lock_params)
            if under_locks is not None:
                under_locks(cursor)
        if not _materialise(cursor, legs_sql, params, locked=lock_sql is not None):
            return results
        legs, lots = _validate(cursor, len(transactions))
        if lock_sql is None:
            accounts_lock(ids_sql="SELECT account_id FROM ledger_bulk_legs WHERE bounded")

        new = _journal_insert(cursor, kind, client, transactions, sorted(legs), occurred_at)
        for txn in legs:
            if txn in new:
                results[txn] = BulkPosted(new[txn], legs[txn], False)
        replayed = _replays(cursor, kind, client, transactions, [t for t in legs if t not in new])
        for txn, transaction_id in replayed.items():
            results[txn] = BulkPosted(transaction_id, 0, True)
        if not new:
            return results
        if replayed:
            cursor.execute("DELETE FROM ledger_bulk_legs WHERE txn = ANY(%s)", [list(replayed)])

        _update_balances(cursor)
        cursor.execute(
            "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount, "
            "expires_at) SELECT t.id, l.leg, l.account_id, l.asset_id, l.amount, l.expires_at "
            "FROM ledger_bulk_legs l "
            "JOIN unnest(%s::int[], %s::bigint[]) AS t(txn, id) ON t.txn = l.txn",
            [list(new), list(new.values())],
        )
        if lots:
            _move_lots(cursor)
    return results


def _journal_insert(cursor, kind: str, client: str, transactions: Sequence[BulkTransaction],
                    txns: list[int], occurred_at: datetime) -> dict[int, int]:
    """Insert the journal rows of ``txns`` (in that order, so their ids follow it) under the
    idempotency constraint; returns {txn: transaction id} for the rows inserted now."""
    cursor.execute(
        "INSERT INTO ledger_transaction (kind, client, idempotency_key, fingerprint, metadata, "
        "occurred_at, created_at) "
        "SELECT %s, %s, u.key, u.fingerprint, u.metadata::jsonb, %s, now() "
        "FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY "
        "     AS u(key, fingerprint, metadata, n) ORDER BY u.n "
        "ON CONFLICT (client, idempotency_key) DO NOTHING RETURNING id, idempotency_key",
        [kind, client, occurred_at,
         [transactions[t].idempotency_key for t in txns],
         [_fingerprint(kind, transactions[t].metadata) for t in txns],
         [json.dumps(transactions[t].metadata) for t in txns]],
    )
    txn_of = {transactions[t].idempotency_key: t for t in txns}
    return dict(sorted((txn_of[key], transaction_id)
                       for transaction_id, key in cursor.fetchall()))


def _replays(cursor, kind: str, client: str, transactions: Sequence[BulkTransaction],
             txns: list[int]) -> dict[int, int]:
    """The transactions of ``txns`` whose key had posted: {txn: its transaction id}, or
    ``IdempotencyConflict`` when that was another request."""
    if not txns:
        return {}
    txn_of = {transactions[t].idempotency_key: t for t in txns}
    cursor.execute("SELECT id, idempotency_key, fingerprint FROM ledger_transaction "
                   "WHERE client = %s AND idempotency_key = ANY(%s)", [client, list(txn_of)])
    replayed = {}
    for transaction_id, key, fingerprint in cursor.fetchall():
        if fingerprint != _fingerprint(kind, transactions[txn_of[key]].metadata):
            raise IdempotencyConflict(details={"transaction": transaction_id})
        replayed[txn_of[key]] = transaction_id
    return replayed


def _lock_into(cursor, lock_sql: str, params) -> None:
    """Lock the bounded accounts ``lock_sql`` selects in primary-key order, and keep what the
    legs need of them (read under the lock) in ``ledger_bulk_locked``."""
    cursor.execute("DROP TABLE IF EXISTS pg_temp.ledger_bulk_locked")
    cursor.execute("CREATE TEMP TABLE ledger_bulk_locked (id bigint PRIMARY KEY, "
                   "asset_id bigint, tracks_lots boolean, balance bigint) ON COMMIT DROP")
    cursor.execute(
        "INSERT INTO ledger_bulk_locked SELECT * FROM ("  # noqa: S608
        "  SELECT a.id, a.asset_id, a.tracks_lots, a.balance FROM ledger_account a "
        f"  WHERE a.id = ANY(ARRAY({lock_sql})) AND a.bounded "
        "  ORDER BY a.id FOR NO KEY UPDATE OF a) locked",
        params,
    )
    cursor.execute("ANALYZE ledger_bulk_locked")


def _materialise(cursor, legs_sql: str, params, *, locked: bool) -> int:
    """The legs, numbered per transaction, with their accounts' asset and kind of balance:
    from ``ledger_bulk_locked`` for the accounts locked there (read once, under the lock),
    from the account table for the others (issuance and sink accounts, and bounded accounts
    that ``lock_sql`` should have named: ``stray``, which ``_validate`` refuses)."""
    cursor.execute("DROP TABLE IF EXISTS pg_temp.ledger_bulk_legs")
    cursor.execute(
        "CREATE TEMP TABLE ledger_bulk_legs (txn int, leg int, account_id bigint, "
        "asset_id bigint, amount bigint, expires_at timestamptz, bounded boolean, "
        "tracks_lots boolean, stray boolean) ON COMMIT DROP"
    )
    if locked:
        accounts = (
            "LEFT JOIN ledger_bulk_locked k ON k.id = s.account_id "
            # LATERAL ... LIMIT 1: one index lookup per leg not locked (a few), never a hash
            # of every account.
            "LEFT JOIN LATERAL (SELECT x.asset_id, x.bounded, x.tracks_lots "
            "  FROM ledger_account x WHERE k.id IS NULL AND x.id = s.account_id LIMIT 1) a "
            "  ON true"
        )
        columns = ("coalesce(k.asset_id, a.asset_id), s.amount, s.expires_at, "
                   "k.id IS NOT NULL OR a.bounded, coalesce(k.tracks_lots, a.tracks_lots), "
                   "coalesce(a.bounded, false)")
    else:
        accounts = ("LEFT JOIN LATERAL (SELECT x.asset_id, x.bounded, x.tracks_lots "
                    "  FROM ledger_account x WHERE x.id = s.account_id LIMIT 1) a ON true")
        columns = "a.asset_id, s.amount, s.expires_at, a.bounded, a.tracks_lots, false"
    cursor.execute(
        "INSERT INTO ledger_bulk_legs SELECT s.txn, "  # noqa: S608
        "(row_number() OVER (PARTITION BY s.txn ORDER BY s.ord) - 1)::int, s.account_id, "
        f"{columns} FROM ({legs_sql}) s {accounts}",
        params,
    )
    legs = cursor.rowcount
    cursor.execute("ANALYZE ledger_bulk_legs")
    return legs


def _validate(cursor, transactions: int) -> tuple[dict[int, int], bool]:
    """Refuse legs that break a ledger rule; returns {txn: legs} and whether any leg touches
    lots. One pass over the legs, grouped by transaction and asset."""
    cursor.execute(
        "SELECT l.txn, l.asset_id, count(*), "
        "count(*) FILTER (WHERE l.amount IS NULL OR l.amount = 0), "
        "count(*) FILTER (WHERE l.stray), "
        "coalesce(sum(l.amount), 0) <> 0, "
        # Share value never moves between holders: its bounded legs all point one way.
        "NOT bool_and(s.transferable) AND bool_or(l.bounded AND l.amount > 0) "
        "  AND bool_or(l.bounded AND l.amount < 0), "
        "bool_or(l.tracks_lots), "
        "bool_or(l.tracks_lots AND l.amount > 0) AND bool_or(l.tracks_lots AND l.amount < 0), "
        "bool_or(l.tracks_lots AND l.amount > 0 AND l.expires_at IS NULL) "
        "FROM ledger_bulk_legs l LEFT JOIN ledger_asset s ON s.id = l.asset_id "
        "GROUP BY l.txn, l.asset_id ORDER BY l.txn, l.asset_id"
    )
    rows = cursor.fetchall()
    legs: dict[int, int] = {}
    for txn, _asset, count, *_checks in rows:
        if txn is None or not 0 <= txn < transactions:
            raise LedgerInvariantError(details={"legs": f"transaction {txn} is not in the batch"})
        legs[txn] = legs.get(txn, 0) + count
    for count in legs.values():
        if count < 2:
            raise LedgerInvariantError(details={"legs": "a transaction needs at least two legs"})
        if count > MAX_LEGS:
            raise LedgerInvariantError(details={"legs": f"at most {MAX_LEGS} per transaction"})
    lots = False
    stray = 0
    for txn, asset, count, zero, unlocked, unbalanced, moving, tracked, carried, undated in rows:
        if asset is None:
            raise LedgerInvariantError(details={"legs": f"{count} name an unknown account"})
        if zero:
            raise LedgerInvariantError(details={"legs": f"{zero} have a zero amount"})
        if unbalanced:
            raise LedgerInvariantError(details={"unbalanced_assets": [asset]})
        if moving:
            raise LedgerInvariantError(details={"non_transferable": _asset_code(cursor, asset)})
        if carried:
            raise LedgerInvariantError(details={"lots": "lots move between lot-tracked accounts "
                                                        "only through transaction_post"})
        if undated:
            raise LedgerInvariantError(details={"lot_expiry_missing": _undated(cursor, txn)})
        stray += unlocked
        lots = lots or tracked
    if stray:
        # Locking more now would break the primary-key order (and the reads would not have
        # been under lock).
        raise LedgerInvariantError(details={"legs": f"{stray} name accounts lock_sql did "
                                                    "not lock"})
    return legs, lots


def _asset_code(cursor, asset_id: int) -> str:
    return _one(cursor, "SELECT code FROM ledger_asset WHERE id = %s", [asset_id])[0]


def _undated(cursor, txn: int) -> str:
    return _one(cursor, "SELECT a.public_id FROM ledger_bulk_legs l "
                        "JOIN ledger_account a ON a.id = l.account_id WHERE l.txn = %s "
                        "AND l.tracks_lots AND l.amount > 0 AND l.expires_at IS NULL LIMIT 1",
                [txn])[0]


def _update_balances(cursor) -> None:
    """One statement, under the locks; the table's CHECK refuses a bounded account below
    zero, and only then is the account looked up to name it."""
    try:
        with db_transaction.atomic():
            # Each account by its primary key, in key order: the pages of the accounts are
            # visited once each, in turn. A hash join (the planner's choice for a few hundred
            # thousand rows) reads the whole account table, or updates in hash order.
            cursor.execute("SET LOCAL enable_hashjoin = off")
            cursor.execute("SET LOCAL enable_mergejoin = off")
            cursor.execute(
                "UPDATE ledger_account a SET balance = a.balance + d.delta "
                "FROM (SELECT account_id, sum(amount)::bigint AS delta FROM ledger_bulk_legs "
                "      WHERE bounded GROUP BY account_id HAVING sum(amount) <> 0 "
                "      ORDER BY account_id) d "
                "WHERE a.id = d.account_id"
            )
            cursor.execute("SET LOCAL enable_hashjoin = on")
            cursor.execute("SET LOCAL enable_mergejoin = on")
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


def _move_lots(cursor) -> None:
    """Debits take each account's need from its lots soonest-expiring first (expiry dates
    are unique per account, the id breaks ties as the engines' ORDER BY does); an account
    whose lots cannot cover its need (lots drifted from the balance) is refused, naming it.
    Credits open the lot of their own expiry: no lot-tracked debit of the same asset shares
    their transaction (refused by ``_validate``), so nothing is carried over."""
    short = _one(
        cursor,
        "WITH need AS ("
        "  SELECT account_id, -sum(amount) AS need FROM ledger_bulk_legs "
        "   WHERE tracks_lots AND amount < 0 GROUP BY account_id), "
        "ordered AS ("
        "  SELECT l.id, n.account_id, n.need, l.remaining, sum(l.remaining) OVER ("
        "         PARTITION BY l.account_id ORDER BY l.expires_at, l.id) AS upto "
        "    FROM need n JOIN ledger_lot l ON l.account_id = n.account_id "
        "   WHERE l.remaining > 0), "
        "taken AS ("
        "  SELECT id, account_id, least(remaining, need - (upto - remaining)) AS take "
        "    FROM ordered WHERE upto - remaining < need), "
        "moved AS ("
        "  UPDATE ledger_lot l SET remaining = l.remaining - t.take FROM taken t "
        "   WHERE l.id = t.id RETURNING t.account_id, t.take) "
        "SELECT a.public_id FROM need n "
        "LEFT JOIN (SELECT account_id, sum(take) AS taken FROM moved GROUP BY account_id) m "
        "       ON m.account_id = n.account_id "
        "CROSS JOIN LATERAL (SELECT x.public_id FROM ledger_account x "
        "                     WHERE x.id = n.account_id LIMIT 1) a "
        "WHERE coalesce(m.taken, 0) < n.need ORDER BY n.account_id LIMIT 1",
    )
    if short:
        raise LedgerInvariantError(details={"lots_short": short[0]})
    cursor.execute(
        "INSERT INTO ledger_lot (account_id, expires_at, remaining) "
        "SELECT account_id, expires_at, sum(amount) FROM ledger_bulk_legs "
        "WHERE tracks_lots AND amount > 0 GROUP BY account_id, expires_at "
        "ON CONFLICT (account_id, expires_at) "
        "DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining"
    )
