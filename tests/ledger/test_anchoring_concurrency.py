"""Anchoring while other connections commit out of id order: every transaction lands in the log
exactly once (real PostgreSQL, real commits, one connection per thread)."""

import random
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.db import transaction as db_transaction

from ledger import log_services
from ledger.models import LogLeaf, Transaction

from . import log_helpers

pytestmark = pytest.mark.django_db(transaction=True)
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures


def _in_thread(target, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _assert_logged_exactly_once() -> None:
    leaves = list(LogLeaf.objects.order_by("index").values_list("index", "transaction_id"))
    logged = [txn for _index, txn in leaves]
    assert [index for index, _txn in leaves] == list(range(len(leaves)))
    assert len(logged) == len(set(logged))
    assert sorted(logged) == sorted(Transaction.objects.values_list("pk", flat=True))


def test_a_transaction_committing_late_with_a_lower_id_lands_in_the_next_batch(kit, log_key):
    # given connection A holding an uncommitted transaction (the lower id)...
    posted, release, ids = threading.Event(), threading.Event(), {}

    def slow():
        with db_transaction.atomic():
            ids["late"] = kit.issue(7, shopper=0)
            posted.set()
            release.wait(10)

    thread = _in_thread(slow)
    assert posted.wait(10)
    # ...while connection B commits one after it (the higher id)
    ids["early"] = kit.issue(9, shopper=1)
    assert ids["late"] < ids["early"]

    # when anchoring runs before A commits
    first = log_services.log_anchor()
    release.set()
    thread.join(10)
    second = log_services.log_anchor()

    # then B's transaction is leaf 0, A's leaf 1 in the next checkpoint: none lost, none twice
    assert (first.leaves, second.leaves) == (1, 1)
    assert list(LogLeaf.objects.order_by("index").values_list("transaction_id", flat=True)) == [
        ids["early"], ids["late"]
    ]
    assert log_services.log_anchor().leaves == 0
    call_command("verify_ledger")


def test_two_connections_posting_out_of_order_while_anchoring_runs(kit, log_key):
    # given two connections posting, each holding its transaction open a random moment
    # before committing, so commits come out of id order
    per_thread = 40
    done = threading.Event()
    errors: list[BaseException] = []

    def poster(shopper: int, seed: int):
        rng = random.Random(seed)
        try:
            for _ in range(per_thread):
                with db_transaction.atomic():
                    kit.issue(rng.randint(1, 50), shopper=shopper)
                    time.sleep(rng.random() * 0.01)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    def anchorer():
        try:
            while not done.is_set():
                # Small batches, so runs page forward past ids whose owners have not committed.
                log_services.log_anchor(batch_size=7)
        except BaseException as exc:
            errors.append(exc)

    # when anchoring runs all the while on a third connection
    anchoring = _in_thread(anchorer)
    posters = [_in_thread(poster, shopper, seed) for shopper, seed in ((0, 1), (1, 2))]
    for thread in posters:
        thread.join(60)
    done.set()
    anchoring.join(60)
    assert errors == []
    log_services.log_anchor()

    # then every committed transaction is in the log exactly once, indexes without a gap
    assert Transaction.objects.count() == 2 * per_thread
    _assert_logged_exactly_once()
    call_command("verify_ledger")


def test_two_anchoring_runs_at_once_append_one_after_the_other(kit, log_key):
    # given many unlogged transactions
    for n in range(60):
        kit.issue(n + 1, shopper=n % 2)

    # when two workers anchor at the same moment
    start = threading.Barrier(2)
    counts: list[int] = []

    def anchor():
        start.wait(10)
        counts.append(log_services.log_anchor(batch_size=11).leaves)

    threads = [_in_thread(anchor) for _ in range(2)]
    for thread in threads:
        thread.join(60)

    # then between them they logged each transaction once, under one lock
    assert sum(counts) == 60
    _assert_logged_exactly_once()
    call_command("verify_ledger")
