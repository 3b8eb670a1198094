"""Journeys in a real browser (Chromium through Playwright) against the live server: a
shopper signs up with phone and email, verifies both, checks in for the alliance's daily task,
is credited by a purchase over the API, sees the wallet, switches language, and verifies a
downloaded receipt on the explorer (the spending journeys are in test_spending_journeys).
Screenshots at phone and desktop sizes go to test-artifacts/screenshots/."""

import json
import re
import uuid
from pathlib import Path

import pytest
from django.core import mail
from rest_framework.test import APIClient

from alliance import sms
from ledger import log_services
from merchants import services as merchant_services
from points import tasks_services
from tests.ledger import log_helpers
from tests.points.conftest import frozen_clock, onboard
from tests.points.task_helpers import balance, make_task

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser"),
              pytest.mark.django_db(transaction=True)]
log_key = log_helpers.log_key  # fixture
frozen_clock = frozen_clock  # fixture: moves the tasks' server clock, the live server's too

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "a-long-pass-phrase-2026"
SIZES = {"phone": (390, 844), "desktop": (1280, 800)}


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)


def test_a_shopper_signs_up_is_credited_and_verifies_a_receipt(page, live_server, log_key,
                                                               frozen_clock):
    url = live_server.url
    merchant = onboard("brow")
    _key, raw = merchant_services.api_key_create(merchant=merchant, name="till",
                                                 scopes=["purchases"])

    # a visitor signs up with a phone number and an email address
    page.goto(f"{url}/accounts/signup/")
    page.fill("input[name=phone]", "13800138555")
    page.fill("input[name=email]", "shopper@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    shoot(page, "signup")
    page.locator("form:has(input[name=password1]) button[type=submit]").first.click()

    # types the SMS code
    page.wait_for_url(re.compile(r".*/accounts/phone/verify/.*"))
    code = re.search(r"[A-Z0-9]{3,}(?:-[A-Z0-9]{3,})?", sms.outbox[-1][1]).group(0)
    page.fill("input[name=code]", code)
    page.locator("form:has(input[name=code]) button[type=submit]").first.click()
    page.wait_for_url(lambda u: "/phone/verify/" not in u)

    # and follows the link in the confirmation mail
    links = [m for m in mail.outbox if "shopper@example.com" in m.to]
    assert links, "no confirmation mail"
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", links[-1].body).group(0)
    page.goto(url + link[link.index("/accounts/"):])
    page.locator("main form[method=post] button[type=submit]").first.click()
    page.wait_for_load_state()
    from alliance.models import User

    shopper = User.objects.get(email="shopper@example.com")

    # the shopper does the alliance's daily check-in on the tasks page, paid in SHARED
    tasks_services.task_budget_fund(amount=100_000, idempotency_key="browser-task-budget")
    task = make_task(None, name_zh="每日签到", name_en="Daily check-in", reward=500)
    page.goto(f"{url}/")
    page.locator("main a[href='/tasks/']").first.click()
    page.wait_for_url(re.compile(r".*/tasks/$"))
    card = page.locator(f"#task-{task.pk}")
    assert "Daily check-in" in card.inner_text() and "Alliance task" in card.inner_text()
    shoot(page, "tasks")
    card.locator("button[type=submit]", has_text="Check in").click()
    page.wait_for_selector(f"#task-{task.pk} .task-done")
    assert "Done for today" in page.locator(f"#task-{task.pk}").inner_text()
    assert balance("SHARED", user=shopper) == 500
    shoot(page, "task-done")

    # and the merchant's browse task, whose time is measured on the server, not the page
    browse = make_task(merchant, kind="browse", name_zh="逛逛新品", name_en="See what is new",
                       browse_seconds=20, reward=30)
    page.reload()
    card = page.locator(f"#task-{browse.pk}")
    card.locator("button[type=submit]", has_text="Start browsing").click()
    claim = page.locator(f"#task-{browse.pk} button[type=submit]", has_text="Claim reward")
    claim.click()
    page.wait_for_selector(f"#task-{browse.pk} .task-error")
    assert balance("BROW", user=shopper) == 0
    shoot(page, "task-browse-early")
    frozen_clock.advance(21)
    page.locator(f"#task-{browse.pk} button[type=submit]", has_text="Claim reward").click()
    page.wait_for_selector(f"#task-{browse.pk} .task-done")
    assert balance("BROW", user=shopper) == 30
    shoot(page, "task-browse-done")

    # when the till records a purchase over the API
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api.post("/api/v1/purchases", {"member": shopper.member_code, "amount": "88.00",
                                              "order_ref": "B-1"}, format="json",
                        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 201, response.content

    # then the wallet shows the points and their value
    page.goto(f"{url}/")
    assert page.locator("#wallet-total").inner_text().startswith("¥")
    assert page.locator("#wallet-total").inner_text() != "¥0.00"
    shoot(page, "wallet")

    # the language switch turns the page Chinese and back
    page.locator("#language-form button[value=zh-hans]").click()
    page.wait_for_function("document.documentElement.lang === 'zh-hans'")
    assert "我的钱包" in page.content()
    shoot(page, "wallet-zh")
    page.locator("#language-form button[value=en]").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert "My wallet" in page.content()

    # a receipt downloaded from the history verifies on the explorer once anchored
    log_services.log_anchor()
    page.goto(f"{url}/history/")
    shoot(page, "history")
    with page.expect_download() as info:
        page.locator("a.receipt-download").first.click()
    receipt = Path(info.value.path()).read_text()
    assert json.loads(receipt)["format"].startswith("alliance-receipt")
    page.goto(f"{url}/explorer/verify/")
    page.fill("textarea[name=receipt_text]", receipt)
    page.locator("form:has(textarea[name=receipt_text]) button[type=submit]").first.click()
    page.wait_for_load_state()
    assert "The receipt is valid." in page.content()
    shoot(page, "verified")

    # the explorer's point types show the merchant's asset, charted
    page.goto(f"{url}/explorer/assets/")
    page.locator("a[href='/explorer/assets/BROW/']").first.click()
    page.wait_for_selector("#flows-chart")
    shoot(page, "asset")
