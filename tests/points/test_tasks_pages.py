"""Task pages: the storefront's task board with its htmx buttons (and their no-JavaScript
fallback), and the merchant's task management in the dashboard."""

import pytest
from django.test import Client

from merchants.models import StaffMembership
from points.models import Task, TaskCompletion
from tests.factories import StaffMembershipFactory
from tests.points.conftest import onboard
from tests.points.task_helpers import balance, make_task

pytestmark = pytest.mark.django_db


def signed_in(user, language="en", **extra) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language, **extra)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def key_on(html: str) -> str:
    marker = 'name="idempotency_key" value="'
    return html.split(marker, 1)[1].split('"', 1)[0]


# --- storefront -------------------------------------------------------------------------------


def test_task_board_and_htmx_check_in(merchant, shopper):
    # given a check-in worth 10 points
    task = make_task(merchant, reward=10, name_en="Say hello")
    client = signed_in(shopper)

    # when the shopper opens the board
    page = client.get("/tasks/")
    html = page.content.decode()
    assert "Say hello" in html and "+10" in html and "Check in" in html
    assert f'hx-post="/tasks/{task.pk}/complete/"' in html
    assert page.cookies["device_id"].value  # a device id of its own

    # and checks in with htmx
    response = client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": key_on(html)},
                           HTTP_HX_REQUEST="true")

    # then the card comes back saying so, and the points are in the wallet
    assert response.status_code == 200
    card = response.content.decode()
    assert "Reward received." in card and "<html" not in card
    assert "Done for today." in card
    assert balance("BURGER", user=shopper) == 10

    # a second check-in (another page load, so another key) is refused inside the card
    response = client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": "other-key"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "You have already completed this task" in response.content.decode()
    assert "data-swap-errors" in response.content.decode()
    assert balance("BURGER", user=shopper) == 10


def test_without_javascript_the_form_posts_and_redirects(merchant, shopper):
    task = make_task(merchant)
    client = signed_in(shopper)
    key = key_on(client.get("/tasks/").content.decode())
    response = client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": key},
                           follow=True)
    assert response.redirect_chain == [("/tasks/", 302)]
    assert "Reward received: Daily check-in." in response.content.decode()
    # a double submission of the same form pays once
    client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": key})
    assert TaskCompletion.objects.count() == 1


def test_browse_from_the_storefront_waits_for_the_server_clock(merchant, shopper, frozen_clock):
    task = make_task(merchant, kind=Task.Kind.BROWSE, browse_seconds=20,
                     target="https://example.com/menu", name_en="Read the menu")
    client = signed_in(shopper)
    assert "Start browsing" in client.get("/tasks/").content.decode()

    started = client.post(f"/tasks/{task.pk}/browse/", HTTP_HX_REQUEST="true")
    card = started.content.decode()
    assert "Browsing started." in card and 'href="https://example.com/menu"' in card
    key = key_on(card)

    early = client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": key},
                        HTTP_HX_REQUEST="true")
    assert early.status_code == 400
    assert "Keep browsing a little longer" in early.content.decode()

    frozen_clock.advance(20)
    done = client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": key},
                       HTTP_HX_REQUEST="true")
    assert done.status_code == 200 and "Reward received." in done.content.decode()
    assert balance("BURGER", user=shopper) == 10


def test_a_target_that_is_not_a_web_address_is_not_a_link(merchant, shopper):
    make_task(merchant, kind=Task.Kind.SHARE, target="javascript:alert(1)")
    html = signed_in(shopper).get("/tasks/").content.decode()
    assert 'href="javascript:' not in html


def test_rate_limited_on_the_page_too(merchant, shopper, settings):
    settings.ABUSE_LIMITS = {"task_user": (1, 600)}
    task = make_task(merchant, daily_limit=None)
    client = signed_in(shopper)
    client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": "a"}, HTTP_HX_REQUEST="true")
    response = client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": "b"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()


def test_bad_page_input(merchant, shopper):
    task = make_task(merchant)
    client = signed_in(shopper)
    assert client.post(f"/tasks/{task.pk}/complete/", {}, HTTP_HX_REQUEST="true"
                       ).status_code == 400
    assert client.post(f"/tasks/{task.pk}/complete/", {"idempotency_key": "x" * 200},
                       HTTP_HX_REQUEST="true").status_code == 400
    assert client.get(f"/tasks/{task.pk}/complete/").status_code == 405
    assert client.post("/tasks/999999/complete/", {"idempotency_key": "k"}).status_code == 404
    assert client.post(f"/tasks/{task.pk}/browse/").status_code == 404  # not a browse task
    assert TaskCompletion.objects.count() == 0


def test_alliance_tasks_show_with_their_shared_reward(shopper):
    from points import tasks_services

    make_task(None, reward=150, name_en="Alliance welcome")
    tasks_services.task_budget_fund(amount=10_000, idempotency_key="f")
    html = signed_in(shopper).get("/tasks/").content.decode()
    assert "Alliance welcome" in html and "+1.50" in html and "Alliance task" in html


# --- dashboard --------------------------------------------------------------------------------


def task_form(**values):
    data = {"kind": "check_in", "name_zh": "签到", "name_en": "Check in", "target": "",
            "browse_seconds": "0", "min_amount": "", "reward": "5", "daily_limit": "1",
            "lifetime_limit": "", "budget": "100", "starts_at": "", "ends_at": "",
            "audience": "all", "audience_days": "30", "active": "on"}
    data.update(values)
    return data


def test_manager_creates_edits_and_pauses_a_task(merchant):
    client = signed_in(StaffMembershipFactory(merchant=merchant,
                                              role=StaffMembership.Role.MANAGER).user)
    assert client.post("/dashboard/earning/tasks/", task_form()).status_code == 302
    task = Task.objects.get()
    assert (task.merchant, task.reward, task.budget, task.daily_limit) == (merchant, 5, 100, 1)
    assert "Check in" in client.get("/dashboard/earning/tasks/").content.decode()

    response = client.post(f"/dashboard/earning/tasks/{task.pk}/",
                           task_form(reward="8", starts_at="2030-01-01T09:00"))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.reward == 8 and task.starts_at.year == 2030

    client.post(f"/dashboard/earning/tasks/{task.pk}/toggle/")
    task.refresh_from_db()
    assert task.active is False


@pytest.mark.parametrize("values", [
    {"reward": "0"}, {"reward": "-1"}, {"reward": "x"}, {"kind": "dance"},
    {"kind": "browse", "browse_seconds": "0"}, {"daily_limit": "0"},
    {"starts_at": "2030-01-02T00:00", "ends_at": "2030-01-01T00:00"},
    {"starts_at": "not a date"}, {"name_zh": "", "name_en": ""}, {"audience": "robots"},
    {"min_amount": "-1"}, {"budget": "0"},
])
def test_bad_task_input_is_a_form_error(merchant, values):
    client = signed_in(StaffMembershipFactory(merchant=merchant,
                                              role=StaffMembership.Role.OWNER).user)
    response = client.post("/dashboard/earning/tasks/", task_form(**values))
    assert response.status_code == 400
    assert Task.objects.count() == 0


def test_another_merchants_task_is_not_found_and_cashiers_are_refused(merchant):
    other = make_task(onboard("coffee"))
    owner = signed_in(StaffMembershipFactory(merchant=merchant,
                                             role=StaffMembership.Role.OWNER).user)
    assert owner.get(f"/dashboard/earning/tasks/{other.pk}/").status_code == 404
    assert owner.post(f"/dashboard/earning/tasks/{other.pk}/toggle/").status_code == 404
    cashier = signed_in(StaffMembershipFactory(merchant=merchant,
                                               role=StaffMembership.Role.CASHIER).user)
    assert cashier.post("/dashboard/earning/tasks/", task_form()).status_code == 403
    assert cashier.post(f"/dashboard/earning/tasks/{other.pk}/toggle/").status_code == 403
    other.refresh_from_db()
    assert other.active and Task.objects.count() == 1
