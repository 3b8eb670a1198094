"""Everything that writes the transparency log: anchoring, the log key, witness keys and
cosignatures (SPEC §6, docs/log-format.md).

Invariants guarded here:

* one writer: every anchoring batch runs under ``pg_advisory_xact_lock`` (on SQLite the
  database's single write lock does the same), reads the newest checkpoint under the lock,
  and appends after it, so log indexes are consecutive and no checkpoint is written twice;
* never twice: ``LogLeaf.transaction`` is unique, so even a bug here cannot log a
  transaction at two indexes;
* never lost: a transaction that commits late, with a lower id than logged ones, is found by
  the next run, whose scan starts at the previous checkpoint's ``horizon`` (see
  ``_horizon``);
* a checkpoint, its leaves and its subtree hashes commit together or not at all.
"""

import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection
from django.db import transaction as db_transaction
from django.utils import timezone

from . import log_format, log_selectors, merkle, note
from .log_errors import (
    InvalidCosignature,
    InvalidWitnessKey,
    LogKeyMissing,
    UnknownWitness,
    WitnessKeyExists,
    WitnessKeyState,
)
from .models import Checkpoint, Cosignature, WitnessKey

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock held while appending ("ALOG").
ANCHOR_LOCK_KEY = 0x414C4F47
# How far before the oldest open database transaction the next scan starts. It covers a
# posting engine whose clock (the Python one stamps ``created_at``) runs behind the
# database's, and sessions whose start time another role cannot see.
HORIZON_MARGIN = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_BATCH = 20_000
# A cosignature dated further ahead than this is refused: a witness clock that far off is
# broken, and such a timestamp would outlive every honest one.
COSIGNATURE_MAX_FUTURE = 600


# --- the log key --------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _signer_from(key: str) -> note.Signer:
    try:
        signer = note.Signer.from_key(key)
    except note.NoteError as exc:
        raise LogKeyMissing(f"LOG_SIGNER_KEY is not a valid signer key: {exc}") from exc
    if signer.alg != note.ALG_ED25519:
        raise LogKeyMissing("the log key must be an Ed25519 note key (type 0x01)")
    return signer


def log_key_create(*, path: Path, name: str | None = None, overwrite: bool = False) -> str:
    """Write a new Ed25519 signer key to ``path`` (mode 0600); returns its verifier key.

    For the demo and for setting up a deployment; a live log keeps its key for ever, since
    witnesses and receipts pin it."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(path)
    skey, vkey = note.generate_signer(name or settings.LOG_ORIGIN)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(skey + "\n")
    return vkey


def log_signer() -> note.Signer:
    """The alliance's log signer: ``LOG_SIGNER_KEY``, else the file ``LOG_SIGNER_KEY_FILE``.

    When neither exists, a key file is created only in development (``DEBUG``) or when
    ``LOG_SIGNER_KEY_AUTOCREATE`` says so; a production log must never sign with a key
    nobody chose."""
    key = (settings.LOG_SIGNER_KEY or "").strip()
    if not key:
        path = Path(settings.LOG_SIGNER_KEY_FILE) if settings.LOG_SIGNER_KEY_FILE else None
        if path is None:
            raise LogKeyMissing()
        if not path.is_file():
            if not (settings.DEBUG or getattr(settings, "LOG_SIGNER_KEY_AUTOCREATE", False)):
                raise LogKeyMissing(details={"file": str(path)})
            try:
                log_key_create(path=path)
                logger.warning("created the log signer key %s", path)
            except FileExistsError:
                pass  # another process made it first
        key = path.read_text(encoding="utf-8").strip()
    return _signer_from(key)


def log_verifier() -> note.Verifier:
    return log_signer().verifier()


# --- anchoring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorResult:
    leaves: int
    checkpoint: Checkpoint | None  # the newest one written by this run, if any


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ANCHOR_LOCK_KEY])


def _horizon() -> datetime:
    """An instant before which every transaction is either visible to our next query or will
    never exist. Taken *before* that query.

    ``created_at`` is the posting transaction's start (``now()``), so a transaction still
    open now has ``created_at`` >= the oldest open transaction's start; one that began later
    is later still; one that already committed is visible to our next statement."""
    if connection.vendor != "postgresql":
        # SQLite: the anchoring transaction holds the only write lock, nobody is mid-write.
        return timezone.now() - HORIZON_MARGIN
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT LEAST(now(), COALESCE(MIN(xact_start), now())) FROM pg_stat_activity "
            "WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
            "AND datname = current_database()"
        )
        (oldest,) = cursor.fetchone()
    return oldest - HORIZON_MARGIN


def _insert(table: str, columns: tuple[str, ...], types: tuple[str, ...], rows: list) -> None:
    """Set-based insert: binary COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    names = ", ".join(columns)
    if connection.vendor == "postgresql":
        with log_selectors.raw_cursor() as cursor, cursor.copy(
            f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608


def _anchor_batch(
    signer: note.Signer, *, limit: int, after_id: int | None, full_scan: bool,
    run_horizon: datetime | None,
) -> tuple[int, int | None, Checkpoint | None, datetime]:
    """Append up to ``limit`` unlogged transactions and sign a checkpoint over them.
    Returns (leaves appended, highest transaction id appended, checkpoint, the horizon taken
    before this batch's scan)."""
    with db_transaction.atomic(durable=True):
        _lock()
        previous = log_selectors.checkpoint_latest()
        size = previous.size if previous else 0
        since = None if full_scan or previous is None else previous.horizon
        horizon = _horizon()
        rows = log_selectors.unlogged_transactions(
            recorded_since=since, after_id=after_id, limit=limit
        )
        if not rows:
            return 0, None, None, horizon
        entries = log_selectors.journal_entries_from_rows(rows)

        known = log_selectors.subtrees_get(log_selectors.frontier_pairs(size))

        def subtree(level: int, position: int) -> bytes:
            return known[(level, position)]

        carried = previous.supply if previous else {}
        supply = {code: dict(totals) for code, totals in carried.items()}
        leaf_rows = []
        node_rows = []
        for index, entry in enumerate(entries, start=size):
            hashed = merkle.leaf_hash(entry.leaf_bytes())
            for level, position, value in merkle.subtrees_completed_by(index, hashed, subtree):
                known[(level, position)] = value
                if level:
                    node_rows.append((level, position, value))
            leaf_rows.append((index, entry.transaction_id, hashed))
        log_format.supply_add(supply, (posting for e in entries for posting in e.postings))

        new_size = size + len(entries)
        root = merkle.root_hash(new_size, subtree)
        previous_hash = log_format.note_digest(previous.note) if previous else None
        body = log_format.checkpoint_body(
            origin=settings.LOG_ORIGIN, size=new_size, root_hash=root,
            previous_note_hash=previous_hash, supply=supply,
        )
        signed = note.sign_note(body, [signer])
        _insert("ledger_logleaf", ("log_index", "transaction_id", "leaf_hash"),
                ("int8", "int8", "bytea"), leaf_rows)
        _insert("ledger_lognode", ("level", "position", "hash"),
                ("int2", "int8", "bytea"), node_rows)
        # The horizon moves only when the run has logged everything its first scan could
        # see: a full batch may have left unlogged transactions behind. When this batch is
        # not full, every page of the run has been read, so the horizon taken before the
        # run's first scan holds (later pages only add transactions above the last id).
        keep = previous.horizon if previous else EPOCH
        stored = keep
        if len(rows) < limit:
            stored = max(keep, horizon if run_horizon is None else run_horizon)
        checkpoint = Checkpoint.objects.create(
            size=new_size, root_hash=root, previous_hash=previous_hash, note=signed,
            supply=supply, horizon=stored, created_at=timezone.now(),
        )
        return len(entries), entries[-1].transaction_id, checkpoint, horizon


def log_anchor(
    *, batch_size: int = DEFAULT_BATCH, limit: int | None = None, full_scan: bool = False
) -> AnchorResult:
    """Give log indexes to every committed transaction not yet logged, in id order, and sign
    a checkpoint after each batch (a chain of batches, each one's ``prev`` naming the last).

    Idempotent: with nothing new it writes nothing. ``full_scan`` ignores the horizon and
    looks at the whole journal (``manage.py anchor_ledger --full``)."""
    signer = log_signer()  # refuse before taking the lock, and before reading anything
    total = 0
    last: Checkpoint | None = None
    after_id: int | None = None
    run_horizon: datetime | None = None
    while limit is None or total < limit:
        want = batch_size if limit is None else min(batch_size, limit - total)
        appended, highest, checkpoint, horizon = _anchor_batch(
            signer, limit=want, after_id=after_id, full_scan=full_scan, run_horizon=run_horizon
        )
        run_horizon = run_horizon or horizon
        total += appended
        last = checkpoint or last
        if appended < want:
            break
        # Within one run, page forward by id; a late commit below it waits for the next run,
        # whose first batch scans from the horizon again.
        after_id = highest
    if total:
        logger.info("anchored %d transaction(s); tree size %d", total, last.size)
    return AnchorResult(total, last)


# --- witness keys -------------------------------------------------------------------------


def witness_key_register(
    *, vkey: str, merchant=None, user=None, registered_by=None
) -> WitnessKey:
    """Register a member's witness key, pending staff approval. Stored in its cosignature/v1
    form (type byte 0x04), which is how witnesses' signature lines name it."""
    if (merchant is None) == (user is None):
        raise InvalidWitnessKey(details={"holder": "a merchant or a user, not both"})
    try:
        verifier = note.Verifier.from_key(vkey).as_cosigner()
    except note.NoteError as exc:
        raise InvalidWitnessKey(details={"vkey": str(exc)}) from exc
    name_field = WitnessKey._meta.get_field("name")
    if len(verifier.name) > name_field.max_length or len(verifier.to_key()) > 255:
        raise InvalidWitnessKey(details={"vkey": "the key name is too long"})
    try:
        with db_transaction.atomic():
            return WitnessKey.objects.create(
                name=verifier.name, vkey=verifier.to_key(), key_id=verifier.key_id,
                merchant=merchant, user=user, registered_by=registered_by,
            )
    except IntegrityError:
        raise WitnessKeyExists(details={"vkey": verifier.to_key()}) from None


def _witness_key_decide(witness_key: WitnessKey, by, allowed: set[str], to: str) -> WitnessKey:
    with db_transaction.atomic():
        locked = WitnessKey.objects.select_for_update().get(pk=witness_key.pk)
        if locked.status == to:
            return locked  # Idempotent: the decision is already in force.
        if locked.status not in allowed:
            raise WitnessKeyState(details={"status": locked.status})
        locked.status = to
        locked.decided_by = by
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        return locked


def witness_key_approve(*, witness_key: WitnessKey, by) -> WitnessKey:
    """Staff approve a pending key; from then on its cosignatures are accepted and served."""
    return _witness_key_decide(witness_key, by, {WitnessKey.Status.PENDING},
                               WitnessKey.Status.APPROVED)


def witness_key_revoke(*, witness_key: WitnessKey, by) -> WitnessKey:
    """Withdraw a key: its cosignatures stop being accepted and served (they stay stored)."""
    return _witness_key_decide(
        witness_key, by, {WitnessKey.Status.PENDING, WitnessKey.Status.APPROVED},
        WitnessKey.Status.REVOKED,
    )


# --- cosignatures -------------------------------------------------------------------------


def _signature_line_key(line: str) -> tuple[str, int]:
    if not line.startswith("\u2014 "):
        raise InvalidCosignature(details={"cosignature": "must start with an em dash and space"})
    name, _, encoded = line[2:].partition(" ")
    try:
        raw = note.b64decode_strict(encoded)
    except ValueError:
        raise InvalidCosignature(details={"cosignature": "not base64"}) from None
    if not name or len(raw) < 5:
        raise InvalidCosignature(details={"cosignature": "malformed signature line"})
    return name, int.from_bytes(raw[:4], "big")


def cosignature_add(*, checkpoint_size: int, line: str) -> tuple[Cosignature, bool]:
    """Check a witness's cosignature/v1 line over checkpoint ``checkpoint_size`` and keep it.

    Returns (cosignature, created). One per witness and checkpoint: a repeat returns the one
    already kept (the unique constraint decides, not a prior read)."""
    line = line.removesuffix("\n")
    if not line or "\n" in line or "\r" in line:
        raise InvalidCosignature(details={"cosignature": "one signature line"})
    checkpoint = log_selectors.checkpoint_get(size=checkpoint_size)
    name, kid = _signature_line_key(line)
    witness = WitnessKey.objects.filter(
        name=name, key_id=kid, status=WitnessKey.Status.APPROVED
    ).first()
    if witness is None:
        raise UnknownWitness(details={"key": f"{name}+{kid:08x}"})
    try:
        timestamp = note.verify_cosignature(
            log_selectors.checkpoint_text(checkpoint), line, note.Verifier.from_key(witness.vkey)
        )
    except note.NoteError as exc:
        raise InvalidCosignature(details={"cosignature": str(exc)}) from None
    if timestamp > time.time() + COSIGNATURE_MAX_FUTURE:
        raise InvalidCosignature(details={"timestamp": "in the future"})
    try:
        with db_transaction.atomic():
            return Cosignature.objects.create(
                checkpoint=checkpoint, witness=witness, line=line + "\n", timestamp=timestamp
            ), True
    except IntegrityError:
        return Cosignature.objects.get(checkpoint=checkpoint, witness=witness), False

