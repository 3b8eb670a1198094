"""Earning pages: the member QR and tiers in the storefront; the cashier's till, the earning
rule editor with its live preview and the tiers editor in the dashboard. The right roles get
in, both languages render, and bad input answers with a form error and changes nothing."""

import re
from decimal import Decimal

import pytest
import segno
from django.test import Client

from ledger.models import Transaction
from merchants.models import StaffMembership
from points.members import member_qr_token
from points.models import EarningRule, MemberTier, Purchase
from points.services import member_tier_set
from tests.factories import StaffMembershipFactory, UserFactory
from tests.points.conftest import onboard

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)


def signed_in(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def staff(merchant, role) -> Client:
    return signed_in(StaffMembershipFactory(merchant=merchant, role=role).user)


def assert_csp_clean(response) -> None:
    html = response.content.decode()
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert not INLINE_SCRIPT.search(html)
    assert " style=\"" not in html and " on" + "click=" not in html


# --- storefront -------------------------------------------------------------------------------


def test_member_qr_page_draws_the_signed_token_and_polls_for_a_new_one(shopper, monkeypatch):
    # given the token the page will encode
    monkeypatch.setattr("points.earning_views.member_qr_token", lambda user: "MQ1.fixed")
    client = signed_in(shopper)

    # when the shopper opens the page
    response = client.get("/member/qr/")

    # then it shows the QR of that token inline, and htmx asks for a new one every minute
    assert response.status_code == 200
    html = response.content.decode()
    expected = segno.make("MQ1.fixed", error="m").svg_inline(
        scale=5, border=2, dark="#000", light="#fff", svgclass="member-qr-svg",
        omitsize=True, title="Member QR code")
    assert expected.split("<path", 1)[1] in html
    assert 'hx-get="/member/qr/code/"' in html and 'hx-trigger="every 60s"' in html
    assert shopper.member_code in html
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert_csp_clean(response)

    # and the fragment the page polls is the QR alone
    fragment = client.get("/member/qr/code/")
    assert fragment.status_code == 200
    assert "<svg" in fragment.content.decode() and "<html" not in fragment.content.decode()


def test_the_real_qr_token_resolves_to_the_shopper(shopper):
    from points.members import member_resolve

    assert member_resolve(member_qr_token(shopper)) == shopper


def test_visitors_are_sent_to_sign_in():
    for path in ("/member/qr/", "/member/qr/code/", "/member/tiers/", "/tasks/"):
        response = Client().get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_member_tiers_page_shows_the_next_tier_gap(merchant, shopper, api):
    # given silver at CNY 500 and gold at CNY 2000, and CNY 800 spent
    member_tier_set(merchant=merchant, code="silver", name_zh="银卡", name_en="Silver",
                    threshold=Decimal("500"))
    member_tier_set(merchant=merchant, code="gold", name_zh="金卡", name_en="Gold",
                    threshold=Decimal("2000"))
    api.post("/api/v1/purchases", {"member": shopper.member_code, "amount": "800.00",
                                   "order_ref": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="t1")

    # then the English page says where they stand and what gold needs
    html = signed_in(shopper).get("/member/tiers/").content.decode()
    assert "Silver" in html
    assert "Spend CNY 1200.00 more to reach Gold." in html
    # and the Chinese one too
    html = signed_in(shopper, "zh-hans").get("/member/tiers/").content.decode()
    assert "银卡" in html and "1200.00" in html and "金卡" in html
    assert "Spend CNY" not in html


# --- dashboard: the till ----------------------------------------------------------------------


def purchase_form(member, amount="100.00", key="till-key-1", **extra):
    return {"member": member, "amount": amount, "order_ref": "R-1", "idempotency_key": key,
            **extra}


def test_cashier_records_a_purchase_once(merchant, shopper):
    # given a cashier of the merchant
    client = staff(merchant, StaffMembership.Role.CASHIER)
    assert client.get("/dashboard/earning/purchase/").status_code == 200

    # when they record a CNY 100 purchase with the member's QR token, twice (a double click)
    first = client.post("/dashboard/earning/purchase/",
                        purchase_form(member_qr_token(shopper)))
    second = client.post("/dashboard/earning/purchase/",
                         purchase_form(shopper.member_code.lower()))

    # then one purchase is recorded and the page says what the shopper earned
    assert first.status_code == 200
    assert "The shopper earned 100" in first.content.decode()
    assert second.status_code == 200
    assert "already recorded" in second.content.decode()
    purchase = Purchase.objects.get()
    assert (purchase.shopper, purchase.amount, purchase.points) == (shopper, Decimal("100"), 100)


@pytest.mark.parametrize(("member", "amount"), [
    ("valid", "-1"), ("valid", "0"), ("valid", "1.234"), ("valid", "abc"),
    ("valid", "1000000000.01"), ("ZZZZZZZZZZ", "10.00"), ("", "10.00"),
    ("MQ1.forged-token", "10.00"),
])
def test_bad_purchase_input_is_a_form_error(merchant, shopper, member, amount):
    client = staff(merchant, StaffMembership.Role.CASHIER)
    before = Transaction.objects.count()
    response = client.post("/dashboard/earning/purchase/", purchase_form(
        shopper.member_code if member == "valid" else member, amount))
    assert response.status_code in (400, 404)
    assert "invalid-feedback" in response.content.decode() or "alert" in \
        response.content.decode()
    assert Purchase.objects.count() == 0 and Transaction.objects.count() == before


def test_expired_qr_token_is_refused(merchant, shopper, monkeypatch):
    import time

    token = member_qr_token(shopper)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    response = staff(merchant, StaffMembership.Role.CASHIER).post(
        "/dashboard/earning/purchase/", purchase_form(token))
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert Purchase.objects.count() == 0


def test_a_merchant_without_a_deposit_gets_a_clear_error(shopper):
    poor = onboard("poor", shared=50_000, deposit=50_000)  # exactly the minimum
    response = staff(poor, StaffMembership.Role.CASHIER).post(
        "/dashboard/earning/purchase/", purchase_form(shopper.member_code, "1000.00"))
    assert response.status_code == 409
    assert "deposit" in response.content.decode()
    assert Purchase.objects.count() == 0


# --- roles ------------------------------------------------------------------------------------

CONFIGURE_PAGES = ["/dashboard/earning/", "/dashboard/earning/rule/",
                   "/dashboard/earning/tiers/", "/dashboard/earning/tasks/"]


@pytest.mark.parametrize("path", CONFIGURE_PAGES)
def test_cashiers_cannot_configure(merchant, path):
    client = staff(merchant, StaffMembership.Role.CASHIER)
    assert client.get(path).status_code == 403
    assert client.post(path, {"base_rate": "5", "code": "x", "name_zh": "x", "name_en": "x",
                              "threshold": "1", "kind": "check_in", "reward": "5",
                              "windows-TOTAL_FORMS": "0", "windows-INITIAL_FORMS": "0",
                              "categories-TOTAL_FORMS": "0",
                              "categories-INITIAL_FORMS": "0"}).status_code == 403
    assert EarningRule.objects.count() == 0 and MemberTier.objects.count() == 0


@pytest.mark.parametrize("path", [*CONFIGURE_PAGES, "/dashboard/earning/purchase/"])
def test_shoppers_get_403_and_managers_and_owners_get_in(merchant, shopper, path):
    assert signed_in(shopper).get(path).status_code == 403
    for role in (StaffMembership.Role.MANAGER, StaffMembership.Role.OWNER):
        response = staff(merchant, role).get(path)
        assert response.status_code == 200, (role, path)
        assert_csp_clean(response)


def test_dashboard_cards_link_to_the_earning_pages(merchant):
    html = staff(merchant, StaffMembership.Role.MANAGER).get("/dashboard/").content.decode()
    assert 'href="/dashboard/earning/purchase/"' in html
    assert 'href="/dashboard/earning/"' in html


# --- dashboard: the earning rule editor ---------------------------------------------------------


def rule_form(**values):
    data = {"base_rate": "1", "daily_cap": "", "budget": "", "preview_amount": "200",
            "windows-TOTAL_FORMS": "1", "windows-INITIAL_FORMS": "0",
            "windows-0-start": "", "windows-0-end": "", "windows-0-multiplier": "",
            "categories-TOTAL_FORMS": "1", "categories-INITIAL_FORMS": "0",
            "categories-0-category": "", "categories-0-multiplier": ""}
    data.update(values)
    return data


def test_manager_publishes_a_rule_version_with_multipliers(merchant):
    member_tier_set(merchant=merchant, code="gold", name_zh="金卡", name_en="Gold",
                    threshold=Decimal("1000"))
    client = staff(merchant, StaffMembership.Role.MANAGER)
    page = client.get("/dashboard/earning/rule/")
    assert "A CNY 200.00 purchase now earns 200 points." in page.content.decode()

    response = client.post("/dashboard/earning/rule/", rule_form(**{
        "base_rate": "2", "daily_cap": "5000", "budget": "100000",
        "windows-0-weekdays": ["5", "6"], "windows-0-start": "10:00",
        "windows-0-end": "12:00", "windows-0-multiplier": "1.5",
        "categories-0-category": "coffee", "categories-0-multiplier": "2",
        "tier_gold": "1.2", "publish": "1"}))
    assert response.status_code == 302
    rule = EarningRule.objects.get(active=True)
    assert (rule.version, rule.base_rate, rule.daily_cap, rule.budget) == (
        1, Decimal("2"), 5000, 100000)
    assert rule.multipliers == {
        "time_windows": [{"multiplier": "1.5", "weekdays": [5, 6], "start": "10:00",
                          "end": "12:00"}],
        "categories": {"coffee": "2"}, "tiers": {"gold": "1.2"}}
    # the editor shows the version in force and its history
    html = client.get("/dashboard/earning/rule/").content.decode()
    assert rule.content_hash[:10] in html
    assert 'value="coffee"' in html


def test_live_preview_of_the_draft(merchant):
    client = staff(merchant, StaffMembership.Role.OWNER)
    response = client.post("/dashboard/earning/rule/preview/", rule_form(
        base_rate="2.5", **{"categories-0-category": "tea", "categories-0-multiplier": "3"}),
        HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "A CNY 200.00 purchase now earns 500 points." in response.content.decode()
    assert "<html" not in response.content.decode()
    # nothing is saved by previewing
    assert EarningRule.objects.count() == 0
    # an invalid draft says so instead of a number
    response = client.post("/dashboard/earning/rule/preview/", rule_form(base_rate="-1"))
    assert "Enter valid values" in response.content.decode()
    # the no-JavaScript preview button renders the page with the number
    response = client.post("/dashboard/earning/rule/", rule_form(
        base_rate="3", preview_amount="10", preview="1"))
    assert response.status_code == 200
    assert "A CNY 10.00 purchase now earns 30 points." in response.content.decode()
    assert EarningRule.objects.count() == 0


@pytest.mark.parametrize("values", [
    {"base_rate": "-1"}, {"base_rate": "abc"}, {"base_rate": ""}, {"daily_cap": "0"},
    {"budget": "-5"}, {"windows-0-start": "10:00"},
    {"windows-0-start": "12:00", "windows-0-end": "10:00", "windows-0-multiplier": "2"},
    {"windows-0-multiplier": "-2"}, {"windows-0-multiplier": "1000"},
    {"windows-0-weekdays": ["9"], "windows-0-multiplier": "2"},
    {"categories-0-category": "coffee"}, {"categories-0-multiplier": "2"},
    {"windows-TOTAL_FORMS": "50"},
])
def test_bad_rule_input_is_a_form_error_and_publishes_nothing(merchant, values):
    client = staff(merchant, StaffMembership.Role.MANAGER)
    response = client.post("/dashboard/earning/rule/", rule_form(publish="1", **values))
    assert response.status_code == 400
    assert EarningRule.objects.count() == 0


# --- dashboard: tiers -------------------------------------------------------------------------


def test_tiers_editor(merchant):
    client = staff(merchant, StaffMembership.Role.OWNER)
    tier = {"code": "silver", "name_zh": "银卡", "name_en": "Silver", "threshold": "500"}
    assert client.post("/dashboard/earning/tiers/", tier).status_code == 302
    # the same code changes the tier
    client.post("/dashboard/earning/tiers/", {**tier, "threshold": "600"})
    assert MemberTier.objects.get().threshold == Decimal("600")
    # a second tier at the same spend is refused with a form error
    response = client.post("/dashboard/earning/tiers/",
                           {**tier, "code": "gold", "threshold": "600"})
    assert response.status_code == 400
    assert MemberTier.objects.count() == 1
    for bad in ({**tier, "code": "has space"}, {**tier, "threshold": "-1"},
                {**tier, "name_en": ""}, {}):
        assert client.post("/dashboard/earning/tiers/", bad).status_code == 400
    assert MemberTier.objects.count() == 1
    # removal; another merchant's tier is not found
    other = member_tier_set(merchant=onboard("coffee"), code="x", name_zh="x", name_en="x",
                            threshold=Decimal("1"))
    assert client.post(f"/dashboard/earning/tiers/{other.pk}/delete/").status_code == 404
    mine = MemberTier.objects.get(merchant=merchant)
    assert client.post(f"/dashboard/earning/tiers/{mine.pk}/delete/").status_code == 302
    assert list(MemberTier.objects.all()) == [other]


# --- both languages ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "english", "chinese"), [
    ("/dashboard/earning/purchase/", "Record a purchase", "记录消费"),
    ("/dashboard/earning/rule/", "Publish a new version", "发布新版本"),
    ("/dashboard/earning/tiers/", "Add or change a tier", "添加或修改等级"),
    ("/dashboard/earning/tasks/", "New task", "新建任务"),
    ("/dashboard/earning/", "Earning rule", "积分规则"),
])
def test_dashboard_pages_in_both_languages(merchant, path, english, chinese):
    user = StaffMembershipFactory(merchant=merchant, role=StaffMembership.Role.OWNER).user
    assert english in signed_in(user, "en").get(path).content.decode()
    html = signed_in(user, "zh-hans").get(path).content.decode()
    assert chinese in html and english not in html


@pytest.mark.parametrize(("path", "english", "chinese"), [
    ("/member/qr/", "Show this code at the till", "在收银台出示此码"),
    ("/member/tiers/", "Member tiers", "会员等级"),
    ("/tasks/", "Tasks", "任务"),
])
def test_storefront_pages_in_both_languages(path, english, chinese):
    user = UserFactory()
    assert english in signed_in(user, "en").get(path).content.decode()
    assert chinese in signed_in(user, "zh-hans").get(path).content.decode()
