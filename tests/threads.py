"""Helpers for tests that race many connections at once on the real PostgreSQL."""

import time

from django.db import OperationalError, connection


def connect_when_a_slot_is_free(seconds: float = 20) -> None:
    """Open this thread's connection, waiting while the server has no connection left.

    The races open up to 64 connections at once, and the other test worker may be using
    several itself: together they can touch PostgreSQL's ``max_connections`` (100 here). A
    refused connection would say nothing about the code under test, so the thread waits for a
    free slot before it races, as a pooled web worker would."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError as exc:
            if "too many clients" not in str(exc) or time.monotonic() > deadline:
                raise
            connection.close()
            time.sleep(0.05)
