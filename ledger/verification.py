"""Recompute the ledger from its journal and name every mismatch (``manage.py verify_ledger``).

The journal (transactions and postings) is the truth; balances and lots are derived state
kept for speed. An auditor with database access runs this to prove that the derived state
matches the journal and that the journal itself obeys double entry. Further checks (the
transparency log) register themselves in ``CHECKS``.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connection

from .models import Account, Lot, Posting
from .services import EVENT_PREFIX


@dataclass(frozen=True)
class Problem:
    check: str
    message: str
    transaction: int | None = None
    account: str | None = None
    log_index: int | None = None

    def __str__(self) -> str:
        where = []
        if self.transaction is not None:
            where.append(f"transaction {self.transaction}")
        if self.account is not None:
            where.append(f"account {self.account}")
        if self.log_index is not None:
            where.append(f"log index {self.log_index}")
        return f"[{self.check}] {self.message}" + (f" ({', '.join(where)})" if where else "")


def check_transactions_balance() -> Iterator[Problem]:
    """Every transaction's postings sum to zero per asset, and each posting names its
    account's asset."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.transaction_id, a.code, SUM(p.amount) FROM ledger_posting p "
            "JOIN ledger_asset a ON a.id = p.asset_id "
            "GROUP BY p.transaction_id, a.code HAVING SUM(p.amount) <> 0 "
            "ORDER BY p.transaction_id"
        )
        for txn_id, code, total in cursor.fetchall():
            yield Problem("balance", f"postings of {code} sum to {total}, not 0", txn_id)
        # The journal's foreign keys are checked at commit by ledger_posting_check(), not by
        # constraints: rows written around it are found here.
        cursor.execute(
            "SELECT p.transaction_id, p.leg, acc.public_id, acc.id IS NULL, t.id IS NULL "
            "FROM ledger_posting p LEFT JOIN ledger_account acc ON acc.id = p.account_id "
            "LEFT JOIN ledger_transaction t ON t.id = p.transaction_id "
            "WHERE acc.id IS NULL OR t.id IS NULL OR acc.asset_id <> p.asset_id "
            "ORDER BY p.transaction_id, p.leg"
        )
        for txn_id, leg, public_id, no_account, no_transaction in cursor.fetchall():
            if no_transaction:
                what = f"leg {leg} belongs to no transaction"
            elif no_account:
                what = f"leg {leg} names no account"
            else:
                what = f"leg {leg} names another asset than its account"
            yield Problem("balance", what, txn_id, public_id)
        cursor.execute(
            "SELECT t.id, t.kind, COUNT(p.id) FROM ledger_transaction t "
            "LEFT JOIN ledger_posting p ON p.transaction_id = t.id "
            "GROUP BY t.id, t.kind HAVING COUNT(p.id) < 2 ORDER BY t.id"
        )
        for txn_id, kind, count in cursor.fetchall():
            # Event records (kind "event.*") carry no postings by design; anything else
            # needs at least two legs to be double entry.
            if not (kind.startswith(EVENT_PREFIX) and count == 0):
                yield Problem("balance", f"{kind} transaction has {count} posting(s)", txn_id)


def check_account_balances() -> Iterator[Problem]:
    """Each bounded account's stored balance equals the sum of its postings and is >= 0.

    One query compares them all in the database and returns only the accounts that differ:
    at a million holders, reading every account and every sum into Python cost gigabytes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, a.public_id, a.balance, COALESCE(p.total, 0) FROM ledger_account a "
            "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_posting "
            "           GROUP BY account_id) p ON p.account_id = a.id "
            "WHERE a.bounded AND (a.balance <> COALESCE(p.total, 0) OR COALESCE(p.total, 0) < 0) "
            "ORDER BY a.id"
        )
        rows = cursor.fetchall()
    for account_pk, public_id, balance, total in rows:
        expected = int(total)
        if balance != expected:
            yield Problem("balances", f"stored balance {balance}, postings sum to {expected}",
                          _last_transaction(account_pk), public_id)
        if expected < 0:
            yield Problem("balances", f"bounded account is negative ({expected})",
                          _last_transaction(account_pk), public_id)


def _last_transaction(account_pk: int) -> int | None:
    return (Posting.objects.filter(account_id=account_pk).order_by("-transaction_id")
            .values_list("transaction_id", flat=True).first())


def replay_lots() -> dict[int, dict]:
    """Lots as the journal says they should be: {account_pk: {expires_at: remaining}}.

    The same algorithm as the posting engines, applied to postings in transaction order
    (which, for transactions sharing an account, is their commit order: ids are drawn under
    the account locks)."""
    tracked = set(Account.objects.filter(tracks_lots=True).values_list("pk", flat=True))
    lots: dict[int, dict] = defaultdict(dict)
    if not tracked:
        return lots
    assets_with_lots = set(
        Account.objects.filter(tracks_lots=True).values_list("asset_id", flat=True).distinct()
    )
    postings = (
        Posting.objects.filter(asset_id__in=assets_with_lots)
        .order_by("transaction_id", "leg")
        .values_list("transaction_id", "asset_id", "account_id", "amount", "expires_at")
        .iterator(chunk_size=5000)
    )
    current: list[tuple] = []
    current_txn = None
    # One object per expiry date, not one per posting: a day's lots share a few dates, and the
    # replay keeps a key for every lot.
    expiries: dict = {}
    for txn, asset, account, amount, expires_at in postings:
        if txn != current_txn and current:
            _replay_transaction(current, tracked, lots)
            current = []
        current_txn = txn
        current.append((txn, asset, account, amount,
                        expires_at if expires_at is None
                        else expiries.setdefault(expires_at, expires_at)))
    if current:
        _replay_transaction(current, tracked, lots)
    return lots


def _replay_transaction(rows: list[tuple], tracked: set[int], lots: dict[int, dict]) -> None:
    for asset_id in sorted({r[1] for r in rows if r[2] in tracked}):
        queue: list[list] = []
        for _txn, asset, account, amount, _exp in rows:
            if asset != asset_id or amount >= 0 or account not in tracked:
                continue
            need = -amount
            for expires_at in sorted(k for k, v in lots[account].items() if v > 0):
                take = min(lots[account][expires_at], need)
                lots[account][expires_at] -= take
                queue.append([expires_at, take])
                need -= take
                if not need:
                    break
            if need:
                lots[account]["short"] = lots[account].get("short", 0) + need
        for _txn, asset, account, amount, expires_at in rows:
            if asset != asset_id or amount <= 0:
                continue
            left = amount
            while left and queue:
                take = min(left, queue[0][1])
                if account in tracked:
                    lots[account][queue[0][0]] = lots[account].get(queue[0][0], 0) + take
                left -= take
                queue[0][1] -= take
                if not queue[0][1]:
                    queue.pop(0)
            if left and account in tracked:
                lots[account][expires_at] = lots[account].get(expires_at, 0) + left


def _stored_lots() -> Iterator[tuple[int, str | None, int, dict]]:
    """(account id, public id, balance, {expiry: remaining}) of every lot-tracked account and
    of every account holding lots, in id order; an account that tracks none has no public id
    or balance here. Two streams read a chunk at a time and merged, so that only the replay
    is ever held whole (the stored lots, public ids and balances of a million wallets held as
    well doubled the check's memory)."""
    accounts = (Account.objects.filter(tracks_lots=True).order_by("pk")
                .values_list("pk", "public_id", "balance").iterator(chunk_size=10_000))
    lots = (Lot.objects.order_by("account_id")
            .values_list("account_id", "expires_at", "remaining").iterator(chunk_size=10_000))
    account, lot = next(accounts, None), next(lots, None)
    while account is not None or lot is not None:
        pk = min(row[0] for row in (account, lot) if row is not None)
        public_id, balance = None, 0
        if account is not None and account[0] == pk:
            _pk, public_id, balance = account
            account = next(accounts, None)
        held = {}
        while lot is not None and lot[0] == pk:
            held[lot[1]] = lot[2]
            lot = next(lots, None)
        yield pk, public_id, balance, held


def check_lots() -> Iterator[Problem]:
    """Stored lots equal the replayed ones, and each lot-tracked account's lots sum to its
    balance."""
    expected = replay_lots()
    for account_pk, public_id, balance, stored in _stored_lots():
        if account_pk in expected or stored:
            yield from _lot_problems(account_pk, public_id, balance,
                                     expected.pop(account_pk, {}), stored)
    # The replay counts the accounts that track lots, which the stream reads whole; one whose
    # flag changed between the two reads is still compared, as holding no lots.
    for account_pk in sorted(expected):
        yield from _lot_problems(account_pk, None, 0, expected[account_pk], {})


def _lot_problems(account_pk: int, public_id: str | None, balance: int, replayed: dict,
                  stored: dict) -> Iterator[Problem]:
    want = {k: v for k, v in replayed.items() if v}
    have = {k: v for k, v in stored.items() if v}
    if "short" in want:
        yield Problem("lots", f"debits exceed lots by {want.pop('short')}",
                      _last_transaction(account_pk), public_id)
    if want != have:
        for expires_at in sorted(set(want) | set(have)):
            if want.get(expires_at, 0) != have.get(expires_at, 0):
                yield Problem(
                    "lots",
                    f"lot expiring {expires_at:%Y-%m-%d %H:%M} holds "
                    f"{have.get(expires_at, 0)}, the journal says {want.get(expires_at, 0)}",
                    _last_transaction(account_pk), public_id,
                )
    if sum(have.values()) != balance:
        yield Problem("lots", f"lots sum to {sum(have.values())}, balance is {balance}",
                      None, public_id)


CHECKS: list[tuple[str, Callable[[], Iterator[Problem]]]] = [
    ("transactions balance per asset", check_transactions_balance),
    ("account balances match postings", check_account_balances),
    ("lots match the journal", check_lots),
]


def verify_ledger() -> Iterator[tuple[str, list[Problem]]]:
    """Run every check; yield (check name, problems) as each finishes."""
    for name, check in CHECKS:
        yield name, list(check())


# The transparency log's checks (leaves, subtree hashes, checkpoints) live with the log and add
# themselves to CHECKS; they import ``Problem`` from here, hence the import at the end.
from . import log_verification  # noqa: E402, F401
