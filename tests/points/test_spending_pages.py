"""Spending pages: who reaches each one (generated from ACCESS), and what shoppers, store
staff and supervisors do on them, in both languages and under the strict CSP."""

import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from alliance.permissions import ACCESS, Role
from merchants.models import StaffMembership
from points import catalog, exchange, lottery
from points.models import CatalogItem, Exchange, LotteryCampaign, LotteryDraw, Voucher
from tests.factories import StoreFactory, UserFactory

from .conftest import onboard
from .spending_helpers import (
    alliance_assets_restore,
    balance,
    brand,
    catalog_item,
    fund,
    opt_in,
)

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    alliance_assets_restore()
    settings.MEDIA_ROOT = str(tmp_path)


def signed_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def staff(merchant, role: str):
    user = UserFactory()
    StaffMembership.objects.create(merchant=merchant, user=user, role=role)
    return user


def assert_csp_clean(html: str) -> None:
    """Nothing inline that the CSP (script-src/style-src 'self') would block."""
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert " style=" not in html and "<style" not in html, "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


# --- who reaches which page (generated from the table) ----------------------------------------


@pytest.fixture
def world(merchant):
    """A merchant with an item, a voucher of its shopper, an open lottery."""
    item = catalog_item(merchant, price=100, stock=5)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 1000)
    voucher = catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key="w")
    campaign = lottery.campaign_create(merchant=merchant, name_zh="抽", name_en="Draw",
                                       entry_cost=10)
    lottery.tier_add(campaign=campaign, label="Nothing", kind="nothing", weight=1)
    lottery.campaign_open(campaign=campaign)
    return {"merchant": merchant, "item": item, "shopper": shopper, "voucher": voucher,
            "campaign": campaign}


def _user_for(role: Role, merchant):
    if role == Role.ANONYMOUS:
        return None
    if role in (Role.CASHIER, Role.MANAGER, Role.OWNER):
        return staff(merchant, role.value)
    flags = {Role.ALLIANCE_STAFF: {"is_alliance_staff": True},
             Role.SUPERVISOR: {"is_supervisor": True},
             Role.COUNCIL: {"is_council_member": True},
             Role.SUPERUSER: {"is_superuser": True, "is_staff": True}}.get(role, {})
    return UserFactory(**flags)


PAGES = [
    ("spending:catalog", {}), ("spending:catalog-detail", {"item_id": "item"}),
    ("spending:vouchers", {}), ("spending:exchange", {}), ("spending:exchange-quote", {}),
    ("spending:lotteries", {}), ("spending:lottery-detail", {"campaign_id": "campaign"}),
    ("spending:lottery-fairness", {"campaign_id": "campaign"}),
    ("dashboard_spending:catalog", {}), ("dashboard_spending:catalog-new", {}),
    ("dashboard_spending:catalog-edit", {"item_id": "item"}),
    ("dashboard_spending:vouchers", {}), ("dashboard_spending:exchange", {}),
    ("dashboard_spending:lotteries", {}),
    ("dashboard_spending:lottery", {"campaign_id": "campaign"}),
    ("console_spending:exchange-matrix", {}),
]


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_each_role_reaches_exactly_the_spending_pages_its_areas_allow(world, role):
    # given a user holding only this role (merchant roles at the world's merchant)
    user = _user_for(role, world["merchant"])
    client = signed_in(user) if user else Client(HTTP_ACCEPT_LANGUAGE="en")
    for name, kwargs in PAGES:
        url = reverse(name, kwargs={k: world[v].pk for k, v in kwargs.items()})
        view = _view_of(url)
        allowed = role in ACCESS[view.access_area]

        # when they open the page
        response = client.get(url)

        # then the table decides: the page, the sign-in page, or 403
        if allowed:
            assert response.status_code == 200, (name, role)
        elif role == Role.ANONYMOUS:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        else:
            assert response.status_code == 403, (name, role)


def _view_of(url: str):
    from django.urls import resolve

    return resolve(url).func


def test_the_new_areas_are_in_the_table():
    for area in ("storefront.catalog", "storefront.vouchers", "storefront.exchange",
                 "storefront.lotteries", "dashboard.catalog", "dashboard.lotteries",
                 "dashboard.exchange"):
        assert area in ACCESS
    assert Role.CASHIER in ACCESS["dashboard.vouchers"]
    assert Role.CASHIER not in ACCESS["dashboard.catalog"]


# --- the storefront ----------------------------------------------------------------------------


def test_a_shopper_redeems_from_the_catalog_and_sees_the_voucher_qr(merchant):
    item = catalog_item(merchant, price=300, stock=2, name_en="Flat white")
    shopper = UserFactory()
    fund(brand(merchant), shopper, 1000)
    client = signed_in(shopper)

    listing = client.get(reverse("spending:catalog"), {"q": "flat", "affordable": "1"})
    assert "Flat white" in listing.content.decode()
    assert_csp_clean(listing.content.decode())
    detail = client.get(reverse("spending:catalog-detail", args=[item.pk]))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', detail.content.decode())[1]

    # when they redeem, and the form is sent twice (a double tap)
    url = reverse("spending:catalog-detail", args=[item.pk])
    first = client.post(url, {"idempotency_key": key})
    client.post(url, {"idempotency_key": key})

    # then one voucher, its QR on the voucher page
    voucher = Voucher.objects.get()
    assert first.status_code == 302
    assert first["Location"] == reverse("spending:voucher-detail", args=[voucher.code])
    page = client.get(first["Location"]).content.decode()
    assert "<svg" in page and voucher.display_code in page
    assert_csp_clean(page)
    assert balance(brand(merchant), user=shopper) == 700
    assert CatalogItem.objects.get(pk=item.pk).stock == 1


def test_cancelling_from_the_voucher_page_refunds(merchant):
    item = catalog_item(merchant, price=300)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 300)
    voucher = catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key="c")
    client = signed_in(shopper)
    response = client.post(reverse("spending:voucher-cancel", args=[voucher.code]))
    assert response.status_code == 302
    assert balance(brand(merchant), user=shopper) == 300
    # someone else's voucher: 404, untouched
    other = catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key="d")
    stranger = signed_in(UserFactory())
    assert stranger.post(reverse("spending:voucher-cancel", args=[other.code])).status_code == 404
    assert stranger.get(reverse("spending:voucher-detail", args=[other.code])).status_code == 404
    assert Voucher.objects.get(pk=other.pk).state == Voucher.State.ISSUED


def test_the_exchange_page_quotes_live_and_confirms_what_was_quoted(merchant):
    # given two opted-in merchants and one that is not
    opt_in(merchant)
    tea = onboard("tea", units_per_cny=Decimal("7"))
    opt_in(tea)
    closed = onboard("closed")
    shopper = UserFactory()
    fund(brand(merchant), shopper, 5000)
    fund(brand(closed), shopper, 5000)
    client = signed_in(shopper)

    # the form offers only opted-in merchants
    page = client.get(reverse("spending:exchange")).content.decode()
    assert 'value="TEA"' in page and 'value="CLOSED"' not in page
    assert 'hx-get="/exchange/quote/"' in page
    assert_csp_clean(page)

    # when they type an amount, htmx asks for the quote fragment
    params = {"source": "BURGER", "target": "TEA", "amount": "999"}
    fragment = client.get(reverse("spending:exchange-quote"), params,
                          HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment
    assert 'id="quote-out">69 TEA' in fragment and "0.132857" in fragment
    key = re.search(r'name="idempotency_key" value="([^"]+)"', fragment)[1]
    expected = re.search(r'name="expected_amount_out" value="([^"]+)"', fragment)[1]
    assert expected == "69"

    # then confirming posts exactly the quote
    response = client.post(reverse("spending:exchange"),
                           {**params, "idempotency_key": key, "expected_amount_out": expected})
    assert response.status_code == 302
    assert Exchange.objects.get().amount_out == 69
    assert balance(brand(tea), user=shopper) == 69
    # and an amount worth less than one point is explained, not quoted
    tiny = client.get(reverse("spending:exchange-quote"),
                      {"source": "BURGER", "target": "TEA", "amount": "1"}).content.decode()
    assert 'id="quote-error"' in tiny and "Confirm" not in tiny


def test_a_shopper_draws_and_anyone_can_check_the_draws(merchant):
    campaign = lottery.campaign_create(merchant=merchant, name_zh="抽奖", name_en="Spin",
                                       entry_cost=10)
    lottery.tier_add(campaign=campaign, label="Ten", kind="points", weight=1, stock=100,
                     points=10)
    lottery.tier_add(campaign=campaign, label="Nothing", kind="nothing", weight=1)
    lottery.campaign_open(campaign=campaign)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 100)
    client = signed_in(shopper)
    url = reverse("spending:lottery-detail", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert campaign.commitment in page
    assert_csp_clean(page)
    for _ in range(3):
        key = re.search(r'name="idempotency_key" value="([^"]+)"',
                        client.get(url).content.decode())[1]
        assert client.post(url, {"idempotency_key": key}).status_code == 302
    assert LotteryDraw.objects.filter(shopper=shopper).count() == 3

    # while open, the public page shows the commitment but no seed
    visitor = Client(HTTP_ACCEPT_LANGUAGE="en")
    fair = visitor.get(reverse("spending:lottery-fairness", args=[campaign.pk]))
    assert fair.status_code == 200
    assert campaign.commitment in fair.content.decode()
    assert LotteryCampaign.objects.get(pk=campaign.pk).server_seed not in fair.content.decode()

    # after the close it shows the seed and every draw recomputed
    lottery.campaign_close(campaign=campaign)
    fair = visitor.get(reverse("spending:lottery-fairness", args=[campaign.pk])).content.decode()
    assert LotteryCampaign.objects.get(pk=campaign.pk).server_seed in fair
    assert 'id="fair-verdict"' in fair and "all 3 draws recompute" in fair
    assert fair.count("✓") == 3
    assert_csp_clean(fair)
    # a closed campaign refuses draws from the page too
    key = re.search(r'name="idempotency_key" value="([^"]+)"',
                    client.get(url).content.decode() + 'name="idempotency_key" value="k"')[1]
    client.post(url, {"idempotency_key": key})
    assert LotteryDraw.objects.filter(shopper=shopper).count() == 3


def test_the_pages_speak_chinese_too(merchant):
    shopper = UserFactory()
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(shopper, backend="django.contrib.auth.backends.ModelBackend")
    for name, text in (("spending:catalog", "用积分兑换商品"), ("spending:vouchers", "我的兑换券"),
                       ("spending:exchange", "商家之间的积分互通"), ("spending:lotteries", "抽奖")):
        response = client.get(reverse(name))
        assert response.status_code == 200
        assert response["Content-Language"] == "zh-hans"
        assert text in response.content.decode()


# --- the dashboard -----------------------------------------------------------------------------


def test_a_manager_lists_an_item_with_a_picture_checked_by_content(merchant):
    client = signed_in(staff(merchant, "manager"))
    fields = {"name_zh": "拿铁", "name_en": "Latte", "description": "", "price_asset":
              brand(merchant).pk, "price": "250", "stock": "10", "per_shopper_limit": "",
              "available_from": "", "available_until": "", "voucher_valid_days": "30",
              "refundable": "on", "active": "on"}

    # a page renamed .png is refused, nothing saved
    fake = SimpleUploadedFile("latte.png", b"<html><script>x</script></html>")
    refused = client.post(reverse("dashboard_spending:catalog-new"), {**fields, "image": fake})
    assert refused.status_code == 200 and not CatalogItem.objects.exists()
    assert "not a PNG, JPEG, GIF or WebP" in refused.content.decode()

    # too many decimals for whole points is refused
    decimals = client.post(reverse("dashboard_spending:catalog-new"), {**fields, "price": "2.5"})
    assert decimals.status_code == 200 and not CatalogItem.objects.exists()

    # a real PNG is saved and served with its type
    png = SimpleUploadedFile("latte.png", PNG)
    saved = client.post(reverse("dashboard_spending:catalog-new"), {**fields, "image": png})
    assert saved.status_code == 302
    item = CatalogItem.objects.get()
    assert (item.price, item.merchant_id, item.image_type) == (250, merchant.pk, "image/png")
    image = Client().get(reverse("spending:catalog-image", args=[item.pk]))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert b"".join(image.streaming_content) == PNG

    # another merchant's manager cannot open it
    other = signed_in(staff(onboard("tea"), "manager"))
    assert other.get(reverse("dashboard_spending:catalog-edit", args=[item.pk])).status_code == 404


def test_a_cashier_validates_a_voucher_once_by_its_code(merchant):
    item = catalog_item(merchant, price=100)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 100)
    voucher = catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key="v")
    client = signed_in(staff(merchant, "cashier"))
    url = reverse("dashboard_spending:vouchers")

    found = client.get(url, {"code": voucher.display_code.lower()}).content.decode()
    assert "Accept this voucher" in found
    first = client.post(url, {"code": voucher.code}, follow=True).content.decode()
    assert "accepted" in first
    second = client.post(url, {"code": voucher.code}, follow=True).content.decode()
    assert "already used" in second
    voucher.refresh_from_db()
    assert voucher.state == Voucher.State.USED and voucher.used_via == "dashboard"

    # another merchant's cashier finds nothing
    other = signed_in(staff(onboard("tea"), "cashier"))
    assert "No voucher of yours" in other.get(url, {"code": voucher.code}).content.decode()
    assert "There is no such voucher" in other.post(
        url, {"code": voucher.code}, follow=True).content.decode()


def test_the_cashier_names_the_store_and_the_picker_remembers_it(merchant):
    # given a merchant with two stores and two issued vouchers
    first_store, second_store = StoreFactory(merchant=merchant), StoreFactory(merchant=merchant)
    foreign_store = StoreFactory(merchant=onboard("tea"))
    item = catalog_item(merchant, price=100)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 300)
    vouchers = [catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key=f"s{i}")
                for i in range(3)]
    client = signed_in(staff(merchant, "cashier"))
    url = reverse("dashboard_spending:vouchers")

    # the accept form offers the merchant's stores, and no other merchant's
    found = client.get(url, {"code": vouchers[0].code}).content.decode()
    assert first_store.name in found and second_store.name in found
    assert foreign_store.name not in found

    # when the cashier accepts at the second store
    client.post(url, {"code": vouchers[0].code, "store": second_store.pk})

    # then the voucher records it, the list shows it and the picker starts there next time
    vouchers[0].refresh_from_db()
    assert vouchers[0].used_store == second_store
    page = client.get(url, {"code": vouchers[1].code}).content.decode()
    assert f'<option value="{second_store.pk}" selected>' in page
    assert f"· {second_store.name} ·" in page

    # a store of another merchant, or nonsense, records no store and is not remembered
    client.post(url, {"code": vouchers[1].code, "store": foreign_store.pk})
    client.post(url, {"code": vouchers[2].code, "store": "x"})
    for voucher in vouchers[1:]:
        voucher.refresh_from_db()
        assert voucher.state == Voucher.State.USED and voucher.used_store is None
    assert client.session["voucher_store"] == second_store.pk


def test_a_manager_runs_a_lottery_from_draft_to_reveal(merchant):
    client = signed_in(staff(merchant, "manager"))
    created = client.post(reverse("dashboard_spending:lotteries"),
                          {"name_zh": "周年", "name_en": "Anniversary", "entry_cost": "50"})
    campaign = LotteryCampaign.objects.get()
    assert created["Location"] == reverse("dashboard_spending:lottery", args=[campaign.pk])
    detail = reverse("dashboard_spending:lottery", args=[campaign.pk])
    bad = client.post(detail, {"label": "Jackpot", "kind": "points", "weight": "1",
                               "stock": "2"})
    assert bad.status_code == 200 and not campaign.tiers.exists()
    client.post(detail, {"label": "Jackpot", "kind": "points", "weight": "1", "stock": "2",
                         "points": "500"})
    client.post(detail, {"label": "Thanks", "kind": "nothing", "weight": "9"})
    assert campaign.tiers.count() == 2

    client.post(reverse("dashboard_spending:lottery-action", args=[campaign.pk, "open"]))
    campaign.refresh_from_db()
    assert campaign.state == "open" and len(campaign.commitment) == 64
    # frozen: a tier added now is refused
    client.post(detail, {"label": "Late", "kind": "nothing", "weight": "1"})
    assert campaign.tiers.count() == 2
    client.post(reverse("dashboard_spending:lottery-action", args=[campaign.pk, "close"]))
    campaign.refresh_from_db()
    assert campaign.state == "closed"
    assert client.post(reverse("dashboard_spending:lottery-action",
                               args=[campaign.pk, "explode"])).status_code == 404


def test_the_owner_opts_in_and_sets_the_cap_and_ratio(merchant):
    client = signed_in(staff(merchant, "owner"))
    response = client.post(reverse("dashboard_spending:exchange"), {
        "exchange_opted_in": "on", "exchange_daily_cap": "123.45", "deduction_percent": "20"})
    assert response.status_code == 302
    settings = exchange.exchange_settings(merchant)
    assert settings.exchange_opted_in and settings.exchange_daily_cap == Decimal("123.45")
    assert settings.max_deduction_ratio == Decimal("0.2000")
    refused = client.post(reverse("dashboard_spending:exchange"), {
        "exchange_daily_cap": "-1", "deduction_percent": "120"})
    assert refused.status_code == 200
    assert exchange.exchange_settings(merchant).exchange_daily_cap == Decimal("123.45")


# --- the console -------------------------------------------------------------------------------


def test_supervisors_see_who_owes_whom(merchant):
    opt_in(merchant)
    tea = onboard("tea", units_per_cny=Decimal("10"))
    opt_in(tea)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 5000)
    exchange.exchange_execute(shopper=shopper, source_asset=brand(merchant),
                              target_asset=brand(tea), amount=2500, idempotency_key="m")
    page = signed_in(UserFactory(is_supervisor=True)).get(
        reverse("console_spending:exchange-matrix")).content.decode()
    assert 'id="exchange-matrix"' in page and "25.00" in page
    assert "burger paid tea 25.00 SHARED" in page
    assert_csp_clean(page)
    assert signed_in(UserFactory()).get(
        reverse("console_spending:exchange-matrix")).status_code == 403


# --- getting there: links and what the quote says ----------------------------------------------


def test_a_cashier_reaches_voucher_validation_from_the_dashboard(merchant):
    # the dashboard's Vouchers card leads to the page (it said "coming soon")
    page = signed_in(staff(merchant, "cashier")).get("/dashboard/").content.decode()
    card = re.search(r'id="section-dashboard-vouchers".*?</section>', page, re.S)[0]
    assert f'href="{reverse("dashboard_spending:vouchers")}"' in card
    assert "Coming soon" not in card


@pytest.mark.parametrize(("role", "tabs"), [
    ("cashier", {"vouchers"}),
    ("manager", {"vouchers", "catalog", "lotteries"}),
    ("owner", {"vouchers", "catalog", "lotteries", "exchange"}),
])
def test_the_dashboards_spending_tabs_are_the_ones_the_role_may_open(merchant, role, tabs):
    client = signed_in(staff(merchant, role))
    page = client.get(reverse("dashboard_spending:vouchers")).content.decode()
    nav = re.search(r'<nav[^>]*aria-label="Spending".*?</nav>', page, re.S)[0]
    shown = {name for name in ("vouchers", "catalog", "lotteries", "exchange")
             if f'href="{reverse(f"dashboard_spending:{name}")}"' in nav}
    assert shown == tabs
    for name in shown:
        assert client.get(reverse(f"dashboard_spending:{name}")).status_code == 200


def test_managers_reach_the_catalog_and_lotteries_from_the_earning_pages(merchant):
    page = signed_in(staff(merchant, "manager")).get(reverse("earning:home")).content.decode()
    assert f'href="{reverse("dashboard_spending:catalog")}"' in page
    assert f'href="{reverse("dashboard_spending:lotteries")}"' in page


def test_the_wallet_leads_to_the_catalog_vouchers_exchange_and_lotteries():
    page = signed_in(UserFactory()).get(reverse("wallet:home")).content.decode()
    for name in ("catalog", "vouchers", "exchange", "lotteries"):
        assert f'href="{reverse(f"spending:{name}")}"' in page, name


def test_the_quote_shows_yuan_with_cents_and_exact_fractions_only_where_they_are(merchant):
    opt_in(merchant)
    cake = onboard("cake", units_per_cny=Decimal("10"))
    opt_in(cake)
    shopper = UserFactory()
    fund(brand(merchant), shopper, 1000)
    fragment = signed_in(shopper).get(reverse("spending:exchange-quote"), {
        "source": "BURGER", "target": "CAKE", "amount": "333"}).content.decode()
    assert 'id="quote-value">¥3.33<' in fragment and "3.330000" not in fragment
    assert "¥3.30<" in fragment and 'id="quote-rounding">¥0.03 ' in fragment
    assert 'class="form-select"' in signed_in(shopper).get(
        reverse("spending:exchange")).content.decode()
