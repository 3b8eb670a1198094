"""Helpers for tests that race many connections at once on the real PostgreSQL."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import OperationalError, connection


def connect_when_a_slot_is_free(seconds: float = 120) -> None:
    """Open this thread's connection, waiting while the server has no connection left.

    The races open up to 64 connections at once, and the other test worker may be using
    several itself: together they can touch PostgreSQL's ``max_connections`` (100 here). A
    refused connection would say nothing about the code under test, so the thread waits for a
    free slot before it races, as a pooled web worker would. The other worker's tests can
    hold their connections for tens of seconds (a CI run on 2026-12-06 found none free for
    20 s), so the wait is long; a race that still finds none fails with PostgreSQL's error."""
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


def race(fn, count: int, workers: int | None = None) -> list:
    """Run ``fn(i)`` for i in range(count) on ``workers`` threads at once (all started
    together behind a barrier), each thread on its own database connection, closed after.
    Returns the results, with an exception in place of the result of a call that raised."""
    workers = min(workers or count, count)
    barrier = threading.Barrier(workers)

    def worker(i: int):
        try:
            connect_when_a_slot_is_free()  # connected before the start, so all start at once
            if i < workers:
                try:
                    barrier.wait(timeout=30)
                except threading.BrokenBarrierError:
                    pass
            return fn(i)
        except Exception as exc:  # collected and asserted on by the test
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(worker, range(count)))
