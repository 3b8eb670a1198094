"""Delivery of webhooks, retried with exponential backoff."""

from celery import shared_task

from .webhook_models import WebhookDelivery
from .webhooks import WebhookFailed, webhook_attempt

MAX_RETRIES = 8


@shared_task(bind=True, autoretry_for=(WebhookFailed,), retry_backoff=True,
             retry_backoff_max=3600, retry_jitter=False, max_retries=MAX_RETRIES)
def webhook_deliver(self, delivery_id: int) -> None:
    delivery = (WebhookDelivery.objects.select_related("endpoint")
                .filter(pk=delivery_id).first())
    if delivery is None or delivery.status == WebhookDelivery.Status.DELIVERED:
        return
    webhook_attempt(delivery=delivery, backoff_seconds=min(3600, 2 ** self.request.retries))
