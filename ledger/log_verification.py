"""``verify_ledger``'s checks of the transparency log.

The journal is the truth the log commits to, and the log is what outsiders hold us to. An
attacker with database access who edits, deletes, swaps or forges journal rows (with the
append-only triggers disabled) changes the leaf those rows rebuild to; one who then also
rewrites the log's own tables breaks the signed checkpoints and their chain, or the
witnesses' cosignatures. These checks recompute all of it and name the first log index where
the journal and the log part ways.

Leaves are rebuilt here with the reference RFC 8785 encoder, not the anchoring service's fast
path, so every audit also checks that the two agree.
"""

from collections.abc import Iterator

from django.conf import settings
from django.db import connection

from . import log_format, log_selectors, merkle, note
from .log_errors import LogKeyMissing
from .models import Checkpoint, Cosignature, LogLeaf
from .verification import CHECKS, Problem

CHUNK = 5_000
# Past this many, one line says how many more there are: the first ones are what matters.
MAX_REPORTED = 50


def _capped(problems: Iterator[Problem], check: str) -> Iterator[Problem]:
    count = 0
    for problem in problems:
        count += 1
        if count <= MAX_REPORTED:
            yield problem
    if count > MAX_REPORTED:
        yield Problem(check, f"... and {count - MAX_REPORTED} more")


def _leaf_count() -> tuple[int, int | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), MAX(log_index) FROM ledger_logleaf")
        count, highest = cursor.fetchone()
    return count, highest


def _first_gap(highest: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM ledger_logleaf WHERE log_index = 0")
        if cursor.fetchone() is None:
            return 0
        cursor.execute(
            "SELECT MIN(l.log_index) + 1 FROM ledger_logleaf l WHERE l.log_index < %s AND "
            "NOT EXISTS (SELECT 1 FROM ledger_logleaf m WHERE m.log_index = l.log_index + 1)",
            [highest],
        )
        (gap,) = cursor.fetchone()
    return gap


def _checkpoint_supplies() -> dict[int, dict]:
    """Supply lines of every checkpoint, by size, as signed (unreadable ones are skipped:
    the checkpoint check reports them)."""
    supplies = {}
    for size, signed in Checkpoint.objects.values_list("size", "note").iterator(chunk_size=2000):
        try:
            text, _lines = note.split_note(signed)
            _prev, supply = log_format.parse_extensions(note.parse_checkpoint(text).extensions)
        except ValueError:
            continue
        supplies[size] = supply
    return supplies


def _leaf_problems() -> Iterator[Problem]:
    count, highest = _leaf_count()
    latest = log_selectors.checkpoint_latest()
    if highest is not None and count != highest + 1:
        gap = _first_gap(highest)
        yield Problem("log", "leaf missing: log indexes are not consecutive", log_index=gap)
    size = latest.size if latest else 0
    if count != size:
        yield Problem("log", f"{count} leaves stored, the newest checkpoint has {size}",
                      log_index=min(count, size))

    supplies = _checkpoint_supplies()
    supply: dict[str, dict[str, int]] = {}
    first_bad: Problem | None = None
    mismatches: list[Problem] = []
    supply_problems: list[Problem] = []
    for start in range(0, (highest if highest is not None else -1) + 1, CHUNK):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT l.log_index, l.transaction_id, l.leaf_hash, "  # noqa: S608
                f"{log_selectors.transaction_columns()} FROM ledger_logleaf l "
                "LEFT JOIN ledger_transaction t ON t.id = l.transaction_id "
                "WHERE l.log_index >= %s AND l.log_index < %s ORDER BY l.log_index",
                [start, start + CHUNK],
            )
            rows = cursor.fetchall()
        present = [row[3:] for row in rows if row[3] is not None]
        entries = {e.transaction_id: e for e in log_selectors.journal_entries_from_rows(present)}
        for index, txn_id, stored, *_rest in rows:
            entry = entries.get(txn_id)
            if entry is None:
                problem = Problem("log", "the logged transaction is missing from the journal",
                                  txn_id, log_index=index)
            else:
                log_format.supply_add(supply, entry.postings)
                rebuilt = merkle.leaf_hash(entry.leaf_bytes(reference=True))
                problem = None
                if rebuilt != bytes(stored):
                    problem = Problem(
                        "log", "the journal no longer rebuilds the logged leaf (edited, deleted, "
                        "swapped or forged rows)", txn_id, log_index=index,
                    )
            if problem:
                first_bad = first_bad or problem
                mismatches.append(problem)
                if len(mismatches) > MAX_REPORTED:
                    mismatches.pop()
            signed = supplies.get(index + 1)
            if signed is not None and _normalised(signed) != _normalised(supply):
                supply_problems.append(Problem(
                    "log", f"the supply lines of checkpoint {index + 1} are not the sums of "
                    "its leaves' postings", log_index=index,
                ))
    if first_bad is not None:
        yield Problem("log", "FIRST log index where the journal and the log disagree",
                      first_bad.transaction, log_index=first_bad.log_index)
        yield from mismatches
    yield from supply_problems[:MAX_REPORTED]

    if latest is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t.id FROM ledger_transaction t WHERE t.created_at < %s AND NOT EXISTS "
                "(SELECT 1 FROM ledger_logleaf l WHERE l.transaction_id = t.id) ORDER BY t.id",
                [latest.horizon],
            )
            for (txn_id,) in cursor.fetchall()[:MAX_REPORTED]:
                yield Problem("log", "recorded before the newest checkpoint's horizon but not in "
                              "the log (forged, or lost by anchoring)", txn_id)


def _normalised(supply: dict) -> dict:
    return {code: {k: int(v) for k, v in totals.items()} for code, totals in supply.items()}


def check_log_leaves() -> Iterator[Problem]:
    """Every leaf rebuilds from the journal to its stored hash, indexes run 0..n-1 with n the
    newest checkpoint's size, supply lines are the sums of the leaves, and every transaction
    older than the anchoring horizon is in the log."""
    yield from _leaf_problems()


def _transaction_at(index: int) -> int | None:
    return LogLeaf.objects.filter(index=index).values_list("transaction_id", flat=True).first()


def _level_rows(level: int, start: int, stop: int) -> dict[int, bytes]:
    with connection.cursor() as cursor:
        if level == 0:
            cursor.execute(
                "SELECT log_index, leaf_hash FROM ledger_logleaf "
                "WHERE log_index >= %s AND log_index < %s", [start, stop],
            )
        else:
            cursor.execute(
                "SELECT position, hash FROM ledger_lognode "
                "WHERE level = %s AND position >= %s AND position < %s", [level, start, stop],
            )
        return {position: bytes(value) for position, value in cursor.fetchall()}


def _tree_problems() -> Iterator[Problem]:
    count, _highest = _leaf_count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT level, COUNT(*) FROM ledger_lognode GROUP BY level")
        stored_counts = dict(cursor.fetchall())
    for level in sorted(set(stored_counts) | set(range(1, count.bit_length()))):
        expected = count >> level
        if stored_counts.get(level, 0) != expected:
            yield Problem("log", f"level {level} holds {stored_counts.get(level, 0)} subtree "
                          f"hashes, {expected} expected")
        for start in range(0, expected, CHUNK):
            stop = min(start + CHUNK, expected)
            children = _level_rows(level - 1, 2 * start, 2 * stop)
            parents = _level_rows(level, start, stop)
            for position in range(start, stop):
                left, right = children.get(2 * position), children.get(2 * position + 1)
                stored = parents.get(position)
                if left is None or right is None or stored is None or (
                    merkle.node_hash(left, right) != stored
                ):
                    first = position << level
                    yield Problem(
                        "log", f"subtree hash {level}/{position} does not match the hashes "
                        f"below it (leaves {first}..{((position + 1) << level) - 1})",
                        _transaction_at(first), log_index=first,
                    )


def check_log_tree() -> Iterator[Problem]:
    """Every stored subtree hash is the node hash of the two stored below it, level by
    level down to the leaves (which ``check_log_leaves`` ties to the journal)."""
    yield from _capped(_tree_problems(), "log")


def _checkpoint_problems() -> Iterator[Problem]:
    if not Checkpoint.objects.exists():
        return  # nothing signed yet, so no key needed to check it
    try:
        from .log_services import log_verifier

        verifier = log_verifier()
    except LogKeyMissing as exc:
        yield Problem("checkpoints", f"cannot check signatures: {exc.message}")
        return
    previous_note: str | None = None
    batch: list[Checkpoint] = []

    def flush(batch: list[Checkpoint]) -> Iterator[Problem]:
        pairs = {pair for cp in batch for pair in log_selectors.frontier_pairs(cp.size)}
        known = log_selectors.subtrees_get(pairs)
        for cp in batch:
            try:
                root = merkle.root_hash(cp.size, lambda level, pos: known[(level, pos)])
            except KeyError:
                yield Problem("checkpoints", f"checkpoint {cp.size}: subtree hashes missing",
                              log_index=cp.size - 1)
                continue
            if root != bytes(cp.root_hash):
                yield Problem("checkpoints", f"checkpoint {cp.size}: the stored tree has "
                              "another root than the checkpoint", log_index=cp.size - 1)

    for checkpoint in Checkpoint.objects.order_by("size").iterator(chunk_size=1000):
        label = f"checkpoint {checkpoint.size}"
        try:
            text, _signatures, _unknown = note.open_note(checkpoint.note, [verifier])
            parsed = note.parse_checkpoint(text)
            prev, supply = log_format.parse_extensions(parsed.extensions)
        except ValueError as exc:  # NoteError is a ValueError
            yield Problem("checkpoints", f"{label}: signature or format invalid ({exc})")
            previous_note = checkpoint.note
            continue
        if parsed.origin != settings.LOG_ORIGIN:
            yield Problem("checkpoints", f"{label}: origin {parsed.origin!r} is not ours")
        if parsed.size != checkpoint.size or parsed.root_hash != bytes(checkpoint.root_hash):
            yield Problem("checkpoints", f"{label}: the signed size or root differs from the row")
        expected_prev = log_format.note_digest(previous_note) if previous_note else None
        if prev != expected_prev:
            yield Problem("checkpoints", f"{label}: its prev line does not name the checkpoint "
                          "before it (the chain is broken)")
        if _normalised(supply) != _normalised(checkpoint.supply):
            yield Problem("checkpoints", f"{label}: the stored supply differs from the signed one")
        previous_note = checkpoint.note
        batch.append(checkpoint)
        if len(batch) >= 500:
            yield from flush(batch)
            batch = []
    yield from flush(batch)

    for cosignature in Cosignature.objects.select_related("checkpoint", "witness").iterator(
        chunk_size=1000
    ):
        try:
            witness = note.Verifier.from_key(cosignature.witness.vkey)
            text = log_selectors.checkpoint_text(cosignature.checkpoint)
            note.verify_cosignature(text, cosignature.line, witness)
        except ValueError as exc:
            yield Problem("checkpoints", f"checkpoint {cosignature.checkpoint.size}: the "
                          f"cosignature by {cosignature.witness} does not verify ({exc})")


def check_checkpoints() -> Iterator[Problem]:
    """Each checkpoint is signed by the log key, names the one before it (``prev``), carries
    the root of the stored tree at its size, and each stored cosignature verifies."""
    yield from _capped(_checkpoint_problems(), "checkpoints")


LOG_CHECKS = [
    ("log leaves rebuild from the journal", check_log_leaves),
    ("log subtree hashes match the leaves", check_log_tree),
    ("checkpoints are signed, chained and match the tree", check_checkpoints),
]
# Registered here, not listed in verification.py: that module imports this one at its end.
CHECKS.extend(LOG_CHECKS)
