"""Celery tasks of the alliance app."""

import socket

from celery import shared_task
from django.utils import timezone

from .models import WorkerHeartbeat


@shared_task(ignore_result=True)
def worker_heartbeat(worker: str | None = None) -> None:
    """Record that a worker is consuming the queue; ``/healthz`` and the console show it."""
    WorkerHeartbeat.objects.update_or_create(
        worker=worker or socket.gethostname(), defaults={"seen_at": timezone.now()}
    )


@shared_task(ignore_result=True)
def issuance_spike_check() -> None:
    """Hourly: alert supervisors about brands issuing far above their trailing average."""
    from .services import issuance_spike_check as check

    check()
