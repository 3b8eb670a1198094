"""Webhooks: register an endpoint, emit an event, deliver it signed, replay it.

The body is JSON; ``X-Alliance-Signature: t=<unix>,v1=<hex>`` where the hex is
HMAC-SHA256(secret, f"{t}.{body}"), so a receiver can check origin and freshness.
Deliveries are queued after the emitting transaction commits, never for a rolled-back one.
"""

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

import requests
from celery.exceptions import Retry
from django.db import transaction
from django.utils import timezone

from .webhook_models import WebhookDelivery, WebhookEndpoint

EVENTS = ("purchase.recorded", "voucher.redeemed", "points.expiring", "deposit.low")
SIGNATURE_HEADER = "X-Alliance-Signature"
TIMEOUT_SECONDS = 5


class WebhookFailed(Exception):
    """The endpoint did not answer 2xx; the task retries with backoff."""


def signature(*, secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_verify(*, secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """What a receiver does: recompute and compare in constant time, refuse stale stamps."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = signature(secret=secret, body=body, timestamp=timestamp)
    return hmac.compare_digest(expected, header)


def webhook_endpoint_create(
    *, merchant, url: str, events: list[str]
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret, which the caller shows once."""
    events = [e for e in events if e in EVENTS] or list(EVENTS)
    secret = "whsec_" + secrets.token_hex(24)
    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url=url, secret=secret,
                                              events=events)
    return endpoint, secret


def _queue(delivery_id: int) -> None:
    from .webhook_tasks import webhook_deliver

    def send() -> None:
        try:
            webhook_deliver.delay(delivery_id)
        except Retry:
            # Only with tasks run in-process (the embedded demo): there is no worker to
            # retry later, and the request that emitted the event must not fail for it. The
            # attempt is in the log, and the log replays.
            pass

    transaction.on_commit(send)


def webhook_emit(*, merchant, event: str, payload: dict) -> list[WebhookDelivery]:
    """Record one delivery per active endpoint of ``merchant`` subscribed to ``event`` and
    queue each after commit."""
    if event not in EVENTS:
        raise ValueError(event)
    deliveries = []
    for endpoint in WebhookEndpoint.objects.filter(merchant=merchant, active=True):
        if event not in endpoint.events:
            continue
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=event,
            payload={"event": event, "merchant": merchant.slug, "data": payload})
        deliveries.append(delivery)
        _queue(delivery.pk)
    return deliveries


def webhook_attempt(*, delivery: WebhookDelivery, backoff_seconds: int = 0) -> None:
    """POST the delivery once, signed; record the outcome. Raises ``WebhookFailed`` unless
    the endpoint answered 2xx."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "AlliancePoints-Webhooks/1",
               "X-Alliance-Event": delivery.event, "X-Alliance-Delivery": str(delivery.pk),
               SIGNATURE_HEADER: signature(secret=delivery.endpoint.secret, body=body,
                                           timestamp=int(time.time()))}
    delivery.attempts += 1
    try:
        response = requests.post(delivery.endpoint.url, data=body, headers=headers,
                                 timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        delivery.last_status_code, delivery.last_error = None, str(exc)[:300]
        ok = False
    else:
        delivery.last_status_code, delivery.last_error = response.status_code, ""
        ok = 200 <= response.status_code < 300
    if ok:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, timezone.now()
        delivery.next_attempt_at = None
    else:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds)
    delivery.save(update_fields=["attempts", "last_status_code", "last_error", "status",
                                 "delivered_at", "next_attempt_at"])
    if not ok:
        raise WebhookFailed(f"delivery {delivery.pk}: {delivery.last_status_code}")


def webhook_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (from the dashboard's log)."""
    delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, timezone.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    _queue(delivery.pk)
    return delivery


def webhook_purchase_recorded(*, purchase) -> list[WebhookDelivery]:
    """``purchase.recorded`` for the merchant's systems: what was recorded and earned."""
    return webhook_emit(merchant=purchase.merchant, event="purchase.recorded", payload={
        "purchase": purchase.pk, "order_ref": purchase.order_ref,
        "amount": str(purchase.amount), "points": purchase.points,
        "member": purchase.shopper.member_code, "transaction": purchase.transaction_id,
        "occurred_at": purchase.occurred_at.isoformat(),
    })


def webhook_voucher_redeemed(*, voucher) -> list[WebhookDelivery]:
    """``voucher.redeemed``: a voucher was accepted at the till (dashboard or API)."""
    store = voucher.used_store
    return webhook_emit(merchant=voucher.merchant, event="voucher.redeemed", payload={
        "voucher": voucher.pk, "code": voucher.display_code,
        "item": voucher.item_id, "item_name_zh": voucher.item.name_zh,
        "item_name_en": voucher.item.name_en,
        "store": store.pk if store else None, "store_name": store.name if store else None,
        "member": voucher.shopper.member_code, "via": voucher.used_via,
        "used_at": voucher.used_at.isoformat(),
    })


def webhook_points_expiring(*, merchant, last_day, assets: list[dict]) -> list[WebhookDelivery]:
    """``points.expiring``: the merchant's points that the expiry run after ``last_day`` will
    take, told once when the shoppers are reminded. Totals only: who holds them stays with the
    shoppers' own notices."""
    return webhook_emit(merchant=merchant, event="points.expiring", payload={
        "last_day": last_day.isoformat(), "assets": assets,
    })


def webhook_deposit_low(*, merchant, status) -> list[WebhookDelivery]:
    """``deposit.low``: the deposit fell below the warning level or the minimum (once per
    fall; a top-up above the level re-arms it). Amounts are SHARED in major units."""
    from ledger.services import alliance_asset

    shared = alliance_asset("SHARED")
    return webhook_emit(merchant=merchant, event="deposit.low", payload={
        "level": status.level, "balance": str(shared.to_major(status.balance)),
        "warning": str(shared.to_major(status.warning)),
        "minimum": str(shared.to_major(status.minimum)),
        "occurred_at": timezone.now().isoformat(),
    })
