"""Celery tasks of the scheduled jobs (``CELERY_BEAT_SCHEDULE``): the daily airdrop and point
expiry, expiry reminders, the yearly ALLY inflation, a sweep that resumes crashed runs, and
the marking of expired vouchers.

Thin: each parses its period and calls one service. Every service runs under
``points.jobs.job_run``, so a task delivered twice, retried, or run by two workers at once
does the work once; a worker killed mid-run leaves a run the sweep (or the next delivery)
resumes. ``JobBusy`` (another worker holds the run) is retried with backoff: by then the
other worker has finished, or died and released the run.
"""

from datetime import date

from celery import shared_task

from alliance.inflation import inflation_run_for_year

from .airdrop import airdrop_run_for_date
from .catalog import vouchers_expire
from .expiry import expiry_reminders_send, points_expire_for_date
from .jobs import JobBusy, alliance_today, jobs_unfinished
from .models import JobRun

_JOB_TASK = dict(acks_late=True, reject_on_worker_lost=True, ignore_result=True,
                 autoretry_for=(JobBusy, ConnectionError), retry_backoff=30,
                 retry_backoff_max=600, max_retries=8)


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else alliance_today()


@shared_task(**_JOB_TASK)
def run_airdrop(day: str | None = None) -> dict:
    """The airdrop of ``day`` (ISO date; default today in the alliance's time zone)."""
    run = airdrop_run_for_date(day=_day(day))
    return {"status": run.status, **run.counts}


@shared_task(**_JOB_TASK)
def expire_points(day: str | None = None) -> dict:
    run = points_expire_for_date(day=_day(day))
    return {"status": run.status, **run.counts}


@shared_task(**_JOB_TASK)
def send_expiry_reminders(day: str | None = None) -> dict:
    run = expiry_reminders_send(day=_day(day))
    return {"status": run.status, **run.counts}


@shared_task(**_JOB_TASK)
def mint_inflation(year: int | None = None) -> dict:
    """The ALLY inflation of ``year`` (default: the year that just ended)."""
    run = inflation_run_for_year(year=year or alliance_today().year - 1)
    return {"status": run.status, **run.counts}


@shared_task(ignore_result=True)
def expire_vouchers() -> int:
    """Mark the vouchers past their date expired; returns how many. Safe to repeat."""
    return vouchers_expire()


_RESUME = {
    JobRun.Job.AIRDROP: lambda period: run_airdrop.delay(period),
    JobRun.Job.EXPIRY: lambda period: expire_points.delay(period),
    JobRun.Job.EXPIRY_REMINDER: lambda period: send_expiry_reminders.delay(period),
    JobRun.Job.INFLATION: lambda period: mint_inflation.delay(int(period)),
}


@shared_task(ignore_result=True)
def resume_jobs() -> int:
    """Queue again every run that crashed or failed (a live one answers ``JobBusy`` and
    retries; a done one returns at once); returns how many were queued."""
    queued = 0
    for run in jobs_unfinished():
        _RESUME[run.job](run.period)
        queued += 1
    return queued
