"""The shells of the four sections, the error pages and the strict CSP they live under."""

import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import path
from django.utils import timezone

from alliance.models import WorkerHeartbeat
from alliance.permissions import Role
from alliance.views import error_500
from merchants.models import StaffMembership
from tests.factories import MerchantFactory, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
STYLE_ATTRIBUTE = re.compile(r"\sstyle=")
STYLE_ELEMENT = re.compile(r"<style[\s>]")


def _assert_csp_clean(response) -> None:
    page = response.content.decode()
    assert not INLINE_SCRIPT.search(page), INLINE_SCRIPT.search(page)
    assert not STYLE_ATTRIBUTE.search(page)
    assert not STYLE_ELEMENT.search(page)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy


@pytest.mark.parametrize(
    ("role", "url"),
    [
        (Role.ANONYMOUS, "/"),
        (Role.SHOPPER, "/"),
        (Role.OWNER, "/dashboard/"),
        (Role.ALLIANCE_STAFF, "/console/"),
        (Role.ANONYMOUS, "/explorer/"),
        (Role.ANONYMOUS, "/accounts/login/"),
        (Role.ANONYMOUS, "/accounts/signup/"),
        (Role.ANONYMOUS, "/accounts/login/code/"),
        (Role.ANONYMOUS, "/accounts/password/reset/"),
        (Role.ANONYMOUS, "/accounts/password/reset/done/"),
        (Role.ANONYMOUS, "/accounts/confirm-email/"),
        (Role.SHOPPER, "/accounts/email/"),
        (Role.SHOPPER, "/accounts/phone/change/"),
        (Role.SHOPPER, "/accounts/password/change/"),
        (Role.SHOPPER, "/accounts/2fa/"),
        (Role.SHOPPER, "/accounts/2fa/totp/activate/"),
        (Role.ANONYMOUS, "/no-such-page/"),
    ],
)
def test_pages_need_no_inline_script_or_style(client_as, role: Role, url: str):
    # given a user of the role that sees the page
    client = client_as(role)

    # when the page is rendered (TOTP set-up first asks for the password again)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en", follow=True)

    # then it renders, with every script and style from a file, under the strict policy
    assert response.status_code in (200, 404)
    _assert_csp_clean(response)


def test_the_api_docs_load_their_start_up_script_from_a_url(client: Client):
    # given the interactive API docs
    response = client.get("/api/docs/")

    # when their start-up script is fetched the way the page asks for it
    script_url = re.search(r'<script src="([^"]*script[^"]*)"', response.content.decode())
    script = client.get(script_url.group(1).replace("&amp;", "&"))

    # then the page has no inline code and the script is served as JavaScript
    _assert_csp_clean(response)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_the_dashboard_shows_the_merchant_the_role_and_the_roles_sections(client: Client):
    # given a cashier of a merchant
    merchant = MerchantFactory(name_en="Noodle Bar", name_zh="面馆")
    cashier = StaffMembershipFactory(merchant=merchant, role=StaffMembership.Role.CASHIER).user
    client.force_login(cashier, backend="django.contrib.auth.backends.ModelBackend")

    # when they open the dashboard in English
    page = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # then it names the merchant and the role, and offers only the cashier's sections
    assert "Noodle Bar" in page
    assert "Your role: Cashier" in page
    assert 'id="section-dashboard-purchases"' in page
    assert 'id="section-dashboard-vouchers"' in page
    assert 'id="section-dashboard-staff"' not in page
    assert 'id="section-dashboard-api_keys"' not in page


def test_the_dashboard_shows_the_merchants_chinese_name_in_chinese(client_as):
    # given the owner of a merchant
    client = client_as(Role.OWNER)
    merchant = StaffMembership.objects.get().merchant

    # when they open the dashboard in Chinese
    page = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    # then the merchant goes by its Chinese name
    assert merchant.name_zh in page
    assert merchant.name_en not in page


def test_staff_of_two_merchants_switch_between_them(client: Client):
    # given a user who owns one merchant and is cashier at another
    user = UserFactory()
    first = StaffMembershipFactory(user=user, role=StaffMembership.Role.OWNER).merchant
    second = StaffMembershipFactory(user=user, role=StaffMembership.Role.CASHIER).merchant
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    before = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert first.name_en in before and "Your role: Owner" in before

    # when they switch to the second merchant
    response = client.post("/dashboard/merchant/", {"merchant": second.pk}, follow=True,
                           HTTP_ACCEPT_LANGUAGE="en")

    # then the dashboard works for the second one, with the cashier's role and sections only
    page = response.content.decode()
    assert f"You are now working for {second.name_en}." in page
    assert "Your role: Cashier" in page
    assert 'id="section-dashboard-staff"' not in page


def test_switching_to_a_merchant_one_does_not_work_for_changes_nothing(client_as):
    # given an owner, and a merchant they have nothing to do with
    client = client_as(Role.OWNER)
    own = StaffMembership.objects.get().merchant
    other = MerchantFactory()

    # when they try to switch to the other merchant
    response = client.post("/dashboard/merchant/", {"merchant": other.pk}, follow=True,
                           HTTP_ACCEPT_LANGUAGE="en")

    # then they are told so and still work for their own
    page = response.content.decode()
    assert "You do not work for that merchant." in page
    assert own.name_en in page
    assert other.name_en not in page


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        (Role.ALLIANCE_STAFF, {"applications", "governance", "supervision", "jobs"}, set()),
        (Role.SUPERVISOR, {"supervision", "jobs"}, {"applications", "governance"}),
        (Role.COUNCIL, {"governance"}, {"applications", "supervision", "jobs"}),
    ],
)
def test_the_console_offers_each_role_its_cards(client_as, role, shown, hidden):
    # given a console user of one role
    client = client_as(role)

    # when they open the console
    page = client.get("/console/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # then exactly the sections of their role appear
    for name in shown:
        assert f'id="section-console-{name}"' in page
    for name in hidden:
        assert f'id="section-console-{name}"' not in page


def test_the_console_shows_the_workers_last_heartbeat(client_as):
    # given a worker that beat a minute ago and one silent for an hour
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker="celery@fresh", seen_at=now - timedelta(minutes=1))
    WorkerHeartbeat.objects.create(worker="celery@stale", seen_at=now - timedelta(hours=1))
    client = client_as(Role.SUPERVISOR)

    # when a supervisor opens the console
    page = client.get("/console/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # then both workers are listed, the silent one marked so
    fresh_row = page[page.index("celery@fresh"):]
    stale_row = page[page.index("celery@stale"):]
    assert "Alive" in fresh_row.split("</tr>")[0]
    assert "Silent" in stale_row.split("</tr>")[0]


def test_the_explorer_lists_members_without_personal_data(client: Client):
    # given a merchant with an owner whose email and phone are known
    membership = StaffMembershipFactory()

    # when anyone opens the explorer
    page = client.get("/explorer/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # then the merchant is listed and nothing of its owner is
    assert membership.merchant.name_en in page
    assert membership.user.email not in page
    assert membership.user.phone not in page


@pytest.mark.parametrize(("language", "text"), [("en", "Bad request"), ("zh-hans", "请求有误")])
def test_a_request_for_a_foreign_host_gets_the_400_page(client: Client, language: str, text: str):
    # given a request naming a host the portal does not serve
    # when it arrives
    response = client.get("/", HTTP_HOST="evil.example", HTTP_ACCEPT_LANGUAGE=language)

    # then the 400 page answers, in the visitor's language
    assert response.status_code == 400
    assert text in response.content.decode()


def test_a_signed_in_users_403_page_says_who_they_are(client_as):
    # given a shopper
    client = client_as(Role.SHOPPER)

    # when they open the console in Chinese
    response = client.get("/console/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    # then the Chinese 403 page tells them which account is signed in
    page = response.content.decode()
    assert response.status_code == 403
    assert "您无权访问此页面" in page
    assert str(response.wsgi_request.user) in page


def _broken_view(request):
    raise RuntimeError("boom")


urlpatterns = [path("boom/", _broken_view)]


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(
    ("language", "text"), [("en", "Something went wrong"), ("zh-hans", "出错了")]
)
def test_a_crash_shows_the_500_page_in_the_visitors_language(language: str, text: str):
    # given a view that crashes, and a client that does not re-raise it
    client = Client(raise_request_exception=False)

    # when a visitor hits it
    response = client.get("/boom/", HTTP_ACCEPT_LANGUAGE=language)

    # then they get the 500 page in their language
    assert response.status_code == 500
    assert text in response.content.decode()


def test_the_500_page_renders_without_touching_the_database(rf, django_assert_num_queries):
    # given a request whose context processors would query the database
    request = rf.get("/dashboard/")

    # when the 500 handler answers it
    with django_assert_num_queries(0):
        response = error_500(request)

    # then the page rendered from static parts alone
    assert response.status_code == 500
    assert b"500" in response.content


def test_an_api_crash_answers_json(rf):
    # given an API request that crashed
    request = rf.get("/api/v1/me")

    # when the 500 handler answers it
    response = error_500(request)

    # then it is the error shape, not an HTML page
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert b'"code": "server_error"' in response.content


def test_a_failed_csrf_check_shows_the_expired_form_page(client_as):
    # given a signed-in user whose form lost its CSRF token
    client = client_as(Role.SHOPPER)
    client.handler.enforce_csrf_checks = True

    # when they send it
    response = client.post("/dashboard/merchant/", {"merchant": "1"}, HTTP_ACCEPT_LANGUAGE="en")

    # then they see a page explaining what to do, not a bare error
    assert response.status_code == 403
    assert "The form has expired" in response.content.decode()
