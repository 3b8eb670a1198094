"""Reads of the alliance app for pages and endpoints."""

from django.db.models import QuerySet

from .models import WorkerHeartbeat

# A worker beats every minute (CELERY_BEAT_SCHEDULE); a few missed beats is when to worry.
HEARTBEAT_STALE_AFTER_SECONDS = 5 * 60


def worker_heartbeat_list() -> QuerySet[WorkerHeartbeat]:
    """Every worker that has ever beaten, the most recently seen first."""
    return WorkerHeartbeat.objects.order_by("-seen_at", "worker")
