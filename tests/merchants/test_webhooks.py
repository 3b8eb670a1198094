"""Webhooks: a delivery reaches a real HTTP server with a signature the receiver can check;
a failing endpoint is retried with backoff and every attempt is logged; the log replays."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from celery.exceptions import Retry
from django.test import Client

from merchants import webhooks
from merchants.models import StaffMembership
from merchants.webhook_models import WebhookDelivery
from merchants.webhook_tasks import MAX_RETRIES, webhook_deliver
from tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db


class Receiver:
    """An HTTP server on 127.0.0.1 that records requests and answers ``status``."""

    def __init__(self, status=200):
        self.status, self.requests = status, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def owner():
    return StaffMembershipFactory(role=StaffMembership.Role.OWNER)


def test_a_delivery_is_signed_and_the_receiver_can_verify_it(owner, receiver,
                                                             django_capture_on_commit_callbacks):
    endpoint, secret = webhooks.webhook_endpoint_create(
        merchant=owner.merchant, url=receiver.url, events=["purchase.recorded"])

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.webhook_emit(merchant=owner.merchant, event="purchase.recorded",
                              payload={"purchase": 7, "points": 88})
        # an event the endpoint did not subscribe to is not sent
        webhooks.webhook_emit(merchant=owner.merchant, event="deposit.low", payload={})

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert webhooks.signature_verify(secret=secret, body=body,
                                     header=headers["X-Alliance-Signature"])
    assert not webhooks.signature_verify(secret="whsec_wrong", body=body,
                                         header=headers["X-Alliance-Signature"])
    assert not webhooks.signature_verify(secret=secret, body=body + b" ",
                                         header=headers["X-Alliance-Signature"])
    assert b'"points":88' in body
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert delivery.attempts == 1 and delivery.last_status_code == 200


def test_a_failing_endpoint_is_retried_and_each_attempt_logged(owner,
                                                               django_capture_on_commit_callbacks):
    failing = Receiver(status=500)
    try:
        webhooks.webhook_endpoint_create(merchant=owner.merchant, url=failing.url, events=[])
        # the first attempt, queued after commit
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.webhook_emit(merchant=owner.merchant, event="voucher.redeemed",
                                  payload={"voucher": "V-1"})
        pk = WebhookDelivery.objects.get().pk
        # then the worker's retries, each after a longer wait, until it gives up
        waits, gave_up = [], False
        for n in range(1, MAX_RETRIES + 1):
            try:
                result = webhook_deliver.apply(args=[pk], retries=n)
            except Retry as retry:
                waits.append(retry.when)
            except webhooks.WebhookFailed:
                gave_up = True
            else:
                gave_up = result.state == "FAILURE"
        assert gave_up
        assert len(waits) == MAX_RETRIES - 1
        assert waits == sorted(waits) and waits[0] < waits[-1]
    finally:
        failing.close()

    delivery = WebhookDelivery.objects.get()
    assert len(failing.requests) == MAX_RETRIES + 1
    assert delivery.attempts == MAX_RETRIES + 1
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.last_status_code == 500
    assert delivery.next_attempt_at is not None

    # the dashboard's log shows it and replays it once the endpoint works
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(owner.user)
    page = client.get(f"/dashboard/webhooks/{delivery.endpoint_id}/").content.decode()
    assert "voucher.redeemed" in page and "500" in page
    working = Receiver()
    try:
        delivery.endpoint.url = working.url
        delivery.endpoint.save()
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/dashboard/webhooks/{delivery.endpoint_id}/deliveries/"
                        f"{delivery.pk}/replay")
    finally:
        working.close()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert len(working.requests) == 1


def test_the_secret_is_shown_once_and_other_merchants_see_nothing(owner):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(owner.user)
    page = client.post("/dashboard/webhooks/", {"url": "https://pos.example/hook",
                                                "events": ["purchase.recorded"]})
    assert 'id="webhook-secret">whsec_' in page.content.decode()
    assert "whsec_" not in client.get("/dashboard/webhooks/").content.decode()
    endpoint_id = owner.merchant.webhook_endpoints.get().pk

    stranger = Client()
    stranger.force_login(StaffMembershipFactory(role=StaffMembership.Role.OWNER).user)
    assert stranger.get(f"/dashboard/webhooks/{endpoint_id}/").status_code == 404


def test_a_purchase_over_the_api_is_announced(receiver, django_capture_on_commit_callbacks):
    import uuid

    from rest_framework.test import APIClient

    from merchants import services as merchant_services
    from tests.factories import UserFactory
    from tests.points.conftest import onboard

    merchant = onboard("hooked")
    _endpoint, secret = webhooks.webhook_endpoint_create(
        merchant=merchant, url=receiver.url, events=["purchase.recorded"])
    _key, raw = merchant_services.api_key_create(merchant=merchant, name="till",
                                                 scopes=["purchases"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    shopper = UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/purchases", {"member": shopper.member_code,
                                                  "amount": "50.00", "order_ref": "W-1"},
                            format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))

    assert response.status_code == 201
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert headers["X-Alliance-Event"] == "purchase.recorded"
    assert webhooks.signature_verify(secret=secret, body=body,
                                     header=headers["X-Alliance-Signature"])
    assert b'"order_ref":"W-1"' in body


def test_the_dashboard_links_owners_to_webhooks(owner):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(owner.user)
    page = client.get("/dashboard/").content.decode()
    assert 'href="/dashboard/webhooks/"' in page
    assert "向您的系统发送签名的事件通知" in page
