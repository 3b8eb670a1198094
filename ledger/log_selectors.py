"""Reads of the transparency log: checkpoints, proofs, receipts, witness keys, and the journal
rows that leaves are made of.

Proofs read O(log n) stored hashes in two queries: the proof algorithms of ``ledger.merkle``
call ``subtree(level, index)`` in an order that does not depend on the hashes, so one dry run
names every hash needed, one fetch gets them, and the real run computes the proof.
"""

import base64
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from django.conf import settings
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet

from alliance.errors import NotFound

from . import log_format, merkle, note
from .log_errors import (
    CheckpointNotFound,
    LogInconsistent,
    NoCheckpointYet,
    NotAnchoredYet,
    ProofRangeError,
)
from .models import (
    Account,
    Asset,
    Checkpoint,
    Cosignature,
    LogLeaf,
    LogNode,
    Transaction,
    WitnessKey,
)
from .verify import RECEIPT_FORMAT

T = TypeVar("T")
INT64_MAX = 2**63 - 1
# SQLite allows 32,766 host parameters per statement; PostgreSQL takes one array.
_ID_CHUNK = 20_000


# --- the journal, as leaves see it --------------------------------------------------------


@dataclass
class JournalEntry:
    """What a leaf is made of: one transaction and its postings in leg order."""

    transaction_id: int
    kind: str
    time: str  # log_format.encode_time(created_at)
    metadata_text: str | None
    # (account public id, asset code, amount, account kind)
    postings: list[tuple[str, str, int, str]]

    def leaf_document(self) -> dict:
        return log_format.leaf_document(
            transaction_id=self.transaction_id,
            kind=self.kind,
            time=self.time,
            postings=[p[:3] for p in self.postings],
            metadata_sha256=log_format.metadata_digest(self.metadata_text),
        )

    def leaf_bytes(self, *, reference: bool = False) -> bytes:
        return log_format.leaf_bytes(self.leaf_document(), reference=reference)


def _time(value) -> str:
    """The leaf's time: PostgreSQL already formats it (``transaction_columns``); SQLite hands
    back a naive datetime in UTC."""
    if isinstance(value, str):
        return value
    return log_format.encode_time(value if value.tzinfo else value.replace(tzinfo=UTC))


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


@contextmanager
def raw_cursor():
    """A cursor for the log's bulk reads and writes. On PostgreSQL a psycopg cursor with
    server-side binding on Django's own connection (so inside the same transaction): id
    arrays then travel as one binary parameter instead of being spelled out as SQL text."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _in_ids(column: str, ids: Sequence[int]) -> tuple[str, list]:
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def transaction_columns() -> str:
    """``id, kind, time, metadata text`` of ``ledger_transaction t``. PostgreSQL writes the
    time exactly as ``log_format.encode_time`` does, sparing a datetime per leaf."""
    if connection.vendor == "postgresql":
        return ("t.id, t.kind, to_char(t.created_at AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), CAST(t.metadata AS text)")
    return "t.id, t.kind, t.created_at, CAST(t.metadata AS text)"


_POSTINGS_SQL = (
    "SELECT p.transaction_id, p.account_id, p.asset_id, p.amount FROM ledger_posting p "
    "WHERE {where} ORDER BY p.transaction_id, p.leg"
)


def _execute(cursor, sql: str, params: list) -> None:
    # Integer rows come back faster in PostgreSQL's binary format.
    if connection.vendor == "postgresql":
        cursor.execute(sql, params, binary=True)
    else:
        cursor.execute(sql, params)


def _accounts(ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """``{account id: (public id, kind)}``; an account missing from the database is absent."""
    found: dict[int, tuple[str, str]] = {}
    with raw_cursor() as cursor:
        for chunk in _chunks(sorted(ids)):
            where, params = _in_ids("id", chunk)
            cursor.execute(f"SELECT id, public_id, kind FROM ledger_account WHERE {where}",  # noqa: S608
                           params)
            found.update((pk, (public_id, kind)) for pk, public_id, kind in cursor.fetchall())
    return found


def journal_entries_from_rows(rows: Sequence[tuple]) -> list[JournalEntry]:
    """Attach postings to transaction rows ``(id, kind, time, metadata_text)``.

    A transaction whose postings were deleted comes back with fewer (or none), one whose
    account or asset row is gone names it as missing: the leaf rebuilt from it then no longer
    hashes to the stored one, which is the point. Accounts and asset codes are looked up once
    per batch rather than joined onto every posting."""
    entries = [JournalEntry(row[0], row[1], _time(row[2]), row[3], []) for row in rows]
    by_id = {entry.transaction_id: entry for entry in entries}
    postings: list[tuple] = []
    with raw_cursor() as cursor:
        for chunk in _chunks(list(by_id)):
            where, params = _in_ids("p.transaction_id", chunk)
            _execute(cursor, _POSTINGS_SQL.format(where=where), params)
            postings += cursor.fetchall()
    accounts = _accounts({row[1] for row in postings})
    codes = dict(Asset.objects.values_list("pk", "code"))
    for txn_id, account_id, asset_id, amount in postings:
        public_id, kind = accounts.get(account_id) or (f"missing:{account_id}", "")
        code = codes.get(asset_id) or f"missing:{asset_id}"
        by_id[txn_id].postings.append((public_id, code, amount, kind))
    return entries


def journal_entries(transaction_ids: Sequence[int]) -> dict[int, JournalEntry]:
    """The journal entries of these transactions, by id (missing ids are left out)."""
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        for chunk in _chunks(list(transaction_ids)):
            where, params = _in_ids("t.id", chunk)
            cursor.execute(
                f"SELECT {transaction_columns()} FROM ledger_transaction t "  # noqa: S608
                f"WHERE {where}",  # placeholders only; the values travel as parameters
                params,
            )
            rows += cursor.fetchall()
    return {entry.transaction_id: entry for entry in journal_entries_from_rows(rows)}


def unlogged_transactions(
    *, recorded_since: datetime | None, after_id: int | None, limit: int
) -> list[tuple]:
    """Committed transactions without a log index, in id order: ``(id, kind, time,
    metadata_text)``. ``recorded_since`` bounds the scan (see ``Checkpoint.horizon``)."""
    with connection.cursor() as cursor:
        low = after_id + 1 if after_id is not None else None
        if low is None and recorded_since is not None:
            cursor.execute("SELECT MIN(id) FROM ledger_transaction WHERE created_at >= %s",
                           [recorded_since])
            (low,) = cursor.fetchone()
            if low is None:
                return []
        where, params = [], []
        if low is not None:
            # Said twice so the anti-join starts both indexes at ``low``, not at leaf 0.
            where.append("t.id >= %s")
            params.append(low)
            logged = ("NOT EXISTS (SELECT 1 FROM ledger_logleaf l WHERE l.transaction_id = t.id "
                      "AND l.transaction_id >= %s)")
            params.append(low)
        else:
            logged = "NOT EXISTS (SELECT 1 FROM ledger_logleaf l WHERE l.transaction_id = t.id)"
        where.append(logged)
        if recorded_since is not None:
            where.append("t.created_at >= %s")
            params.append(recorded_since)
        params.append(limit)
        cursor.execute(
            f"SELECT {transaction_columns()} FROM ledger_transaction t "  # noqa: S608
            f"WHERE {' AND '.join(where)} ORDER BY t.id LIMIT %s",  # fixed clauses only
            params,
        )
        return cursor.fetchall()


# --- stored tree hashes -------------------------------------------------------------------


def _subtrees_and_size(
    pairs: Iterable[tuple[int, int]],
) -> tuple[dict[tuple[int, int], bytes], int]:
    """Stored perfect-subtree hashes by ``(level, position)`` (level 0: the leaf hashes; pairs
    not stored are absent) and the log's size, in one round trip on PostgreSQL."""
    wanted: dict[int, set[int]] = defaultdict(set)
    for level, position in pairs:
        wanted[level].add(position)
    if connection.vendor == "postgresql":
        leaves = sorted(wanted.pop(0, ()))
        levels = [level for level, positions in wanted.items() for _ in positions]
        positions = [position for ps in wanted.values() for position in ps]
        with raw_cursor() as cursor:
            cursor.execute(
                "SELECT 0, log_index, leaf_hash FROM ledger_logleaf WHERE log_index = ANY(%s) "
                "UNION ALL SELECT n.level, n.position, n.hash FROM ledger_lognode n "
                "JOIN unnest(%s::int[], %s::bigint[]) AS w(level, position) "
                "ON n.level = w.level AND n.position = w.position "
                "UNION ALL SELECT -1, COALESCE(MAX(size), 0), NULL FROM ledger_checkpoint",
                [leaves, levels, positions],
            )
            rows = cursor.fetchall()
        size = next(position for level, position, _value in rows if level == -1)
        return {(level, position): bytes(value)
                for level, position, value in rows if level >= 0}, size
    found: dict[tuple[int, int], bytes] = {}
    if wanted.get(0):
        for index, value in LogLeaf.objects.filter(index__in=wanted.pop(0)).values_list(
            "index", "leaf_hash"
        ):
            found[(0, index)] = bytes(value)
    if wanted:
        condition = Q()
        for level, positions in wanted.items():
            condition |= Q(level=level, position__in=positions)
        for level, position, value in LogNode.objects.filter(condition).values_list(
            "level", "position", "hash"
        ):
            found[(level, position)] = bytes(value)
    return found, log_size()


def subtrees_get(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Stored perfect-subtree hashes by ``(level, position)``; level 0 are the leaf hashes.
    Pairs not stored are absent from the answer."""
    return _subtrees_and_size(pairs)[0]


def with_stored_subtrees(compute: Callable[[merkle.SubtreeFn], T], *, size: int = 0) -> T:
    """Run a proof or root computation over the stored tree of (at least) ``size`` leaves in
    one round trip; ``ProofRangeError`` if the log is smaller."""
    needed: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        needed.append((level, index))
        return bytes(merkle.HASH_SIZE)

    compute(record)
    known, current = _subtrees_and_size(needed)
    if size > current:
        raise ProofRangeError(details={"size": size, "log_size": current})
    missing = [pair for pair in needed if pair not in known]
    if missing:
        raise LogInconsistent(details={"missing_subtrees": missing[:10]})
    return compute(lambda level, index: known[(level, index)])


def frontier_pairs(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees a tree of ``size`` leaves decomposes into, largest first: all
    that appending needs, and all the root needs."""
    pairs = []
    offset = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            pairs.append((level, offset >> level))
            offset += 1 << level
    return pairs


# --- checkpoints --------------------------------------------------------------------------


def checkpoint_latest() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-size").first()


def checkpoint_latest_get() -> Checkpoint:
    latest = checkpoint_latest()
    if latest is None:
        raise NoCheckpointYet()
    return latest


def log_size() -> int:
    latest = Checkpoint.objects.order_by("-size").values_list("size", flat=True).first()
    return latest or 0


def checkpoint_get(*, size: int) -> Checkpoint:
    if not 0 < size <= INT64_MAX:
        raise CheckpointNotFound(details={"size": size})
    checkpoint = Checkpoint.objects.filter(size=size).first()
    if checkpoint is None:
        raise CheckpointNotFound(details={"size": size})
    return checkpoint


def checkpoint_list() -> QuerySet[Checkpoint]:
    """Newest first, with the approved witnesses' cosignatures at hand."""
    approved = Cosignature.objects.filter(
        witness__status=WitnessKey.Status.APPROVED
    ).select_related("witness").order_by("witness_id")
    return Checkpoint.objects.order_by("-size").prefetch_related(
        Prefetch("cosignatures", queryset=approved, to_attr="approved_cosignatures")
    )


def cosignatures_of(checkpoint: Checkpoint) -> list[Cosignature]:
    cached = getattr(checkpoint, "approved_cosignatures", None)
    if cached is not None:
        return cached
    return list(
        checkpoint.cosignatures.filter(witness__status=WitnessKey.Status.APPROVED)
        .select_related("witness").order_by("witness_id")
    )


def checkpoint_served_note(checkpoint: Checkpoint) -> str:
    """The signed note with the approved witnesses' cosignature lines appended, as served
    at ``/api/v1/log/checkpoint``."""
    return checkpoint.note + "".join(c.line for c in cosignatures_of(checkpoint))


def checkpoint_text(checkpoint: Checkpoint) -> str:
    """The checkpoint body (the signed text, without signature lines)."""
    return note.split_note(checkpoint.note)[0]


def checkpoint_signature(checkpoint: Checkpoint) -> str:
    """``name+keyid`` of the log key that signed the note, for display."""
    line = note.split_note(checkpoint.note)[1][0]
    name, _, encoded = line.removeprefix("\u2014 ").strip().partition(" ")
    try:
        kid = int.from_bytes(note.b64decode_strict(encoded)[:4], "big")
    except ValueError:
        return name
    return f"{name}+{kid:08x}"


# --- proofs -------------------------------------------------------------------------------


def inclusion_proof_get(*, index: int, size: int) -> tuple[bytes, list[bytes]]:
    """``(leaf_hash, proof)`` of leaf ``index`` in the tree of the first ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofRangeError(details={"index": index, "size": size})
    return with_stored_subtrees(
        lambda subtree: (subtree(0, index), merkle.inclusion_proof(index, size, subtree)),
        size=size,
    )


def consistency_proof_get(*, first: int, second: int) -> list[bytes]:
    """RFC 9162 proof that the tree of ``first`` leaves is a prefix of that of ``second``."""
    if not 0 < first <= second:
        raise ProofRangeError(details={"first": first, "second": second})
    return with_stored_subtrees(
        lambda subtree: merkle.consistency_proof(first, second, subtree), size=second
    )


# --- receipts -----------------------------------------------------------------------------


def transaction_get(*, transaction_id: int) -> Transaction:
    if not 0 < transaction_id <= INT64_MAX:
        raise NotFound(details={"transaction": transaction_id})
    found = Transaction.objects.filter(pk=transaction_id).first()
    if found is None:
        raise NotFound(details={"transaction": transaction_id})
    return found


def transaction_party_check(*, transaction: Transaction, user, merchant=None) -> bool:
    """A party of a transaction: a user holding one of its accounts, staff of a merchant
    holding one, or alliance staff and supervisors (who may see every flow). A merchant's
    system (its API key: ``merchant`` given, ``user`` nobody's) when the merchant holds one."""
    if merchant is not None:
        return Account.objects.filter(postings__transaction=transaction,
                                      merchant=merchant).exists()
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_alliance_staff or user.is_supervisor or user.is_superuser:
        return True
    accounts = Account.objects.filter(postings__transaction=transaction)
    if accounts.filter(user=user).exists():
        return True
    from merchants.models import StaffMembership

    merchants = accounts.exclude(merchant=None).values("merchant")
    return StaffMembership.objects.filter(user=user, merchant__in=merchants).exists()


def _receipt_checkpoint(index: int, size: int | None) -> Checkpoint:
    if size is not None:
        checkpoint = checkpoint_get(size=size)
        if checkpoint.size <= index:
            raise ProofRangeError(details={"index": index, "size": size})
        return checkpoint
    # The newest checkpoint witnesses have vouched for proves the most to an outsider; a
    # fresh one nobody cosigned yet is the fallback.
    cosigned = (
        Checkpoint.objects.filter(size__gt=index)
        .annotate(witnessed=Count("cosignatures", filter=Q(
            cosignatures__witness__status=WitnessKey.Status.APPROVED)))
        .filter(witnessed__gt=0).order_by("-size").first()
    )
    checkpoint = cosigned or checkpoint_latest()
    if checkpoint is None or checkpoint.size <= index:
        raise NotAnchoredYet()
    return checkpoint


def receipt_get(*, transaction: Transaction, size: int | None = None) -> dict:
    """The ``alliance-receipt/v1`` receipt of a logged transaction (``ledger.verify``)."""
    leaf = LogLeaf.objects.filter(transaction=transaction).first()
    if leaf is None:
        raise NotAnchoredYet(details={"transaction": transaction.pk})
    checkpoint = _receipt_checkpoint(leaf.index, size)
    entry = journal_entries([transaction.pk])[transaction.pk]
    data = entry.leaf_bytes()
    if merkle.leaf_hash(data) != bytes(leaf.leaf_hash):
        raise LogInconsistent(details={"transaction": transaction.pk, "log_index": leaf.index})
    _hash, proof = inclusion_proof_get(index=leaf.index, size=checkpoint.size)
    return {
        "format": RECEIPT_FORMAT,
        "origin": note.parse_checkpoint(checkpoint_text(checkpoint)).origin,
        "index": leaf.index,
        "tree_size": checkpoint.size,
        "leaf": base64.b64encode(data).decode("ascii"),
        "inclusion_proof": [base64.b64encode(item).decode("ascii") for item in proof],
        "checkpoint": checkpoint_served_note(checkpoint),
    }


# --- witnesses ----------------------------------------------------------------------------


def witness_key_list(*, approved_only: bool = True) -> QuerySet[WitnessKey]:
    keys = WitnessKey.objects.select_related("merchant").order_by("pk")
    if approved_only:
        keys = keys.filter(status=WitnessKey.Status.APPROVED)
    return keys


def witness_verifiers() -> list[note.Verifier]:
    """Approved witness keys, ready for ``ledger.verify.verify_receipt``."""
    return [note.Verifier.from_key(vkey) for vkey in
            witness_key_list().values_list("vkey", flat=True)]


def log_origin() -> str:
    return settings.LOG_ORIGIN
