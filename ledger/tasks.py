"""Celery tasks of the ledger: anchoring the transparency log and expiring holds, each on the
beat schedule every minute (``CELERY_BEAT_SCHEDULE``). Thin: each calls one service, and each
is idempotent, so a redelivered or overlapping run changes nothing twice."""

from celery import shared_task

from . import log_services, services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def anchor_ledger() -> int:
    """Log every committed transaction not yet logged and sign checkpoints; returns how many.
    Two runs at once queue on the anchoring lock, and the second finds nothing to do."""
    return log_services.log_anchor().leaves


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3)
def expire_holds() -> int:
    """Void the pending holds past their expiry; returns how many."""
    return services.holds_expire()
