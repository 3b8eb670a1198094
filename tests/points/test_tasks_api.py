"""The storefront's task API and the abuse defences on it: session auth with CSRF, velocity
limits (429 ``rate_limited``) with supervisor alerts, bad input answered 4xx with nothing
paid."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from alliance.models import Alert
from points.models import Task, TaskCompletion
from tests.factories import UserFactory
from tests.points.task_helpers import balance, make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    def sign_in(user, ip="198.51.100.7", **extra):
        client = APIClient(REMOTE_ADDR=ip, **extra)
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return sign_in


def post_complete(client, task, key="k-1", body=None, **headers):
    return client.post(f"/api/v1/tasks/{task.pk}/complete", body or {}, format="json",
                       HTTP_IDEMPOTENCY_KEY=key, **headers)


def test_list_and_complete_a_task(merchant, shopper, client_for):
    # given a check-in and a signed-in shopper
    task = make_task(merchant, reward=25)
    client = client_for(shopper)

    # when they list tasks, it is open
    listed = client.get("/api/v1/tasks", HTTP_ACCEPT_LANGUAGE="en").json()["results"]
    assert [(t["id"], t["status"], t["reward"]) for t in listed] == [
        (task.pk, "open", {"asset": "BURGER", "amount": "25"})]
    assert listed[0]["name"] == "Daily check-in"

    # when they complete it, they get 25 points and a receipt
    response = post_complete(client, task)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["reward"] == {"asset": "BURGER", "amount": "25"}
    assert body["receipt"].endswith(f"/api/v1/transactions/{body['transaction']}/receipt")
    assert balance("BURGER", user=shopper) == 25

    # a retry with the same key answers the same completion; another key is over the limit
    again = post_complete(client, task)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    refused = post_complete(client, task, key="k-2")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "task_limit_reached"
    assert client.get("/api/v1/tasks").json()["results"][0]["status"] == "done_today"


def test_chinese_names_in_chinese(merchant, shopper, client_for):
    make_task(merchant)
    listed = client_for(shopper).get("/api/v1/tasks", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert listed["results"][0]["name"] == "每日签到"


def test_browse_over_the_api(merchant, shopper, client_for, frozen_clock):
    task = make_task(merchant, kind=Task.Kind.BROWSE, browse_seconds=15)
    client = client_for(shopper)
    started = client.post(f"/api/v1/tasks/{task.pk}/browse-start")
    assert started.status_code == 200 and started.json()["seconds"] == 15
    token = started.json()["token"]

    early = post_complete(client, task, body={"token": token})
    assert early.status_code == 400
    assert early.json()["error"]["code"] == "browse_too_soon"
    assert early.json()["error"]["details"]["seconds_left"] >= 14

    frozen_clock.advance(15)
    assert post_complete(client, task, key="k-2", body={"token": token}).status_code == 201
    assert balance("BURGER", user=shopper) == 10


def test_anonymous_and_api_keys_are_refused(merchant, api):
    task = make_task(merchant)
    anonymous = APIClient()
    assert anonymous.get("/api/v1/tasks").status_code in (401, 403)
    assert post_complete(anonymous, task).status_code in (401, 403)
    # a merchant's API key is not a shopper
    assert api.get("/api/v1/tasks").status_code in (401, 403)
    assert post_complete(api, task).status_code in (401, 403)
    assert TaskCompletion.objects.count() == 0


def test_csrf_is_enforced_for_the_session(merchant, shopper):
    task = make_task(merchant)
    client = Client(enforce_csrf_checks=True)
    client.force_login(shopper, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(f"/api/v1/tasks/{task.pk}/complete", {}, content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 403
    assert TaskCompletion.objects.count() == 0


@pytest.mark.parametrize(("body", "key", "status", "code"), [
    ({}, None, 400, "idempotency_key_required"),
    ({}, "has space", 400, "idempotency_key_required"),
    ({"proof": "not a dict"}, "k", 400, "invalid"),
    ({"proof": {str(i): "x" for i in range(11)}}, "k", 400, "invalid"),
    ({"proof": {"url": "x" * 301}}, "k", 400, "invalid"),
    ({"token": "t" * 501}, "k", 400, "invalid"),
])
def test_bad_input_is_4xx_and_pays_nothing(merchant, shopper, client_for, body, key, status,
                                           code):
    task = make_task(merchant)
    client = client_for(shopper)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    response = client.post(f"/api/v1/tasks/{task.pk}/complete", body, format="json", **headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert TaskCompletion.objects.count() == 0


def test_unknown_paused_and_purchase_tasks(merchant, shopper, client_for):
    client = client_for(shopper)
    assert post_complete(client, Task(pk=999999)).status_code == 404
    paused = make_task(merchant, active=False)
    assert post_complete(client, paused).status_code == 404
    by_purchase = make_task(merchant, kind=Task.Kind.PURCHASE)
    response = post_complete(client, by_purchase)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "task_completed_by_purchase"
    browse = make_task(merchant, kind=Task.Kind.BROWSE, browse_seconds=5)
    response = post_complete(client, browse, body={"token": "forged"})
    assert response.json()["error"]["code"] == "browse_token_invalid"
    assert client.post(f"/api/v1/tasks/{paused.pk}/browse-start").status_code == 404
    assert TaskCompletion.objects.count() == 0


# --- abuse defences ---------------------------------------------------------------------------


def test_account_velocity_limit_answers_429_and_alerts(merchant, shopper, client_for, settings):
    # given at most 3 completions per account in 10 minutes
    settings.ABUSE_LIMITS = {"task_user": (3, 600)}
    task = make_task(merchant, daily_limit=None)
    client = client_for(shopper)

    # when the shopper completes the task 5 times in a row
    codes = [post_complete(client, task, key=f"v-{i}").status_code for i in range(5)]

    # then 3 are paid and the rest are refused as rate limited, with an alert for supervisors
    assert codes == [201, 201, 201, 429, 429]
    refused = post_complete(client, task, key="v-9").json()["error"]
    assert refused["code"] == "rate_limited"
    assert refused["details"]["limit"] == "user"
    assert 0 < refused["details"]["retry_after_seconds"] <= 600
    assert balance("BURGER", user=shopper) == 30
    alert = Alert.objects.get(kind=Alert.Kind.ABUSE)
    assert alert.details["pattern"] == "task_user"
    assert alert.details["user"] == shopper.pk
    assert alert.merchant == merchant


def test_ip_velocity_limit_covers_many_accounts(merchant, client_for, settings):
    # given at most 4 completions from one address in an hour
    settings.ABUSE_LIMITS = {"task_ip": (4, 3600)}
    task = make_task(merchant)
    shoppers = [UserFactory() for _ in range(6)]

    # when six accounts check in from the same address
    codes = [post_complete(client_for(s, ip="203.0.113.9"), task, key=f"ip-{i}").status_code
             for i, s in enumerate(shoppers)]

    # then the fifth and sixth are refused, and supervisors see it
    assert codes == [201] * 4 + [429] * 2
    patterns = set(Alert.objects.values_list("details__pattern", flat=True))
    assert "task_ip" in patterns
    # and another address is not affected
    assert post_complete(client_for(UserFactory(), ip="203.0.113.10"), task).status_code == 201


def test_many_accounts_from_one_address_are_flagged_without_refusal(merchant, client_for,
                                                                      settings):
    settings.ABUSE_LIMITS = {"task_ip_accounts": (2, 3600)}
    task = make_task(merchant)
    codes = [post_complete(client_for(UserFactory(), ip="192.0.2.44"), task,
                           key=f"f-{i}").status_code for i in range(4)]
    assert codes == [201] * 4
    alert = Alert.objects.get(kind=Alert.Kind.ABUSE)
    assert alert.details["pattern"] == "task_ip_accounts"
    assert alert.details["ip"] == "192.0.2.44"
    # one alert per address and hour, however many more accounts come
    post_complete(client_for(UserFactory(), ip="192.0.2.44"), task, key="f-9")
    assert Alert.objects.count() == 1


def test_device_velocity_limit(merchant, client_for, settings):
    settings.ABUSE_LIMITS = {"task_device": (2, 3600)}
    task = make_task(merchant)
    codes = [post_complete(client_for(UserFactory(), ip=f"10.9.0.{i}",
                                      HTTP_X_DEVICE_ID="phone-1"), task).status_code
             for i in range(3)]
    assert codes == [201, 201, 429]
