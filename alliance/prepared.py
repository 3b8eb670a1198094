"""Statements on the hot paths, sent as server-side prepared statements on Django's connection.

Parsing and planning a statement once per connection instead of at every request, and sending
its parameters apart from its text, is most of what a short statement costs the database; the
ORM's building of it is most of what it costs Python. ``ledger.engine`` sends the posting
call through here inside a transaction (outside one, through libpq's own prepared
statement). ``LEDGER_PREPARED_STATEMENTS = False`` (behind a pooler that cannot keep prepared
statements) sends them through Django's ordinary cursor instead.
"""

import time

from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.psycopg_any import is_psycopg3

if is_psycopg3:
    import psycopg


def fetchone_prepared(sql: str, params: list) -> tuple | None:
    """The first row of ``sql`` (PostgreSQL), or None. Errors come out as Django's, and the
    statement is logged where Django logs queries (``CaptureQueriesContext``, DEBUG), so
    query counts see it."""
    if not (settings.LEDGER_PREPARED_STATEMENTS and is_psycopg3):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    connection.ensure_connection()
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        row = cursor.fetchone()
    if connection.queries_logged:
        connection.queries_log.append({"sql": f"{' '.join(sql.split())[:80]}... -- prepared",
                                       "time": f"{time.monotonic() - started:.3f}"})
    return row
