"""Running a scheduled job once per period, whatever happens (SPEC §9: "nothing lost, nothing
double").

``job_run`` is the one way a job runs. Its guarantees:

* once: ``JobRun`` is unique per ``(job, period)``; a run that is done returns at once;
* one worker at a time: the work runs under a PostgreSQL session advisory lock keyed on the
  run's id; a second worker started on the same period gets ``JobBusy`` (its task retries
  later and then finds the run done). The lock dies with its connection, so a killed worker
  never leaves it behind;
* resumable: the work itself commits in steps that each record their progress in the same
  database transaction (``progress_step``) under idempotency keys, so a rerun after a
  crash skips what was committed and finishes the rest.

On SQLite (the demo: one process) there is no lock to take.
"""

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict

from .models import JobRun

# Classid of the two-key advisory locks that guard job runs ("JOBS"); the run id is the other.
JOB_LOCK_CLASS = 0x4A4F4253


class JobBusy(Conflict):
    code = "job_busy"
    default_message = _("Another worker is running this job for this period.")


def set_based() -> bool:
    """Whether jobs run as set-based SQL (PostgreSQL) or through the ORM and the Python
    engine (the SQLite demo; ``LEDGER_ENGINE = "python"`` on PostgreSQL, for the tests that
    hold both paths to the same results)."""
    return (connection.vendor == "postgresql"
            and getattr(settings, "LEDGER_ENGINE", "auto") != "python")


def alliance_today() -> date:
    return timezone.now().astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the alliance's time zone."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def day_end(day: date) -> datetime:
    return day_start(day + timedelta(days=1))


def _try_lock(run_id: int) -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [JOB_LOCK_CLASS, run_id])
        (locked,) = cursor.fetchone()
        if locked:
            # A worker killed mid-statement leaves its session running that statement; this
            # makes the server notice the dead client within a second and roll back, which
            # frees the lock for the rerun (PostgreSQL 14+).
            cursor.execute("SET client_connection_check_interval = 1000")
    return locked


def _unlock(run_id: int) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("RESET client_connection_check_interval")
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [JOB_LOCK_CLASS, run_id])


def job_run(*, job: str, period: str, work: Callable[[JobRun], dict]) -> JobRun:
    """Run ``work(run)`` for ``(job, period)`` unless it is done; return the run.

    ``work`` returns the run's counts (shown in the console) and must be resumable: commit
    in steps through ``progress_step`` and skip what an earlier attempt committed. Raises
    ``JobBusy`` when another worker holds the run; re-raises the work's error after
    recording it on the run (status ``failed``, retried by the next attempt)."""
    run, _created = JobRun.objects.get_or_create(job=job, period=period)
    if run.status == JobRun.Status.DONE:
        return run
    if not _try_lock(run.pk):
        raise JobBusy(details={"job": job, "period": period})
    try:
        run.refresh_from_db()
        if run.status == JobRun.Status.DONE:
            return run
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.RUNNING, attempts=F("attempts") + 1, error="",
            started_at=Coalesce(F("started_at"), timezone.now()), finished_at=None,
        )
        run.refresh_from_db()
        try:
            counts = work(run)
        except Exception as exc:
            JobRun.objects.filter(pk=run.pk).update(
                status=JobRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000],
                finished_at=timezone.now(),
            )
            raise
        JobRun.objects.filter(pk=run.pk).update(
            status=JobRun.Status.DONE, counts=counts, finished_at=timezone.now(),
            progress_done=F("progress_total"),
        )
        run.refresh_from_db()
        return run
    finally:
        _unlock(run.pk)


def progress_total(run: JobRun, total: int, **counts) -> None:
    """Set how much the run has to do (and any counts known up front)."""
    run.progress_total = total
    run.counts = {**run.counts, **counts}
    JobRun.objects.filter(pk=run.pk).update(progress_total=total, counts=run.counts)


def progress_step(run: JobRun, done: int, **add) -> None:
    """Record ``done`` more units of work and add ``add`` to the run's counts. Call it inside
    the database transaction that did the work, so progress and work commit together."""
    counts = dict(run.counts)
    for name, value in add.items():
        counts[name] = counts.get(name, 0) + value
    run.progress_done += done
    run.counts = counts
    JobRun.objects.filter(pk=run.pk).update(progress_done=run.progress_done, counts=counts)


def job_is_active(run: JobRun) -> bool:
    """Whether a worker holds ``run`` now (its session holds the run's advisory lock)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [JOB_LOCK_CLASS, run.pk])
        (free,) = cursor.fetchone()
        if free:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [JOB_LOCK_CLASS, run.pk])
    return not free


def jobs_unfinished(*, max_attempts: int = 10) -> list[JobRun]:
    """Runs that crashed or failed, that no worker holds, and that may be resumed."""
    runs = (JobRun.objects.exclude(status=JobRun.Status.DONE)
            .filter(attempts__lt=max_attempts).order_by("created_at", "pk"))
    return [run for run in runs if not job_is_active(run)]


# --- reads for the console -----------------------------------------------------------------


def jobrun_list_running() -> list[JobRun]:
    """Runs not finished, each marked ``active`` when a worker holds it now (a run that is
    not active crashed and waits for the resume sweep)."""
    runs = list(JobRun.objects.filter(status=JobRun.Status.RUNNING).order_by("started_at", "pk"))
    for run in runs:
        run.active = job_is_active(run)
    return runs


def jobrun_list_history():
    return JobRun.objects.exclude(status=JobRun.Status.RUNNING).order_by("-started_at", "-pk")
