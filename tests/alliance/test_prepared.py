"""``alliance.prepared``: the hot paths' statements are server-side prepared statements.

Django opens psycopg connections with ``prepare_threshold=None``, which turns off every
prepared statement, even one asked for by name; ``config.settings`` sets a threshold no
statement reaches, so that only the ones asked for are prepared."""

import os
import socket
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import DataError, OperationalError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from psycopg import pq

from alliance.prepared import fetchone_prepared

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="prepared statements are PostgreSQL's")

_SQL = "SELECT %s::int + 1 AS answer -- test_prepared"


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%-- test_prepared%"])
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_hot_path_statement_is_prepared_on_the_server_once():
    assert fetchone_prepared(_SQL, [41]) == (42,)
    assert fetchone_prepared(_SQL, [1]) == (2,)
    # one statement on the server, kept for the session, answering both calls
    assert len(_prepared()) == 1


@pytest.mark.django_db
def test_the_orms_statements_stay_unprepared():
    from alliance.models import User

    for _ in range(10):
        User.objects.filter(email="nobody@example.com").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements "
                       "WHERE statement LIKE '%%alliance_user%%'")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_behind_a_pooler_that_cannot_keep_them_nothing_is_prepared():
    with override_settings(LEDGER_PREPARED_STATEMENTS=False):
        assert fetchone_prepared(_SQL, [41]) == (42,)
    assert _prepared() == []


# Outside a transaction (a request or a task in autocommit) the statement goes to libpq
# directly: real commits, so these tests run outside pytest-django's wrapping transaction.
_TYPED = ("SELECT %s::bigint AS n, %s::text AS t, %s::numeric AS amount, %s::timestamptz AS at,"
          " %s::date AS day, %s::boolean AS yes, %s::text[] AS words, %s::bigint AS nothing,"
          " %s::jsonb AS doc, '[1, \"a\"]'::json AS list, 5 %% 3 AS rest -- test_prepared")
_TYPED_PARAMS = [2**62, 'ünïcode "quoted" \\ back', Decimal("-12.30"),
                 datetime(2026, 12, 6, 4, 5, 6, 789, tzinfo=UTC), date(2026, 2, 28), True,
                 ['a "b"', "c\\d", "", "NULL"], None, '{"k": [1, 2.5, null]}']


def _by_cursor(sql: str, params: list) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _idle_in_autocommit() -> bool:
    return (connection.get_autocommit() and not connection.in_atomic_block
            and connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_libpq_answers_what_a_cursor_answers():
    # given a connection in autocommit, as a request has it
    connection.ensure_connection()
    assert _idle_in_autocommit()
    # when a statement of every parameter and column type the hot paths use is sent twice
    with CaptureQueriesContext(connection) as queries:
        first = fetchone_prepared(_TYPED, _TYPED_PARAMS)
        again = fetchone_prepared(_TYPED, _TYPED_PARAMS)
    # then both answers are a cursor's, value for value and type for type
    expected = _by_cursor(_TYPED, _TYPED_PARAMS)
    assert first == again == expected
    assert [type(value) for value in first] == [type(value) for value in expected]
    assert first[3].tzinfo is not None and first[9] == [1, "a"] and first[10] == 2
    # and it went by libpq: prepared once under its own name, logged as a query, and no
    # transaction left open
    assert [name for name in _prepared_names() if name.startswith("hot_")] != []
    assert len(_prepared()) == 1
    assert len(queries) == 2 and "-- prepared" in queries[0]["sql"]
    assert _idle_in_autocommit()
    assert fetchone_prepared("SELECT %s::int WHERE false", [1]) is None  # no row


def _prepared_names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_an_error_is_djangos_and_the_connection_goes_on():
    # when a statement fails on the server, outside a transaction
    with pytest.raises(DataError) as failed:
        fetchone_prepared("SELECT 1 / %s::int -- test_prepared", [0])
    # then it is Django's error with the server's own, and the connection still answers
    assert failed.value.__cause__.sqlstate == "22012"  # division_by_zero
    assert _idle_in_autocommit()
    assert fetchone_prepared(_SQL, [1]) == (2,)


@pytest.mark.django_db(transaction=True)
def test_a_session_that_forgot_its_prepared_statements_prepares_again():
    assert fetchone_prepared(_SQL, [1]) == (2,)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert fetchone_prepared(_SQL, [2]) == (3,)
    assert len(_prepared()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_its_own():
    assert fetchone_prepared(_SQL, [1]) == (2,)
    connection.close()
    assert fetchone_prepared(_SQL, [2]) == (3,)
    assert len(_prepared()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_value_libpq_cannot_carry_goes_by_the_cursor():
    # A NUL would cut a text parameter short in libpq: the cursor refuses it whole.
    with pytest.raises(DataError):
        fetchone_prepared("SELECT %s::text -- test_prepared", ["a\x00b"])
    # A value with no plain text form here (a float) goes by the cursor, and is answered.
    assert fetchone_prepared("SELECT %s::float8 + 1 -- test_prepared", [0.5]) == (1.5,)
    assert _idle_in_autocommit()


@pytest.mark.django_db(transaction=True)
def test_with_autocommit_off_by_hand_the_statement_joins_the_open_transaction():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE prepared_test (word text)")
    # given a connection whose autocommit was turned off by hand, outside any atomic block
    connection.set_autocommit(False)
    try:
        fetchone_prepared("SELECT 1 -- test_prepared", [])
        fetchone_prepared("INSERT INTO prepared_test VALUES (%s) RETURNING word", ["kept?"])
        # when the caller rolls back
        connection.rollback()
    finally:
        connection.set_autocommit(True)
    # then the insert went with the transaction
    assert _by_cursor("SELECT count(*) FROM prepared_test", []) == (0,)
    # and in autocommit the same insert commits by itself
    assert fetchone_prepared("INSERT INTO prepared_test VALUES (%s) RETURNING word",
                             ["kept"]) == ("kept",)
    connection.rollback()  # nothing open: nothing to undo
    assert _by_cursor("SELECT count(*) FROM prepared_test", []) == (1,)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_lost_connection_is_an_operational_error():
    # given a connection whose socket is cut under libpq, with no word from the server
    assert fetchone_prepared(_SQL, [1]) == (2,)
    cut = socket.socket(fileno=os.dup(connection.connection.pgconn.socket))
    cut.shutdown(socket.SHUT_RDWR)
    cut.close()
    # when the next statement is sent, then it fails as psycopg fails a lost connection
    with pytest.raises(OperationalError):
        fetchone_prepared(_SQL, [2])
    connection.close()
    assert fetchone_prepared(_SQL, [3]) == (4,)


@pytest.mark.django_db(transaction=True)
def test_a_session_that_dropped_one_of_its_statements_prepares_it_alone_again():
    # given two hot statements, one of which the session deallocated by name
    other = "SELECT %s::int * 2 -- test_prepared"
    assert fetchone_prepared(_SQL, [1]) == (2,) and fetchone_prepared(other, [2]) == (4,)
    [name] = [n for n in _prepared_names() if n.startswith("hot_")
              and n != _hot_name(other)]
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {name}")
    # when both are asked again, then both answer (the one still prepared is kept)
    assert fetchone_prepared(_SQL, [3]) == (4,) and fetchone_prepared(other, [3]) == (6,)
    assert len(_prepared()) == 2


def _hot_name(sql: str) -> str:
    from alliance.prepared import _named

    return _named(sql)[0].decode()
