"""Statements on the hot paths, sent as server-side prepared statements on Django's connection.

Parsing and planning a statement once per connection instead of at every request, and sending
its parameters apart from its text, is most of what a short statement costs the database; the
ORM's building of it is most of what it costs Python.

Outside a transaction (a request or a task in autocommit, the hot path) the statement goes
straight to libpq as a prepared statement of its own: its parameters sent as text (every hot
statement casts them), its row read with psycopg's own loaders for the result's column types,
so the values are the ones a cursor would give. A psycopg cursor (generators, type look-ups,
its statement cache) cost about twice what the round trip itself costs the client. Inside a
transaction, or with a parameter that has no plain text form here, the statement goes through
a psycopg cursor, server-side prepared, so that psycopg opens the transaction it owes the
caller. ``LEDGER_PREPARED_STATEMENTS = False`` (behind a pooler that cannot keep prepared
statements) sends them through Django's ordinary cursor instead.
"""

import hashlib
import re
import time
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.psycopg_any import is_psycopg3

if is_psycopg3:
    import psycopg
    from psycopg import errors, pq

_UNKNOWN_TYPE = 0  # the OID psycopg falls back to for a type it has no loader of
_NO_STATEMENT = b"26000"  # invalid_sql_statement_name: the session forgot the statement
_STATEMENT_EXISTS = b"42P05"  # duplicate_prepared_statement
_PLACEHOLDER = re.compile(r"%(.)", re.S)


def fetchone_prepared(sql: str, params: list) -> tuple | None:
    """The first row of ``sql`` (PostgreSQL; ``%s`` placeholders), or None. Errors come out
    as Django's, and the statement is logged where Django logs queries
    (``CaptureQueriesContext``, DEBUG), so query counts see it."""
    if not (settings.LEDGER_PREPARED_STATEMENTS and is_psycopg3):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    connection.ensure_connection()
    started = time.monotonic()
    raw = connection.connection
    values = _text_values(params) if _idle_in_autocommit(raw) else None
    with connection.wrap_database_errors:
        if values is not None:
            row = _fetchone_libpq(raw, sql, values)
        else:
            with psycopg.Cursor(raw) as cursor:
                cursor.execute(sql, params, prepare=True)
                row = cursor.fetchone()
    if connection.queries_logged:
        connection.queries_log.append({"sql": f"{' '.join(sql.split())[:80]}... -- prepared",
                                       "time": f"{time.monotonic() - started:.3f}"})
    return row


def _idle_in_autocommit(raw) -> bool:
    """Whether a statement sent past psycopg leaves everything as psycopg believes it is: in
    autocommit, outside an atomic block, with no transaction open (autocommit turned off by
    hand leaves one open after the first statement)."""
    return (connection.autocommit and not connection.in_atomic_block
            and raw.pgconn.transaction_status == pq.TransactionStatus.IDLE)


def _array_item(value) -> str | None:
    if type(value) is int:
        return str(value)
    if isinstance(value, str):  # a text choice too: its value, as psycopg sends it
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def _text(value) -> bool | bytes | None:
    """``value`` in PostgreSQL's text input form; False where this has none for it."""
    if value is None:
        return None
    kind = type(value)
    if isinstance(value, str):  # a text choice too: its value, as psycopg sends it
        text = value
    elif kind is bool:
        return b"t" if value else b"f"
    elif kind is int:
        return str(value).encode()
    elif kind is Decimal:
        if not value.is_finite():
            return False
        text = str(value)
    elif kind is datetime or kind is date:
        text = value.isoformat()
    elif kind is list or kind is tuple:
        items = [_array_item(item) for item in value]
        if None in items:
            return False
        text = "{" + ",".join(items) + "}"
    else:
        return False
    encoded = text.encode()
    # libpq reads a text parameter up to its first NUL: such a value goes by the cursor,
    # which refuses it whole.
    return False if b"\x00" in encoded else encoded


def _text_values(params: list) -> list | None:
    values = [_text(value) for value in params]
    return None if any(value is False for value in values) else values


@lru_cache(maxsize=256)
def _named(sql: str) -> tuple[bytes, bytes]:
    """The statement's name on the server (from its text) and its text with ``$n``."""
    number = 0

    def placeholder(match) -> str:
        nonlocal number
        if match.group(1) == "%":
            return "%"
        if match.group(1) != "s":
            raise ValueError(f"only %s placeholders: {sql[:60]!r}")
        number += 1
        return f"${number}"

    text = _PLACEHOLDER.sub(placeholder, sql)
    name = "hot_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
    return name.encode(), text.encode()


def _fetchone_libpq(raw, sql: str, values: list, again: bool = True) -> tuple | None:
    """One ``PQexecPrepared`` on the connection's libpq handle. The statements this
    connection prepared, with the loaders of their columns, are kept on Django's connection
    wrapper for as long as it holds this libpq connection."""
    pgconn = raw.pgconn
    kept = getattr(connection, "_hot_statements", None)
    if kept is None or kept[0] is not pgconn:
        kept = connection._hot_statements = (pgconn, {})
    statements = kept[1]
    name, text = _named(sql)
    if name not in statements:
        result = pgconn.prepare(name, text)
        # (already there: the session kept it while this side forgot it, see below)
        if (result.status != pq.ExecStatus.COMMAND_OK
                and result.error_field(pq.DiagnosticField.SQLSTATE) != _STATEMENT_EXISTS):
            _raise(raw, result)
        statements[name] = None
    result = pgconn.exec_prepared(name, values)
    if result.status != pq.ExecStatus.TUPLES_OK:
        if (again and result.status == pq.ExecStatus.FATAL_ERROR
                and result.error_field(pq.DiagnosticField.SQLSTATE) == _NO_STATEMENT):
            # DISCARD ALL or DEALLOCATE ran on this session: prepare it again, once.
            statements.clear()
            return _fetchone_libpq(raw, sql, values, again=False)
        _raise(raw, result)
    if not result.ntuples:
        return None
    loaders = statements[name]
    if loaders is None:
        loaders = statements[name] = [_loader(raw, result.ftype(column))
                                      for column in range(result.nfields)]
    return tuple(None if (value := result.get_value(0, column)) is None else load(value)
                 for column, load in enumerate(loaders))


def _raise(raw, result) -> None:
    if raw.pgconn.status == pq.ConnStatus.BAD:
        # The connection is gone (a cut, a server that died without a word): psycopg says
        # so with an OperationalError, whatever the result carries.
        raise psycopg.OperationalError(result.get_error_message(raw.info.encoding))
    raise errors.error_from_result(result, encoding=raw.info.encoding)


def _loader(raw, oid: int):
    """psycopg's loader of a text value of type ``oid`` on this connection (its JSON,
    time-zone and numeric settings), as a cursor would use."""
    adapters = raw.adapters
    loader = (adapters.get_loader(oid, pq.Format.TEXT)
              or adapters.get_loader(_UNKNOWN_TYPE, pq.Format.TEXT))
    return loader(oid, raw).load
