"""The airdrop on real Celery workers through Redis: a worker killed with SIGKILL in the middle
of a 200,000-holder airdrop, then the job run again, ends exactly where an uninterrupted run
would; two workers started on one date pay it once."""

import os
import signal
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app
from ledger.models import Account, Transaction
from points.airdrop import airdrop_verify
from points.jobs import JOB_LOCK_CLASS
from points.models import Airdrop, JobRun
from points.tasks import run_airdrop
from tests.alliance.test_worker import CELERY, _database_url, broker_url  # noqa: F401
from tests.points.jobs_helpers import (
    alliance_assets,
    expected_airdrop,
    ledger_consistent,
    sv_balances,
    sv_holders,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker,
              pytest.mark.xdist_group("worker")]

DAY = date(2026, 3, 1)
HOLDERS = 200_000
CHUNK = 16_000  # the default: 13 chunk transactions for 200,000 holders


class Workers:
    """Celery worker processes on queues of their own, against the test database; every one
    still running is killed when the test ends."""

    def __init__(self, broker: str, tmp_path: Path):
        self.broker, self.tmp_path, self.processes = broker, tmp_path, []

    def start(self) -> tuple[str, subprocess.Popen, Path]:
        queue = f"test-jobs-{uuid.uuid4().hex[:12]}"
        log_path = self.tmp_path / f"{queue}.log"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
               "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": self.broker,
               "CELERY_TASK_ALWAYS_EAGER": "false"}
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [str(CELERY), "-A", "config", "worker", "--pool=solo", "-Q", queue,
                 "--without-heartbeat", "--without-gossip", "--without-mingle",
                 "--loglevel=INFO"],
                cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return queue, process, log_path

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


@pytest.fixture
def workers(broker_url, tmp_path):  # noqa: F811
    alliance_assets()
    pool = Workers(broker_url, tmp_path)
    yield pool
    pool.stop_all()


def _send(queue: str) -> None:
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        run_airdrop.apply_async(args=[DAY.isoformat()], queue=queue)
    finally:
        app.conf.task_always_eager = eager


def _run() -> JobRun | None:
    return JobRun.objects.filter(job="airdrop", period=DAY.isoformat()).first()


def _wait(condition, seconds: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs)
    pytest.fail(f"{what} within {seconds}s; worker logs:\n{tails}")


def _lock_free(run_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                       "AND classid = %s AND objid = %s AND objsubid = 2",
                       [JOB_LOCK_CLASS, run_id])
        return cursor.fetchone()[0] == 0


def _shared_by_sv_account() -> dict[int, int]:
    holder_of = dict(Account.objects.filter(asset__code="SV", kind="wallet")
                     .values_list("holder_key", "pk"))
    return {holder_of[key]: balance for key, balance in
            Account.objects.filter(asset__code="SHARED", kind="wallet")
            .values_list("holder_key", "balance") if key in holder_of}


def _assert_exactly_one_clean_run(before: dict[int, int]) -> None:
    received, after = expected_airdrop(before, 49_800)
    assert sv_balances() == after
    shared = _shared_by_sv_account()
    assert {pk: shared.get(pk, 0) for pk in received} == received
    airdrop = Airdrop.objects.get(date=DAY)
    assert Transaction.objects.filter(kind="airdrop").count() == airdrop.chunks
    assert airdrop_verify(day=DAY).ok
    assert ledger_consistent() == []


def test_a_worker_killed_mid_airdrop_then_run_again_ends_as_an_uninterrupted_run(workers):
    # given 200,000 SV holders (made set-based) and a worker
    sv_holders([1 + (n * 7919) % 10_000 for n in range(HOLDERS)])
    before = sv_balances()
    queue, process, log = workers.start()

    # when the airdrop starts on it, and the worker is killed once two chunks are committed
    _send(queue)
    _wait(lambda: (r := _run()) and r.progress_done >= 2 * CHUNK, 900,
          "two chunks committed", [log])
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    interrupted = _run()
    assert interrupted.status == JobRun.Status.RUNNING
    assert interrupted.progress_done < interrupted.progress_total
    committed = Transaction.objects.filter(kind="airdrop").count()
    assert 2 <= committed < Airdrop.objects.get(date=DAY).chunks
    # (the killed worker's session is rolled back by the server and frees the run's lock)
    _wait(lambda: _lock_free(interrupted.pk), 120, "the dead worker's lock freed", [log])

    # and the job is run again, on another worker
    queue, _process, log2 = workers.start()
    _send(queue)
    done = _wait(lambda: (r := _run()) and r.status == JobRun.Status.DONE and r, 900,
                 "the airdrop done", [log, log2])

    # then the ledger is exactly what one uninterrupted run gives
    assert done.attempts == 2
    assert done.counts["holders"] == HOLDERS
    _assert_exactly_one_clean_run(before)


def test_two_workers_started_on_one_date_pay_it_once(workers):
    # given 40,000 holders and two workers
    sv_holders([1 + (n * 104_729) % 50_000 for n in range(40_000)])
    before = sv_balances()
    (queue_a, _a, log_a), (queue_b, _b, log_b) = workers.start(), workers.start()
    _wait(lambda: all("ready." in p.read_text() for p in (log_a, log_b)), 120,
          "both workers ready", [log_a, log_b])

    # when both are asked for the same date at once
    _send(queue_a)
    _send(queue_b)
    _wait(lambda: (r := _run()) and r.status == JobRun.Status.DONE, 900, "the airdrop done",
          [log_a, log_b])
    # and both tasks have finished: one did the work, the other found it busy, retried and
    # then found it done
    _wait(lambda: all("succeeded" in p.read_text() for p in (log_a, log_b)), 180,
          "both tasks succeeded", [log_a, log_b])

    # then the date was paid once
    assert any("JobBusy" in p.read_text() for p in (log_a, log_b))
    assert _run().attempts == 1
    _assert_exactly_one_clean_run(before)
