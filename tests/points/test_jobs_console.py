"""The jobs as operators see and drive them: the console page, the Celery tasks, the beat
schedule, the lock that keeps a run to one worker, and the sweep that resumes crashed runs."""

import time
from datetime import date

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from alliance.permissions import Role
from points import tasks
from points.airdrop import airdrop_run_for_date
from points.jobs import JOB_LOCK_CLASS, JobBusy, jobs_unfinished
from points.models import JobRun
from tests.alliance.conftest import user_with_role
from tests.points.jobs_helpers import alliance_assets, sv_balances, sv_holders

DAY = date(2026, 3, 1)


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "status"), [
    (Role.ALLIANCE_STAFF, 200), (Role.SUPERVISOR, 200), (Role.COUNCIL, 403),
    (Role.SHOPPER, 403), (Role.OWNER, 403),
])
def test_the_jobs_page_is_for_staff_and_supervisors(client, role, status):
    client.force_login(user_with_role(role),
                       backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/console/jobs/").status_code == status
    assert client.get("/console/jobs/running/").status_code == status


@pytest.mark.django_db
def test_a_visitor_is_sent_to_sign_in(client):
    response = client.get("/console/jobs/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_running_jobs_show_progress_that_reloads_itself_and_the_history_shows_counts(client):
    # given a running airdrop half done and a finished expiry
    JobRun.objects.create(job="airdrop", period="2026-03-01", progress_done=40,
                          progress_total=80, counts={"holders": 80}, started_at=timezone.now())
    JobRun.objects.create(job="expiry", period="2026-02-28", status="done",
                          counts={"accounts": 12, "expired:BURGER": 3456},
                          started_at=timezone.now(), finished_at=timezone.now(), attempts=1)
    client.force_login(user_with_role(Role.SUPERVISOR),
                       backend="django.contrib.auth.backends.ModelBackend")

    # when staff open the page, and htmx asks for the running section
    page = client.get("/console/jobs/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    section = client.get("/console/jobs/running/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # then the bar says 40 of 80, the section polls itself, and no script is inline
    assert 'max="80" value="40"' in page and "40 of 80 (50%)" in page
    assert 'hx-get="/console/jobs/running/"' in section and 'hx-trigger="every 3s"' in section
    assert "Interrupted; will resume" in section  # no worker holds it
    assert "expired:BURGER: 3456" in page and "accounts: 12" in page
    assert "<script>" not in page.split("</main>")[0]


def test_the_beat_schedule_has_the_jobs_at_their_times():
    schedule = settings.CELERY_BEAT_SCHEDULE
    airdrop = schedule["airdrop-daily"]["schedule"]
    expiry = schedule["expire-points-daily"]["schedule"]
    inflation = schedule["ally-inflation-yearly"]["schedule"]
    assert schedule["airdrop-daily"]["task"] == "points.tasks.run_airdrop"
    assert (airdrop.hour, airdrop.minute) == ({0}, {5})
    assert (expiry.hour, expiry.minute) == ({0}, {10})
    assert (inflation.month_of_year, inflation.day_of_month) == ({1}, {1})
    assert "points.tasks.send_expiry_reminders" in {e["task"] for e in schedule.values()}
    assert settings.CELERY_TIMEZONE == settings.TIME_ZONE == "Asia/Shanghai"


@pytest.mark.django_db
def test_the_tasks_run_the_services_and_the_sweep_resumes_a_failed_run():
    # given holders and an airdrop run that failed
    alliance_assets()
    sv_holders([100, 200, 300])
    JobRun.objects.create(job="airdrop", period=DAY.isoformat(), status="failed",
                          attempts=1, error="ConnectionError: lost")

    # when the sweep runs (tasks run in-process in the test settings)
    queued = tasks.resume_jobs.delay().get()

    # then the run was queued again and finished
    run = JobRun.objects.get(job="airdrop", period=DAY.isoformat())
    assert queued == 1 and run.status == "done" and run.attempts == 2 and run.error == ""
    assert tasks.run_airdrop.delay(DAY.isoformat()).get()["status"] == "done"
    assert jobs_unfinished() == []


def _wait_until_free(run_id: int, seconds: float = 20) -> None:
    """The server ends a closed session a moment after the client goes: wait for its lock."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND classid = %s AND objid = %s AND objsubid = 2",
                           [JOB_LOCK_CLASS, run_id])
            if not cursor.fetchone()[0]:
                return
            time.sleep(0.1)
    raise AssertionError("the lock was not released")


def _dsn() -> str:
    db = connection.settings_dict
    return (f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} "
            f"dbname={db['NAME']} user={db['USER']}"
            + (f" password={db['PASSWORD']}" if db["PASSWORD"] else ""))


@pytest.mark.django_db(transaction=True)
def test_a_run_another_worker_holds_is_busy_and_runs_once_it_is_released():
    # given a run whose lock another session holds (a worker at work)
    alliance_assets()
    sv_holders([1_000, 2_000])
    run = JobRun.objects.create(job="airdrop", period=DAY.isoformat())
    other = psycopg.connect(_dsn(), autocommit=True)
    other.execute("SELECT pg_advisory_lock(%s, %s)", [JOB_LOCK_CLASS, run.pk])
    try:
        # when a second worker starts the same date, it is told the run is busy
        with pytest.raises(JobBusy):
            airdrop_run_for_date(day=DAY)
        assert jobs_unfinished() == []  # the sweep leaves a held run alone
        assert sv_balances() and JobRun.objects.get(pk=run.pk).attempts == 0
    finally:
        other.close()  # the session ends, and with it the lock (as when a worker dies)
    _wait_until_free(run.pk)

    # then, once released, the run goes through
    assert airdrop_run_for_date(day=DAY).status == "done"
