"""Races on the real PostgreSQL: many connections at once, one balance, one key."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from ledger import services
from ledger.errors import InsufficientBalance
from ledger.models import Hold, Lot, Transaction
from ledger.services import Leg
from tests.threads import race

# Up to 64 connections at once: in the "races" group with the other many-connection tests, so
# two of them never run side by side on PostgreSQL's 100 connections.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]

THREADS = 64


def test_64_spends_against_10(engine, wallet, issuance, fund):
    # given a wallet holding 10
    fund(wallet, 10)

    # when 64 connections each try to spend 1
    results = race(lambda i: services.transaction_post(
        kind="spend", legs=[Leg(wallet, -1), Leg(issuance, 1)],
        client="race", idempotency_key=f"spend-{i}"), THREADS)

    # then exactly 10 succeed, 54 get the insufficient-balance error, the balance ends at 0
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(errors) == 10
    assert len(errors) == 54
    assert all(isinstance(e, InsufficientBalance) for e in errors), {repr(e) for e in errors}
    wallet.refresh_from_db()
    assert wallet.balance == 0
    assert sum(Lot.objects.filter(account=wallet).values_list("remaining", flat=True)) == 0


def test_64_holds_against_10(engine, wallet, issuance, fund):
    fund(wallet, 10)
    results = race(lambda i: services.hold_place(
        wallet=wallet, amount=1, client="race", idempotency_key=f"hold-{i}"), THREADS)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(errors) == 10
    assert all(isinstance(e, InsufficientBalance) for e in errors), {repr(e) for e in errors}
    wallet.refresh_from_db()
    assert wallet.balance == 0
    assert Hold.objects.filter(wallet=wallet, state=Hold.State.PENDING).count() == 10


def test_20_requests_with_one_key_post_once(engine, wallet, issuance):
    results = race(lambda i: services.transaction_post(
        kind="issue", legs=[Leg(issuance, -5), Leg(wallet, 5)],
        client="pos-1", idempotency_key="same-key"), 20)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len({r.transaction_id for r in results}) == 1
    assert sum(1 for r in results if not r.replayed) == 1
    wallet.refresh_from_db()
    assert wallet.balance == 5
    assert Transaction.objects.filter(idempotency_key="same-key").count() == 1


def test_opposite_transfers_do_not_deadlock(engine, brand, issuance, fund):
    # Two wallets paying each other from many threads: locks in primary-key order mean
    # no deadlock, whatever order the legs are written in.
    from ledger.models import Account
    from tests.factories import UserFactory

    a = services.account_get_or_create(asset=brand, kind=Account.Kind.WALLET, user=UserFactory())
    b = services.account_get_or_create(asset=brand, kind=Account.Kind.WALLET, user=UserFactory())
    fund(a, 1000)
    fund(b, 1000)

    def pay(i: int):
        src, dst = (a, b) if i % 2 else (b, a)
        return services.transaction_post(kind="transfer", legs=[Leg(src, -7), Leg(dst, 7)],
                                         client="race", idempotency_key=f"t-{i}")

    results = race(pay, 40)
    assert not [r for r in results if isinstance(r, Exception)]
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.balance + b.balance == 2000
    assert a.balance == b.balance == 1000


def test_a_key_racing_past_the_replay_check_gets_the_first_transaction(wallet, issuance):
    # given a first request with the key, posted in a database transaction not yet committed
    import threading

    from django.db import connections, transaction

    first_posted, let_commit = threading.Event(), threading.Event()
    legs = [Leg(issuance, -5), Leg(wallet, 5)]

    def first():
        try:
            with transaction.atomic():
                posted = services.transaction_post(kind="issue", legs=legs, client="pos-2",
                                                   idempotency_key="raced")
                first_posted.set()
                let_commit.wait(10)
            return posted
        finally:
            connections.close_all()

    def second():
        try:
            first_posted.wait(10)
            # ledger_post() finds no committed row for the key, then waits on the wallet's lock
            return services.transaction_post(kind="issue", legs=legs, client="pos-2",
                                             idempotency_key="raced")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        one, two = pool.submit(first), pool.submit(second)
        first_posted.wait(10)
        # when the first commits while the second waits on the wallet's lock
        _wait_for_lock_waiter()
        let_commit.set()
        original, retried = one.result(20), two.result(20)

    # then the second's attempt left nothing behind and it returns the first's transaction
    assert retried.replayed and retried.transaction_id == original.transaction_id
    wallet.refresh_from_db()
    assert wallet.balance == 5
    assert Transaction.objects.filter(idempotency_key="raced").count() == 1


def _wait_for_lock_waiter(timeout: float = 10) -> None:
    import time

    from django.db import connections

    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE wait_event_type = 'Lock' AND query LIKE '%%ledger_post%%'")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second request never waited on the first's lock")
