"""Spending journeys in a real browser (Chromium through Playwright) against the live server:
a shopper redeems a catalog item for a voucher that a cashier, in a browser of their own,
validates by its code; a shopper exchanges one merchant's points for another's at the live
quote; a shopper enters a lottery that its merchant then closes, and checks the draw on the
public fairness page. Merchants, rules, items and lotteries are set up through the services;
the shopper's points come from purchases. Screenshots at phone and desktop sizes go to
test-artifacts/screenshots/."""

import re
import uuid
from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from merchants import services as merchant_services
from points import exchange, lottery
from points.models import LotteryDraw, Voucher
from points.services import earning_rule_publish, purchase_record
from tests.factories import UserFactory
from tests.points.conftest import onboard
from tests.points.spending_helpers import balance, brand, catalog_item, deposit

from .test_journeys import shoot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"),
              pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-word-123"  # tests.factories.UserFactory's


def merchant_with_points(slug: str, *, base_rate: str = "10", **kwargs):
    """An onboarded merchant whose earning rule gives ``base_rate`` points per CNY."""
    merchant = onboard(slug, **kwargs)
    earning_rule_publish(merchant=merchant, base_rate=Decimal(base_rate))
    return merchant


def buy(merchant, shopper, amount: str) -> None:
    """A purchase at the merchant's till: the shopper earns its points."""
    purchase_record(merchant=merchant, shopper=shopper, amount=Decimal(amount),
                    order_ref=f"o-{uuid.uuid4().hex[:8]}", idempotency_key=uuid.uuid4().hex,
                    fingerprint=uuid.uuid4().hex)


def verified_user(**fields):
    user = UserFactory(**fields)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def sign_in(page, url: str, user) -> None:
    """Through the sign-in form, with the email address and the password."""
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form:has(input[name=password]) button[type=submit]").first.click()
    page.wait_for_url(lambda u: "/accounts/login/" not in u)


def accept_dialogs(page) -> None:
    """``<form data-confirm>`` asks with window.confirm; a person would say yes."""
    page.on("dialog", lambda dialog: dialog.accept())


def new_page(browser):
    """A browser context of its own (its own cookies): another person at another device."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    accept_dialogs(page)
    return context, page


def staff_member(merchant, role: str, page, url: str):
    """Invited by the owner (the mail's link), signs in and accepts in the browser."""
    user = verified_user()
    owner = merchant.staff.get(role="owner").user
    merchant_services.staff_invite(merchant=merchant, email=user.email, role=role,
                                   invited_by=owner, site_url=url)
    sent = [m for m in mail.outbox if user.email in m.to]
    assert sent, "no invitation mail"
    link = re.search(r"https?://\S+/dashboard/invitations/\S+/", sent[-1].body).group(0)
    sign_in(page, url, user)
    page.goto(link)
    page.locator("main form[method=post] button[type=submit]").first.click()
    page.wait_for_url(re.compile(r".*/dashboard/$"))
    return user


def test_a_shopper_redeems_a_voucher_that_a_cashier_validates(page, browser, live_server):
    url = live_server.url
    accept_dialogs(page)
    cafe = merchant_with_points("cafe")
    item = catalog_item(cafe, price=500, stock=3, name_en="Flat white", name_zh="白咖啡")
    shopper = verified_user()
    buy(cafe, shopper, "100.00")  # 1,000 CAFE points
    assert balance(brand(cafe), user=shopper) == 1000

    # the shopper finds the item in the catalog and redeems it
    sign_in(page, url, shopper)
    page.goto(f"{url}/")
    page.locator("main nav a", has_text="Catalog").first.click()
    page.wait_for_url(re.compile(r".*/catalog/$"))
    page.wait_for_selector("#catalog-items .catalog-item")
    shoot(page, "catalog")
    page.locator("#catalog-items a", has_text="Flat white").click()
    page.wait_for_url(re.compile(rf".*/catalog/{item.pk}/$"))
    assert page.locator("#item-balance").inner_text() == "1000 CAFE"
    shoot(page, "catalog-item")
    page.locator("main form[method=post] button[type=submit]", has_text="Redeem").click()

    # and lands on the voucher: its QR and its code
    page.wait_for_url(re.compile(r".*/vouchers/[^/]+/$"))
    voucher = Voucher.objects.get(shopper=shopper)
    assert page.locator(".voucher-qr svg").count() == 1
    assert page.locator("#voucher-code").inner_text() == voucher.display_code
    assert "Ready to use" in page.locator("#voucher-state").inner_text()
    assert balance(brand(cafe), user=shopper) == 500
    shoot(page, "voucher")

    # "my vouchers" lists it, ready to use
    page.goto(f"{url}/vouchers/")
    row = page.locator("#voucher-list a", has_text=voucher.display_code)
    assert "Ready to use" in row.inner_text()
    shoot(page, "vouchers")

    # a cashier of the merchant, at the till's own browser, validates it by its code
    context, till = new_page(browser)
    try:
        staff_member(cafe, "cashier", till, url)
        till.goto(f"{url}/dashboard/")
        shoot(till, "till-dashboard")
        till.locator("#section-dashboard-vouchers a").click()
        till.wait_for_url(re.compile(r".*/dashboard/vouchers/$"))
        till.fill("#voucher-lookup input[name=code]", voucher.display_code)
        till.locator("#voucher-lookup button[type=submit]").click()
        till.wait_for_selector("#voucher-found")
        assert "Ready to use" in till.locator("#voucher-found").inner_text()
        shoot(till, "till-voucher-found")
        till.locator("#voucher-found button[type=submit]").click()
        till.wait_for_selector(".alert-success")
        assert f"Voucher {voucher.display_code} accepted" in till.content()
        assert voucher.display_code in till.locator("#recent-validations").inner_text()
        shoot(till, "till-voucher-accepted")

        # a second look-up of the same code says it is used
        till.fill("#voucher-lookup input[name=code]", voucher.display_code)
        till.locator("#voucher-lookup button[type=submit]").click()
        till.wait_for_selector("#voucher-found")
        assert "Already used" in till.locator("#voucher-found").inner_text()
        assert till.locator("#voucher-found button[type=submit]").count() == 0
    finally:
        context.close()

    # the shopper sees the voucher used, and its QR is gone
    voucher.refresh_from_db()
    assert voucher.state == Voucher.State.USED
    page.goto(f"{url}/vouchers/")
    assert "Used" in page.locator("#voucher-list a", has_text=voucher.display_code).inner_text()
    shoot(page, "vouchers-used")
    page.locator("#voucher-list a", has_text=voucher.display_code).click()
    page.wait_for_url(re.compile(r".*/vouchers/[^/]+/$"))
    assert "Used" in page.locator("#voucher-state").inner_text()
    assert page.locator(".voucher-qr").count() == 0
    shoot(page, "voucher-used")

    # in Chinese too
    page.goto(f"{url}/vouchers/")
    page.locator("#language-form button[value=zh-hans]").click()
    page.wait_for_function("document.documentElement.lang === 'zh-hans'")
    assert "我的兑换券" in page.content()
    assert "已使用" in page.locator("#voucher-list a", has_text=voucher.display_code).inner_text()
    shoot(page, "vouchers-used-zh")
    page.locator("#language-form button[value=en]").click()
    page.wait_for_function("document.documentElement.lang === 'en'")


def test_a_shopper_exchanges_points_at_the_live_quote(page, live_server):
    url = live_server.url
    accept_dialogs(page)
    tea = merchant_with_points("tea")  # 100 TEA = CNY 1
    cake = merchant_with_points("cake", units_per_cny=Decimal("10"))  # 10 CAKE = CNY 1
    for merchant in (tea, cake):
        exchange.exchange_settings_save(merchant=merchant, opted_in=True,
                                        daily_cap=Decimal("1000.00"), max_deduction_ratio=None)
    shopper = verified_user()
    buy(tea, shopper, "100.00")  # 1,000 TEA points
    tea_points, cake_points = brand(tea), brand(cake)
    assert balance(tea_points, user=shopper) == 1000
    deposits = deposit(tea), deposit(cake)

    sign_in(page, url, shopper)
    page.goto(f"{url}/exchange/")
    page.select_option("#exchange-form select[name=source]", value="TEA")
    page.select_option("#exchange-form select[name=target]", value="CAKE")
    page.fill("#exchange-form input[name=amount]", "333")

    # the quote comes while the shopper types (htmx), before any button is pressed
    page.wait_for_selector("#quote-card")
    assert page.locator("#quote-in").inner_text() == "333 TEA"
    assert page.locator("#quote-value").inner_text() == "¥3.33"
    assert page.locator("#quote-out").inner_text() == "33 CAKE"  # 33.3, rounded down
    assert page.locator("#quote-rounding").inner_text().startswith("¥0.03")
    shoot(page, "exchange-quote")

    page.locator("#exchange-confirm button[type=submit]").click()
    page.wait_for_selector(".alert-success")
    assert "Exchanged 333 TEA for 33 CAKE" in page.content()
    assert page.locator("#exchange-history tbody tr").count() == 1
    shoot(page, "exchange-done")

    # the balances moved exactly as quoted; TEA paid CAKE the value of the 33 CAKE it issued,
    # ¥3.30, in SHARED (price 1.00) from deposit to deposit
    assert balance(tea_points, user=shopper) == 1000 - 333
    assert balance(cake_points, user=shopper) == 33
    assert deposit(tea) == deposits[0] - 330
    assert deposit(cake) == deposits[1] + 330

    # and the wallet shows both point types
    page.goto(f"{url}/")
    wallet = page.locator("main").inner_text()
    assert "667" in wallet and "33" in wallet


def test_a_shopper_enters_a_lottery_and_checks_the_draw(page, browser, live_server):
    url = live_server.url
    accept_dialogs(page)
    fair = merchant_with_points("fair")
    campaign = lottery.campaign_create(merchant=fair, name_zh="周末抽奖",
                                       name_en="Weekend draw", entry_cost=50)
    lottery.tier_add(campaign=campaign, label="Jackpot", kind="points", weight=1, stock=5,
                     points=200)
    lottery.tier_add(campaign=campaign, label="Try again", kind="nothing", weight=1)
    lottery.campaign_open(campaign=campaign)
    campaign.refresh_from_db()
    shopper = verified_user()
    buy(fair, shopper, "20.00")  # 200 FAIR points: four draws

    # the shopper finds the lottery, sees its commitment, and draws
    sign_in(page, url, shopper)
    page.goto(f"{url}/lotteries/")
    page.locator("main a", has_text="Weekend draw").first.click()
    page.wait_for_url(re.compile(rf".*/lotteries/{campaign.pk}/$"))
    assert page.locator("#lottery-commitment").inner_text() == campaign.commitment
    shoot(page, "lottery")
    page.locator("main form[method=post] button[type=submit]", has_text="Draw for").click()
    page.wait_for_selector("#my-draws li")

    # the result shows on the page, as the service recorded it
    draw = LotteryDraw.objects.get(shopper=shopper)
    result = page.locator("#my-draws li").first.inner_text()
    assert draw.drawn_tier.label in result
    if draw.outcome == LotteryDraw.Outcome.WON:
        assert "You won: Jackpot!" in page.content() and "Won" in result
        assert balance(brand(fair), user=shopper) == 200 - 50 + 200
    else:
        assert draw.outcome == LotteryDraw.Outcome.NO_PRIZE
        assert "No prize this time" in page.content() and "No prize" in result
        assert balance(brand(fair), user=shopper) == 200 - 50
    shoot(page, "lottery-drawn")

    # the merchant's manager closes the lottery from the dashboard, revealing the seed
    context, office = new_page(browser)
    try:
        staff_member(fair, "manager", office, url)
        office.goto(f"{url}/dashboard/")
        office.locator("#section-dashboard-configure a").click()
        office.locator("main nav a", has_text="Lotteries").click()
        office.wait_for_url(re.compile(r".*/dashboard/lotteries/$"))
        office.locator("main a", has_text="Weekend draw").first.click()
        office.wait_for_url(re.compile(rf".*/dashboard/lotteries/{campaign.pk}/$"))
        shoot(office, "lottery-dashboard")
        office.locator("main form button[type=submit]", has_text="Close and reveal").click()
        office.wait_for_selector(".alert-success")
        assert "seed revealed" in office.content()
        shoot(office, "lottery-dashboard-closed")
    finally:
        context.close()

    # the shopper sees it closed, and checks every draw on the public fairness page
    page.goto(f"{url}/lotteries/{campaign.pk}/")
    assert "This lottery is closed." in page.content()
    assert draw.drawn_tier.label in page.locator("#my-draws li").first.inner_text()
    page.locator("main a", has_text="How to check").click()
    page.wait_for_url(re.compile(rf".*/lotteries/{campaign.pk}/fairness/$"))
    campaign.refresh_from_db()
    assert page.locator("#fair-commitment").inner_text() == campaign.commitment
    assert page.locator("#fair-seed").inner_text() == campaign.revealed_seed
    assert "recomputes to its recorded outcome" in page.locator("#fair-verdict").inner_text()
    row = page.locator("#fair-draws tbody tr").first.inner_text()
    assert draw.shopper_ref in row and "✓" in row
    shoot(page, "lottery-fairness")
