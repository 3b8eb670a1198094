"""No string on the storefront's main path is left in English when the language is zh-hans:
every catalog entry used by those templates has a current (not fuzzy) translation, and the
rendered pages carry none of their English phrases."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from ledger import log_services, services
from ledger.models import Account
from tests.factories import DistrictFactory, MerchantFactory, StoreFactory, UserFactory
from tests.ledger import log_helpers

pytestmark = pytest.mark.django_db
log_key = log_helpers.log_key  # fixture

CATALOG = Path(__file__).resolve().parents[1] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MAIN_PATH = ("templates/storefront/home.html", "templates/storefront/wallet/",
             "templates/explorer/", "templates/base.html", "points/storefront_views.py",
             "alliance/explorer_views.py")


def _entries():
    """(msgid, msgstr, fuzzy, occurrences) of every singular entry of the catalog."""
    for block in CATALOG.read_text(encoding="utf-8").split("\n\n"):
        lines = block.split("\n")
        occurrences = " ".join(line[3:] for line in lines if line.startswith("#: "))
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        msgid = msgstr = ""
        current = None
        for line in lines:
            if line.startswith('msgid "'):
                current, msgid = "id", line[7:-1]
            elif line.startswith('msgstr "'):
                current, msgstr = "str", line[8:-1]
            elif line.startswith('msgstr[0] "'):
                current, msgstr = "str", line[11:-1]
            elif line.startswith("msgid_plural") or line.startswith("msgstr["):
                current = None
            elif line.startswith('"') and current == "id":
                msgid += line[1:-1]
            elif line.startswith('"') and current == "str":
                msgstr += line[1:-1]
        if msgid:
            yield msgid, msgstr, fuzzy, occurrences


def test_every_main_path_string_has_a_chinese_translation():
    missing = [msgid for msgid, msgstr, fuzzy, where in _entries()
               if any(path in where for path in MAIN_PATH) and (fuzzy or not msgstr)]
    assert missing == []


def _text(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


ENGLISH = ["My wallet", "Total value", "My points", "History", "Nearby offers",
           "Notifications", "Download receipt", "Expiring within 30 days", "Filter",
           "Point types", "Transactions", "Proof of reserve", "Circulating", "Holders"]


def test_the_storefront_and_explorer_pages_render_without_english(log_key):
    # given a shopper with points (some expiring soon), a shop nearby, an anchored log
    district = DistrictFactory()
    merchant = MerchantFactory(district=district)
    StoreFactory(merchant=merchant)
    asset = services.asset_create_brand(merchant=merchant, code="ZH", name_zh="中文积分",
                                        name_en="Chinese points", units_per_cny=10)
    shopper = UserFactory()
    wallet = services.account_get_or_create(asset=asset, kind=Account.Kind.WALLET,
                                            user=shopper)
    posted = services.transaction_post(
        kind="purchase", client="test", idempotency_key="zh-1",
        legs=[services.Leg(services.issuance_account(asset), -50),
              services.Leg(wallet, 50, expires_at=timezone.now() + timedelta(days=5))])
    log_services.log_anchor()
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(shopper)

    for url in ("/", "/history/", "/nearby/", "/notifications/", "/explorer/assets/",
                "/explorer/assets/ZH/", "/explorer/transactions/", "/explorer/reserves/",
                f"/explorer/transactions/{posted.transaction_id}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        text = _text(response.content.decode())
        left = [phrase for phrase in ENGLISH if phrase in text]
        assert left == [], (url, left)
