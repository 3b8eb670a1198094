"""The daily airdrop (每日空投, SPEC §4.2): D SHARED minted each day and split among all SV
holders in proportion to their SV; each recipient's SV falls by the CNY value received.

How a run goes (``airdrop_run_for_date``, under ``points.jobs.job_run``):

1. Freeze: every SV holder gets a SHARED wallet (opened by one statement where missing), then
   one statement reads the SV wallets (one consistent snapshot), computes the split and
   writes the snapshot with each holder's share (``AirdropShare``) and its SHA-256
   (``Airdrop``). The parameters in force at that moment (D, the reference price) are frozen
   with it.
2. Post: the holders, in snapshot order, in chunks of ``CHUNK_HOLDERS`` (a transaction holds
   at most 32,768 legs), each chunk one ledger transaction under the key
   ``airdrop:<date>:<chunk>``: SHARED from the SHARED issuance to each holder's SHARED
   wallet, SV from each holder's SV wallet back to the SV issuance. The chunks are posted
   set-based by ``ledger.bulk.bulk_post_many``, a batch of consecutive chunks (about
   ``settings.POINTS_JOBS_BATCH`` holders) per database transaction, which commits with the
   run's progress; a rerun after a crash skips the chunks whose key exists, so the day ends
   exactly as an uninterrupted run.

The arithmetic (``points.allocation``), in integer minor units:

* part = D × sv // total, then the units left over one each to the largest remainders
  (D × sv mod total), ties to the holder earlier in the snapshot (lower account id), so
  the parts sum to exactly D;
* SV cut = part × price × SV-per-CNY (in minor units), rounded half up, never more than the
  holder's SV at the snapshot nor at posting time (so no SV goes below zero).

On PostgreSQL steps 1 and 2 are SQL (no per-holder Python); the SQLite demo takes a Python
path through the same allocation functions and ``transaction_post``, with the same result.
"""

import hashlib
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db import transaction as db_transaction
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError
from alliance.parameters import parameter_get
from ledger import bulk
from ledger import services as ledger
from ledger.models import Account, Posting, Transaction

from .allocation import largest_remainder, sv_cut, sv_per_shared
from .jobs import alliance_today, job_run, progress_step, progress_total, set_based
from .models import Airdrop, AirdropShare, JobRun

# Two legs per holder plus the two issuance legs stay under ledger.bulk.MAX_LEGS.
CHUNK_HOLDERS = 16_000
KIND = "airdrop"
LINE_FORMAT = "<SV wallet public id> <SHARED wallet public id> <SV minor units>\\n"


class AirdropInFuture(DomainError):
    code = "airdrop_in_future"
    default_message = _("An airdrop cannot run for a day that has not begun.")


def airdrop_run_for_date(*, day: date, chunk_holders: int = CHUNK_HOLDERS,
                         batch_holders: int | None = None) -> JobRun:
    """Run the airdrop of ``day`` once (a done day returns at once; a crashed one resumes).

    ``chunk_holders`` holders make one ledger transaction; about ``batch_holders`` (default
    ``settings.POINTS_JOBS_BATCH``, at least one chunk) commit together.

    Guards: the parts sum to exactly D; no SV goes below zero; one run per date
    (``JobRun`` and the chunks' idempotency keys)."""
    if day > alliance_today():
        raise AirdropInFuture(details={"date": day.isoformat()})
    if not 1 <= chunk_holders <= (bulk.MAX_LEGS - 2) // 2:
        raise ValueError("chunk_holders out of range")
    batch_holders = batch_holders or settings.POINTS_JOBS_BATCH
    return job_run(job=JobRun.Job.AIRDROP, period=day.isoformat(),
                   work=lambda run: _airdrop(run, day, chunk_holders, batch_holders))


def _airdrop(run: JobRun, day: date, chunk_holders: int, batch_holders: int) -> dict:
    airdrop = Airdrop.objects.filter(date=day).first() or _freeze(day, chunk_holders)
    progress_total(run, airdrop.holders, holders=airdrop.holders, chunks=airdrop.chunks,
                   snapshot_sha256=airdrop.snapshot_sha256)
    keys = [airdrop.chunk_key(chunk) for chunk in range(airdrop.chunks)]
    # Only to skip work: the unique key is what makes each chunk post once.
    posted = set(Transaction.objects.filter(client=ledger.SYSTEM_CLIENT, idempotency_key__in=keys)
                 .values_list("idempotency_key", flat=True))
    pending = [chunk for chunk, key in enumerate(keys) if key not in posted]
    if set_based():
        batches = _batches(pending, max(1, batch_holders // airdrop.chunk_size))
        post = _post_batch_sql
    else:
        batches, post = [[chunk] for chunk in pending], _post_batch_python
    for chunks in batches:
        with db_transaction.atomic(durable=True):
            holders, shared, sv, transactions = post(airdrop, chunks)
            progress_step(run, holders, shared_paid=shared, sv_removed=sv,
                          transactions=transactions)
    run.refresh_from_db()
    return {**run.counts, "amount": airdrop.amount}


def _batches(chunks: list[int], size: int) -> list[list[int]]:
    """``chunks`` (ascending) in runs of at most ``size`` consecutive chunk numbers."""
    batches: list[list[int]] = []
    for chunk in chunks:
        if batches and len(batches[-1]) < size and batches[-1][-1] == chunk - 1:
            batches[-1].append(chunk)
        else:
            batches.append([chunk])
    return batches


# --- freezing the snapshot --------------------------------------------------------------------


def _parameters() -> tuple[int, Decimal, Decimal]:
    shared, sv = ledger.alliance_asset("SHARED"), ledger.alliance_asset("SV")
    amount = shared.to_minor(parameter_get("airdrop_daily_shared"))
    price = parameter_get("reference_price")
    factor = sv_per_shared(price=price, shared_scale=shared.scale, sv_scale=sv.scale,
                           sv_units_per_cny=sv.units_per_cny)
    return amount, price, factor


def _freeze(day: date, chunk_holders: int) -> Airdrop:
    amount, price, factor = _parameters()
    shared, sv = ledger.alliance_asset("SHARED"), ledger.alliance_asset("SV")
    if set_based():
        with connection.cursor() as cursor:
            # The job reads every account at once: plans on stale statistics (a table that
            # grew by a million holders since autovacuum last looked) can be quadratic.
            cursor.execute("ANALYZE ledger_account")
        _wallets_open_sql(shared, sv)
    with db_transaction.atomic(durable=True):
        airdrop = Airdrop.objects.create(
            date=day, amount=amount, reference_price=price, sv_per_shared=factor,
            chunk_size=chunk_holders,
        )
        if set_based():
            holders, total, digest = _freeze_sql(airdrop, shared, sv)
        else:
            holders, total, digest = _freeze_python(airdrop, shared, sv)
        if set_based():
            # The batches read the snapshot by ranges of it: plans made without statistics
            # of a million fresh rows would guess a few.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE points_airdropshare")
        airdrop.holders, airdrop.total_sv, airdrop.snapshot_sha256 = holders, total, digest
        airdrop.chunks = -(-holders // chunk_holders) if amount else 0
        airdrop.save(update_fields=["holders", "total_sv", "snapshot_sha256", "chunks"])
    return airdrop


# Public ids as ``new_public_id`` makes them (64 unpredictable bits), from a keyed hash of the
# account's holder under a key drawn for this statement and then forgotten: one
# gen_random_uuid() per row costs 2 µs of kernel randomness, 2 s of the first airdrop.
_OPEN_WALLETS = """
INSERT INTO ledger_account (kind, holder_key, public_id, bounded, tracks_lots, balance,
                            created_at, user_id, merchant_id, asset_id)
SELECT 'wallet', sv.holder_key,
       'ac_' || substr(encode(sha256(%(key)s::bytea || int8send(sv.id)), 'hex'), 1, 16), true,
       %(lots)s, 0, now(), sv.user_id, sv.merchant_id, %(shared)s
  FROM ledger_account sv
 WHERE sv.asset_id = %(sv)s AND sv.kind = 'wallet' AND sv.balance > 0 {only}
   AND NOT EXISTS (SELECT 1 FROM ledger_account w
                    WHERE w.asset_id = %(shared)s AND w.kind = 'wallet'
                      AND w.holder_key = sv.holder_key)
ON CONFLICT (asset_id, kind, holder_key) DO NOTHING
"""


def _wallets_open_sql(shared, sv, only_ids_sql: str = "", params: dict | None = None) -> int:
    """Open the SHARED wallet of every SV holder that has none, in one statement (the same
    account ``account_get_or_create`` would open: bounded, lots as the asset says)."""
    only = f"AND sv.id IN ({only_ids_sql})" if only_ids_sql else ""
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_WALLETS.format(only=only),
                       {"key": secrets.token_bytes(32), "lots": shared.expires,
                        "shared": shared.pk, "sv": sv.pk, **(params or {})})
        return cursor.rowcount


# One statement, so one consistent view of every SV balance. It carries ids and integers
# (and the public ids the digest needs) through one sort, by account id, which numbers the
# holders; the total is an aggregate of its own, not a window that would buffer every row.
# ``floor_part`` and ``rem`` are exact (numeric products) and fit a bigint (floor_part <= D,
# rem < total SV, and a total beyond a bigint fails the statement rather than round);
# the D - sum(floor_part) units left over go one each to the largest remainders, ties to the
# lower seq.
_FREEZE = """
WITH holders AS MATERIALIZED (
    SELECT sv.id AS sv_id, w.id AS w_id, sv.balance AS sv, sv.public_id AS sv_pub,
           w.public_id AS w_pub
      FROM ledger_account sv
      LEFT JOIN ledger_account w
             ON w.asset_id = %(shared)s AND w.kind = 'wallet' AND w.holder_key = sv.holder_key
     WHERE sv.asset_id = %(sv)s AND sv.kind = 'wallet' AND sv.balance > 0
),
total AS (
    SELECT sum(sv) AS total FROM holders
),
base AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY h.sv_id) - 1 AS seq, h.sv_id, h.w_id, h.sv,
           h.sv_pub, h.w_pub,
           div(%(amount)s::numeric * h.sv, t.total)::bigint AS floor_part,
           mod(%(amount)s::numeric * h.sv, t.total)::bigint AS rem
      FROM holders h CROSS JOIN total t
),
extra AS (
    SELECT b.seq FROM base b ORDER BY b.rem DESC, b.seq
     LIMIT (SELECT %(amount)s - sum(floor_part) FROM base)
),
written AS (
    INSERT INTO points_airdropshare (airdrop_id, seq, sv_account_id, shared_account_id, sv,
                                     part, cut)
    SELECT %(airdrop)s, b.seq, b.sv_id, b.w_id, b.sv, p.part,
           least(b.sv, round(p.part * %(factor)s::numeric))::bigint
      FROM base b
      LEFT JOIN extra e ON e.seq = b.seq
     CROSS JOIN LATERAL (SELECT b.floor_part + CASE WHEN e.seq IS NULL THEN 0 ELSE 1 END
                                AS part) p
)
SELECT count(*), coalesce(sum(b.sv), 0), count(*) FILTER (WHERE b.w_id IS NULL),
       encode(sha256(convert_to(coalesce(string_agg(
           b.sv_pub || ' ' || b.w_pub || ' ' || b.sv || E'\\n', '' ORDER BY b.seq), ''),
           'UTF8')), 'hex')
  FROM base b
"""

_DIGEST = """
SELECT encode(sha256(convert_to(coalesce(string_agg(
           a.public_id || ' ' || b.public_id || ' ' || s.sv || E'\\n', '' ORDER BY s.seq), ''),
           'UTF8')), 'hex')
  FROM points_airdropshare s
  JOIN ledger_account a ON a.id = s.sv_account_id
  JOIN ledger_account b ON b.id = s.shared_account_id
 WHERE s.airdrop_id = %s
"""


def _freeze_sql(airdrop: Airdrop, shared, sv) -> tuple[int, int, str]:
    with connection.cursor() as cursor:
        # The sorts of a million holders in memory: spilled, they cost more than the rest.
        cursor.execute(f"SET LOCAL work_mem = '{bulk.BATCH_WORK_MEM}'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_FREEZE, {"shared": shared.pk, "sv": sv.pk, "amount": airdrop.amount,
                                 "airdrop": airdrop.pk, "factor": airdrop.sv_per_shared})
        holders, total, walletless, digest = cursor.fetchone()
        if walletless:
            # Holders whose first SV arrived between opening wallets and the snapshot.
            ids = ("SELECT sv_account_id FROM points_airdropshare "
                   "WHERE airdrop_id = %(airdrop)s AND shared_account_id IS NULL")
            _wallets_open_sql(shared, sv, ids, {"airdrop": airdrop.pk})
            cursor.execute(
                "UPDATE points_airdropshare s SET shared_account_id = w.id "
                "FROM ledger_account sv, ledger_account w "
                "WHERE s.airdrop_id = %s AND s.shared_account_id IS NULL "
                "AND sv.id = s.sv_account_id AND w.asset_id = %s AND w.kind = 'wallet' "
                "AND w.holder_key = sv.holder_key",
                [airdrop.pk, shared.pk],
            )
            cursor.execute(_DIGEST, [airdrop.pk])
            (digest,) = cursor.fetchone()
    return holders, int(total), digest


def _freeze_python(airdrop: Airdrop, shared, sv) -> tuple[int, int, str]:
    holders = list(Account.objects.filter(asset=sv, kind=Account.Kind.WALLET, balance__gt=0)
                   .select_related("user", "merchant").order_by("pk"))
    parts = largest_remainder(airdrop.amount, [h.balance for h in holders])
    rows = []
    for seq, (holder, part) in enumerate(zip(holders, parts, strict=True)):
        wallet = ledger.account_get_or_create(asset=shared, kind=Account.Kind.WALLET,
                                              user=holder.user, merchant=holder.merchant)
        rows.append(AirdropShare(
            airdrop=airdrop, seq=seq, sv_account=holder, shared_account=wallet,
            sv=holder.balance, part=part,
            cut=sv_cut(part, holder.balance, airdrop.sv_per_shared),
        ))
    AirdropShare.objects.bulk_create(rows, batch_size=2000)
    digest = snapshot_digest(
        (h.public_id, r.shared_account.public_id, h.balance)
        for h, r in zip(holders, rows, strict=True)
    )
    return len(rows), sum(h.balance for h in holders), digest


def snapshot_digest(lines: Iterable[tuple[str, str, int]]) -> str:
    """SHA-256 (hex) of a snapshot: ``"<sv account> <shared account> <sv>\\n"`` per holder, in
    snapshot order."""
    digest = hashlib.sha256()
    for sv_account, shared_account, sv in lines:
        digest.update(f"{sv_account} {shared_account} {sv}\n".encode())
    return digest.hexdigest()


# --- posting a chunk --------------------------------------------------------------------------


def _chunk_metadata(airdrop: Airdrop, chunk: int, low: int, high: int) -> dict:
    return {
        "airdrop": airdrop.date.isoformat(), "chunk": chunk, "chunks": airdrop.chunks,
        "holders_from": low, "holders_to": high, "amount": airdrop.amount,
        "reference_price": str(airdrop.reference_price),
        "sv_per_shared": str(airdrop.sv_per_shared), "holders": airdrop.holders,
        "total_sv": airdrop.total_sv, "snapshot_sha256": airdrop.snapshot_sha256,
    }


def _bounds(airdrop: Airdrop, chunk: int) -> tuple[int, int]:
    low = chunk * airdrop.chunk_size
    return low, min(low + airdrop.chunk_size, airdrop.holders)


# The wallets a batch of chunks will post to: those of holders with a part (the rest get no
# legs).
_BATCH_ACCOUNTS = """
SELECT sv_account_id FROM points_airdropshare
 WHERE airdrop_id = %(airdrop)s AND seq >= %(low)s AND seq < %(high)s AND part > 0
UNION ALL
SELECT shared_account_id FROM points_airdropshare
 WHERE airdrop_id = %(airdrop)s AND seq >= %(low)s AND seq < %(high)s AND part > 0
"""

# Read under the batch's locks (``ledger_bulk_locked`` holds each SV wallet's balance as
# locked): the cut is capped at the SV the holder has now (a refund may have taken some since
# the snapshot). ``txn`` is the chunk's place in the batch.
_BATCH_LEGS = """
WITH c AS MATERIALIZED (
    SELECT (s.seq / %(size)s - %(first)s)::int AS txn, s.seq, s.sv_account_id,
           s.shared_account_id, s.part, least(s.cut, coalesce(k.balance, 0)) AS cut
      FROM points_airdropshare s
      LEFT JOIN ledger_bulk_locked k ON k.id = s.sv_account_id
     WHERE s.airdrop_id = %(airdrop)s AND s.seq >= %(low)s AND s.seq < %(high)s
       AND s.part > 0
)
SELECT txn, -2 AS ord, %(shared_issuance)s AS account_id, -sum(part) AS amount,
       NULL::timestamptz AS expires_at FROM c GROUP BY txn
UNION ALL
SELECT txn, -1, %(sv_issuance)s, sum(cut), NULL FROM c GROUP BY txn HAVING sum(cut) > 0
UNION ALL
SELECT txn, 2 * seq, shared_account_id, part, NULL FROM c
UNION ALL
SELECT txn, 2 * seq + 1, sv_account_id, -cut, NULL FROM c WHERE cut > 0
"""


def _post_batch_sql(airdrop: Airdrop, chunks: list[int]) -> tuple[int, int, int, int]:
    """Post consecutive ``chunks``, one transaction each; returns (holders done, SHARED
    posted, SV removed, transactions posted). A chunk with nothing to pay posts nothing."""
    low, high = _bounds(airdrop, chunks[0])[0], _bounds(airdrop, chunks[-1])[1]
    shared, sv = ledger.alliance_asset("SHARED"), ledger.alliance_asset("SV")
    shared_issuance, sv_issuance = ledger.issuance_account(shared), ledger.issuance_account(sv)
    params = {"airdrop": airdrop.pk, "low": low, "high": high, "size": airdrop.chunk_size,
              "first": chunks[0], "shared_issuance": shared_issuance.pk,
              "sv_issuance": sv_issuance.pk}
    results = bulk.bulk_post_many(
        kind=KIND, client=ledger.SYSTEM_CLIENT,
        transactions=[bulk.BulkTransaction(airdrop.chunk_key(chunk),
                                           _chunk_metadata(airdrop, chunk,
                                                           *_bounds(airdrop, chunk)))
                      for chunk in chunks],
        lock_sql=_BATCH_ACCOUNTS, lock_params=params, legs_sql=_BATCH_LEGS, params=params,
    )
    holders = sum(_bounds(airdrop, chunk)[1] - _bounds(airdrop, chunk)[0]
                  for chunk, posted in zip(chunks, results, strict=True)
                  if posted is None or not posted.replayed)
    ids = [posted.transaction_id for posted in results if posted and not posted.replayed]
    if not ids:
        return holders, 0, 0, 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT account_id, sum(amount) FROM ledger_posting "
                       "WHERE transaction_id = ANY(%s) AND account_id IN (%s, %s) "
                       "GROUP BY account_id", [ids, shared_issuance.pk, sv_issuance.pk])
        totals = dict(cursor.fetchall())
    return (holders, -int(totals.get(shared_issuance.pk, 0)),
            int(totals.get(sv_issuance.pk, 0)), len(ids))


def _post_batch_python(airdrop: Airdrop, chunks: list[int]) -> tuple[int, int, int, int]:
    done = [0, 0, 0, 0]
    for chunk in chunks:
        done = [a + b for a, b in zip(done, _post_chunk_python(airdrop, chunk), strict=True)]
    return done[0], done[1], done[2], done[3]


def _post_chunk_python(airdrop: Airdrop, chunk: int) -> tuple[int, int, int, int]:
    low, high = _bounds(airdrop, chunk)
    shares = list(AirdropShare.objects.filter(airdrop=airdrop, seq__gte=low, seq__lt=high)
                  .select_related("sv_account__asset", "shared_account__asset").order_by("seq"))
    shared, sv = ledger.alliance_asset("SHARED"), ledger.alliance_asset("SV")
    legs, shared_total, sv_total = [], 0, 0
    for share in shares:
        if share.part:
            legs.append(ledger.Leg(share.shared_account, share.part))
            shared_total += share.part
        cut = min(share.cut, share.sv_account.balance)
        if cut:
            legs.append(ledger.Leg(share.sv_account, -cut))
            sv_total += cut
    if not shared_total:
        return high - low, 0, 0, 0
    legs = [ledger.Leg(ledger.issuance_account(shared), -shared_total)] + (
        [ledger.Leg(ledger.issuance_account(sv), sv_total)] if sv_total else []) + legs
    posted = ledger.transaction_post(
        kind=KIND, legs=legs, client=ledger.SYSTEM_CLIENT,
        idempotency_key=airdrop.chunk_key(chunk),
        metadata=_chunk_metadata(airdrop, chunk, low, high),
    )
    if posted.replayed:
        return 0, 0, 0, 0
    return high - low, shared_total, sv_total, 1


# --- the published snapshot and its verification ----------------------------------------------


def airdrop_get(day: date) -> Airdrop | None:
    return Airdrop.objects.filter(date=day).first()


def airdrop_snapshot_rows(airdrop: Airdrop) -> Iterator[tuple[str, str, int, int, int]]:
    """The published snapshot, in order: (SV wallet public id, SHARED wallet public id, SV,
    SHARED received, SV removed as planned), all in minor units. Pseudonymous: no names."""
    return (AirdropShare.objects.filter(airdrop=airdrop).order_by("seq")
            .values_list("sv_account__public_id", "shared_account__public_id", "sv", "part",
                         "cut")
            .iterator(chunk_size=20_000))


def airdrop_transactions(airdrop: Airdrop) -> list[int]:
    keys = [airdrop.chunk_key(chunk) for chunk in range(airdrop.chunks)]
    return list(Transaction.objects.filter(client=ledger.SYSTEM_CLIENT, idempotency_key__in=keys)
                .order_by("pk").values_list("pk", flat=True))


@dataclass
class AirdropCheck:
    """What ``airdrop_verify`` found: ``problems`` make it fail; ``capped`` counts holders
    whose SV fell below their planned cut between the snapshot and their chunk (they lost
    all they had left, as the rule says, and that is not a problem)."""

    holders: int = 0
    recipients: int = 0
    shared_total: int = 0
    capped: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def airdrop_verify(*, day: date, snapshot: dict | None = None) -> AirdropCheck:
    """Recompute the split of ``day`` from its published snapshot (the one served by the API,
    or ``snapshot``, a downloaded copy of it) and compare it with what was posted."""
    check = AirdropCheck()
    airdrop = airdrop_get(day)
    if airdrop is None:
        check.problems.append(f"no airdrop for {day.isoformat()}")
        return check
    if snapshot is None:
        entries = [(a, b, sv) for a, b, sv, _part, _cut in airdrop_snapshot_rows(airdrop)]
        amount, factor = airdrop.amount, airdrop.sv_per_shared
        published_digest = airdrop.snapshot_sha256
    else:
        entries = [(e[0], e[1], int(e[2])) for e in snapshot["entries"]]
        amount, factor = int(snapshot["amount_minor"]), Decimal(snapshot["sv_per_shared"])
        published_digest = snapshot["snapshot_sha256"]
        if amount != airdrop.amount or factor != airdrop.sv_per_shared:
            check.problems.append("the snapshot's parameters differ from the airdrop's")
    check.holders = len(entries)
    digest = snapshot_digest(entries)
    if digest != published_digest or digest != airdrop.snapshot_sha256:
        check.problems.append(f"snapshot SHA-256 is {digest}, the airdrop recorded "
                              f"{airdrop.snapshot_sha256}")
    parts = largest_remainder(amount, [sv for _a, _b, sv in entries])
    if entries and sum(parts) != amount:
        check.problems.append(f"the split sums to {sum(parts)}, not {amount}")

    txn_ids = airdrop_transactions(airdrop)
    for metadata in Transaction.objects.filter(pk__in=txn_ids).values_list("metadata",
                                                                          flat=True):
        if metadata.get("snapshot_sha256") != airdrop.snapshot_sha256:
            check.problems.append(f"chunk {metadata.get('chunk')} records another snapshot")
    shared, sv = ledger.alliance_asset("SHARED"), ledger.alliance_asset("SV")
    credited: dict[str, int] = {}
    debited: dict[str, int] = {}
    postings = (Posting.objects.filter(transaction_id__in=txn_ids,
                                       account__kind=Account.Kind.WALLET)
                .values_list("account__public_id", "asset_id", "amount")
                .iterator(chunk_size=20_000))
    for public_id, asset_id, posted in postings:
        target = credited if asset_id == shared.pk else debited if asset_id == sv.pk else None
        if target is None:
            check.problems.append(f"a posting of another asset to {public_id}")
            continue
        target[public_id] = target.get(public_id, 0) + posted

    for (sv_account, shared_account, balance), part in zip(entries, parts, strict=True):
        got = credited.pop(shared_account, 0)
        if got != part:
            check.problems.append(f"{shared_account} received {got}, the split gives {part}")
        if part:
            check.recipients += 1
            check.shared_total += part
        planned = sv_cut(part, balance, factor)
        removed = -debited.pop(sv_account, 0)
        if removed > planned or removed < 0:
            check.problems.append(f"{sv_account} lost {removed} SV, the rule gives {planned}")
        elif removed < planned:
            check.capped += 1
    for public_id in list(credited) + list(debited):
        check.problems.append(f"{public_id} was posted to but is not in the snapshot")
    # A chunk with nothing to pay posts no transaction; any other gap is unfinished work.
    paying = sum(1 for chunk in range(airdrop.chunks) if _chunk_pays(parts, airdrop, chunk))
    if len(txn_ids) != paying:
        check.problems.append(f"{len(txn_ids)} of {paying} chunk transactions posted")
    return check


def _chunk_pays(parts: list[int], airdrop: Airdrop, chunk: int) -> bool:
    low, high = _bounds(airdrop, chunk)
    return any(parts[low:high])
