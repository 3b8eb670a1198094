"""The one Celery task a purchase queues: its follow-ups, on a worker, after it committed.

Not retried and acknowledged on receipt: ``purchase.recorded`` must not be announced twice,
and the tasks it pays are idempotent per purchase anyway. (Before, the same work ran in the
till's request after commit, where a crash lost it the same way.)
"""

from celery import shared_task

from .services import purchase_followups


@shared_task(ignore_result=True)
def purchase_followups_task(purchase_id: int) -> None:
    purchase_followups(purchase_id=purchase_id)
