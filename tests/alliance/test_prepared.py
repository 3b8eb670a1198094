"""``alliance.prepared``: the hot paths' statements are server-side prepared statements.

Django opens psycopg connections with ``prepare_threshold=None``, which turns off every
prepared statement, even one asked for by name; ``config.settings`` sets a threshold no
statement reaches, so that only the ones asked for are prepared."""

import pytest
from django.db import connection
from django.test import override_settings

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
