"""``/console/jobs/``: the scheduled jobs for alliance staff and supervisors. Running jobs
with their progress (the section reloads itself through htmx, no inline script), the
history of runs with their counts, and the beat schedule operators change in the admin."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django_celery_beat.models import PeriodicTask

from points.jobs import jobrun_list_history, jobrun_list_running

from .permissions import access_required, can_access

# Seconds between two reloads of the running jobs' section.
POLL_SECONDS = 3


def _counts(run) -> list[tuple[str, object]]:
    return sorted((str(name), value) for name, value in (run.counts or {}).items()
                  if name != "snapshot_sha256")


def _running_context() -> dict:
    runs = jobrun_list_running()
    for run in runs:
        run.count_items = _counts(run)
    return {"running": runs, "poll_seconds": POLL_SECONDS}


@access_required("console.jobs")
def jobs_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(jobrun_list_history(), 30).get_page(request.GET.get("page"))
    for run in page:
        run.count_items = _counts(run)
        run.duration = (run.finished_at - run.started_at
                        if run.finished_at and run.started_at else None)
    schedule = PeriodicTask.objects.select_related("crontab", "interval").order_by("name")
    return render(request, "console/jobs/list.html", {
        **_running_context(), "page": page, "schedule": schedule,
        "can_edit_schedule": can_access(request, "admin"),
    })


@access_required("console.jobs")
def jobs_running(request: HttpRequest) -> HttpResponse:
    """The running jobs' section alone, for htmx to swap in every few seconds."""
    return render(request, "console/jobs/_running.html", _running_context())


jobs_patterns = ([
    path("", jobs_page, name="list"),
    path("running/", jobs_running, name="running"),
], "console_jobs")
