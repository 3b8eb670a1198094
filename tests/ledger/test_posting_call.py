"""The PostgreSQL posting call as the hot path makes it: outside any transaction (libpq's own
prepared statement, committing by itself), and ``ledger_post()`` called from SQL."""

import hashlib
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.utils import DatabaseError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import pq

from ledger import services
from ledger.errors import IdempotencyConflict, InsufficientBalance
from ledger.models import Account, Lot, Transaction
from ledger.services import Leg

# Real commits: the hot path runs only outside a transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def _idle_in_autocommit() -> bool:
    return (connection.get_autocommit() and not connection.in_atomic_block
            and connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE)


def test_outside_a_transaction_posts_replays_and_refuses_in_one_call_each(wallet, issuance):
    # given a connection in autocommit, as a request or a task has it
    connection.ensure_connection()
    assert _idle_in_autocommit()
    legs = [Leg(issuance, -500), Leg(wallet, 500)]
    # when a transaction is posted, then asked again with the same key
    with CaptureQueriesContext(connection) as queries:
        first = services.transaction_post(kind="issue", legs=legs, client="till",
                                          idempotency_key="k1")
    again = services.transaction_post(kind="issue", legs=legs, client="till",
                                      idempotency_key="k1")
    # then one call posted it, committed, and the replay names the same transaction
    assert len(queries) == 1 and "ledger_post" in queries[0]["sql"]
    assert not first.replayed and again.replayed
    assert again.transaction_id == first.transaction_id
    assert again.created_at == first.created_at
    assert first.created_at.tzinfo is not None
    assert Account.objects.get(pk=wallet.pk).balance == 500
    assert _idle_in_autocommit()

    # when the key comes back with another request, or a debit exceeds the balance
    with pytest.raises(IdempotencyConflict):
        services.transaction_post(kind="issue", legs=[Leg(issuance, -7), Leg(wallet, 7)],
                                  client="till", idempotency_key="k1")
    with pytest.raises(InsufficientBalance) as refused:
        services.transaction_post(kind="spend", legs=[Leg(wallet, -501), Leg(issuance, 501)],
                                  client="till", idempotency_key="k2")
    # then the refusal names the wallet, nothing of it stays, and the connection goes on
    assert refused.value.details == {"account": wallet.public_id}
    assert not Transaction.objects.filter(client="till", idempotency_key="k2").exists()
    assert Account.objects.get(pk=wallet.pk).balance == 500
    assert _idle_in_autocommit()


def test_a_new_connection_prepares_the_call_again(wallet, issuance):
    # given a posting on one connection, which prepared the call there
    services.transaction_post(kind="issue", legs=[Leg(issuance, -1), Leg(wallet, 1)],
                              client="till", idempotency_key="c1")
    # when the connection is closed (a worker recycled, CONN_MAX_AGE) and another opened
    connection.close()
    posted = services.transaction_post(kind="issue", legs=[Leg(issuance, -2), Leg(wallet, 2)],
                                       client="till", idempotency_key="c2")
    # then the call works there too
    assert not posted.replayed
    assert Account.objects.get(pk=wallet.pk).balance == 3


def test_the_fingerprint_is_the_canonical_json_of_the_request(wallet, issuance):
    # given a request with an expiring credit and metadata to sort and escape
    expires = timezone.now() + timedelta(days=30)
    metadata = {"order_ref": "单号-1 \"x\"", "b": [2, {"z": 1, "a": None}]}
    posted = services.transaction_post(
        kind="issue", legs=[Leg(issuance, -9), Leg(wallet, 9, expires_at=expires)],
        client="till", idempotency_key="f1", metadata=metadata)
    # then the stored fingerprint is the SHA-256 of the request as canonical JSON, the bytes
    # earlier releases stored too (a replay across an upgrade stays a replay)
    body = {"kind": "issue", "metadata": metadata,
            "legs": [[issuance.pk, "-9", None], [wallet.pk, "9", expires.isoformat()]]}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    stored = Transaction.objects.get(pk=posted.transaction_id).fingerprint
    assert stored == hashlib.sha256(canonical.encode()).hexdigest()


def _call(legs: list[dict], key: str):
    with connection.cursor() as cursor:
        cursor.execute("SELECT txn_id, outcome FROM ledger_post('issue', 'sql', %s, 'fp', "
                       "'{}'::jsonb, now(), %s::jsonb)", [key, json.dumps(legs)])
        return cursor.fetchone()


def test_credits_of_one_expiry_merge_into_one_lot(wallet, issuance):
    # given two credits of one expiry and one of another, in one call from SQL
    soon, later = timezone.now() + timedelta(days=10), timezone.now() + timedelta(days=20)
    legs = [{"leg": 0, "account": issuance.pk, "amount": -60},
            {"leg": 1, "account": wallet.pk, "amount": 10, "expires_at": soon.isoformat()},
            {"leg": 2, "account": wallet.pk, "amount": 20, "expires_at": later.isoformat()},
            {"leg": 3, "account": wallet.pk, "amount": 30, "expires_at": soon.isoformat()}]
    _txn, outcome = _call(legs, "m1")
    # then the wallet holds two lots, and its balance their sum
    assert outcome == "posted"
    lots = dict(Lot.objects.filter(account=wallet).values_list("expires_at", "remaining"))
    assert lots == {soon: 40, later: 20}
    assert Account.objects.get(pk=wallet.pk).balance == 60


@pytest.mark.parametrize(("legs", "error"), [
    # a credit to a lot-tracked account that no debit frees lots for, with no expiry
    (lambda i, w: [{"leg": 0, "account": i, "amount": -5}, {"leg": 1, "account": w, "amount": 5}],
     "lot_expiry_missing"),
    # an account that does not exist
    (lambda i, w: [{"leg": 0, "account": i, "amount": -5},
                   {"leg": 1, "account": 987654321, "amount": 5}], "unknown_account"),
    # a leg that names no account
    (lambda i, w: [{"leg": 0, "account": i, "amount": -5}, {"leg": 1, "amount": 5}],
     "unknown_account"),
])
def test_sql_callers_get_the_same_refusals(wallet, issuance, legs, error):
    with pytest.raises(DatabaseError, match=error):
        _call(legs(issuance.pk, wallet.pk), "r1")
    assert not Transaction.objects.filter(client="sql").exists()
    assert Account.objects.get(pk=wallet.pk).balance == 0


def test_a_debit_of_lots_runs_the_queue_from_sql(wallet, issuance, fund):
    # given lots of two expiries
    soon, later = timezone.now() + timedelta(days=10), timezone.now() + timedelta(days=20)
    fund(wallet, 30)  # at the brand's own expiry, a year away
    services.transaction_post(kind="issue", legs=[Leg(issuance, -5), Leg(wallet, 5, soon)],
                              client="t", idempotency_key="soon")
    services.transaction_post(kind="issue", legs=[Leg(issuance, -7), Leg(wallet, 7, later)],
                              client="t", idempotency_key="later")
    hold = services.account_get_or_create(asset=wallet.asset, kind=Account.Kind.HOLD,
                                          user=wallet.user)
    # when 8 move from the wallet to its hold account, called from SQL
    _call([{"leg": 0, "account": wallet.pk, "amount": -8},
           {"leg": 1, "account": hold.pk, "amount": 8}], "q1")
    # then the soonest lot went first, and the hold carries the expiries it took
    assert dict(Lot.objects.filter(account=hold).values_list("expires_at", "remaining")) == {
        soon: 5, later: 3}
    assert Lot.objects.get(account=wallet, expires_at=later).remaining == 4


def test_a_session_that_forgot_its_prepared_statements_prepares_the_call_again(wallet,
                                                                              issuance):
    # given a connection that prepared the call, then dropped every prepared statement
    services.transaction_post(kind="issue", legs=[Leg(issuance, -1), Leg(wallet, 1)],
                              client="till", idempotency_key="p1")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    # when the next transaction is posted on it
    posted = services.transaction_post(kind="issue", legs=[Leg(issuance, -2), Leg(wallet, 2)],
                                       client="till", idempotency_key="p2")
    # then it is posted all the same
    assert not posted.replayed
    assert Account.objects.get(pk=wallet.pk).balance == 3


def test_outside_atomic_with_autocommit_off_the_call_joins_the_open_transaction(wallet,
                                                                              issuance):
    # given a connection whose autocommit was turned off by hand, outside any atomic block
    connection.set_autocommit(False)
    try:
        services.transaction_post(kind="issue", legs=[Leg(issuance, -4), Leg(wallet, 4)],
                                  client="till", idempotency_key="a1")
        # when the caller rolls back instead of committing
        connection.rollback()
    finally:
        connection.set_autocommit(True)
    # then nothing was posted: the call did not commit by itself
    assert not Transaction.objects.filter(client="till", idempotency_key="a1").exists()
    assert Account.objects.get(pk=wallet.pk).balance == 0
