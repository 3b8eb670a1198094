"""The shopper's storefront: the wallet's CNY value, expiring points, history with filters
and receipt files, notifications, nearby offers; bounded queries whatever the history."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from ledger import log_services, services
from ledger.models import Account
from tests.factories import DistrictFactory, MerchantFactory, StoreFactory, UserFactory

from ..ledger import log_helpers

pytestmark = pytest.mark.django_db
log_key = log_helpers.log_key  # fixture


class Shop:
    def __init__(self, district, code, units_per_cny, lat="31.230000", lng="121.470000"):
        self.merchant = MerchantFactory(district=district)
        self.store = StoreFactory(merchant=self.merchant, latitude=Decimal(lat),
                                  longitude=Decimal(lng), name=f"Store {code}")
        self.asset = services.asset_create_brand(
            merchant=self.merchant, code=code, name_zh=f"{code}积分", name_en=f"{code} points",
            units_per_cny=units_per_cny, expiry_months=12)
        self.issuance = services.issuance_account(self.asset)
        self.n = 0

    def credit(self, user, amount, *, kind="purchase", **leg):
        self.n += 1
        wallet = services.account_get_or_create(asset=self.asset, kind=Account.Kind.WALLET,
                                                user=user)
        return services.transaction_post(
            kind=kind, client="test", idempotency_key=f"{self.asset.code}-{self.n}",
            legs=[services.Leg(self.issuance, -amount), services.Leg(wallet, amount, **leg)],
        ).transaction_id


def _alliance_credit(user, code, amount):
    asset = services.alliance_asset(code)
    wallet = services.account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=user)
    services.transaction_post(
        kind="airdrop", client="test", idempotency_key=f"{code}-{user.pk}-{amount}",
        legs=[services.Leg(services.issuance_account(asset), -amount),
              services.Leg(wallet, amount)])


@pytest.fixture
def district():
    return DistrictFactory()


@pytest.fixture
def shopper():
    return UserFactory()


@pytest.fixture
def signed_in(shopper):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(shopper)
    return client


def test_the_wallet_totals_cny_and_shows_share_value_apart(district, shopper, signed_in):
    # given 500 brand points at 10 per CNY (CNY 50), 12.34 SHARED and 3.00 SV
    shop = Shop(district, "BURGER", 10)
    shop.credit(shopper, 500)
    _alliance_credit(shopper, "SHARED", 1234)
    _alliance_credit(shopper, "SV", 300)

    html = signed_in.get("/").content.decode()

    # then the total is CNY 62.34 (reference price 1.00), SV is shown apart
    assert "¥62.34" in html
    assert "Share value: 3" in html
    assert "BURGER points" in html and "≈ ¥50.00" in html


def test_points_expiring_within_30_days_are_announced(district, shopper, signed_in):
    shop = Shop(district, "TEA", 1)
    soon = timezone.now() + timedelta(days=10)
    shop.credit(shopper, 70, expires_at=soon)
    shop.credit(shopper, 5)  # the asset's own expiry, a year away

    html = signed_in.get("/").content.decode()

    assert "Expiring within 30 days" in html
    section = html[html.index("Expiring within 30 days"):]
    section = section[:section.index("</section>")]
    assert "70 TEA points" in section and "5 TEA" not in section


def test_visitors_still_get_the_welcome_page():
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/").content.decode()
    assert "Welcome to Alliance Points" in page


def test_history_filters_by_asset_kind_and_date(district, shopper, signed_in):
    a, b = Shop(district, "AAA", 1), Shop(district, "BBB", 1)
    a.credit(shopper, 11)
    b.credit(shopper, 22, kind="task")
    other = UserFactory()
    a.credit(other, 33)

    everything = signed_in.get("/history/").content.decode()
    assert "+11" in everything and "+22" in everything and "+33" not in everything
    only_b = signed_in.get("/history/?asset=BBB").content.decode()
    assert "+22" in only_b and "+11" not in only_b
    only_purchase = signed_in.get("/history/?kind=purchase").content.decode()
    assert "+11" in only_purchase and "+22" not in only_purchase
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert "+11" not in signed_in.get(f"/history/?since={tomorrow}").content.decode()
    # bad input is ignored, not an error
    assert signed_in.get("/history/?since=yesterday").status_code == 200


def test_a_receipt_downloads_as_a_file_once_anchored(district, shopper, signed_in, log_key):
    shop = Shop(district, "RCPT", 1)
    txn = shop.credit(shopper, 9)

    # before anchoring: a page that says to wait
    assert signed_in.get(f"/history/{txn}/receipt.json").status_code == 409

    log_services.log_anchor()
    response = signed_in.get(f"/history/{txn}/receipt.json")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="receipt-{txn}.json"'
    receipt = json.loads(response.content)
    assert receipt["format"].startswith("alliance-receipt")
    # the same JSON as the API's
    api = signed_in.get(f"/api/v1/transactions/{txn}/receipt").json()
    assert receipt == api
    # someone else's transaction is not found
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(f"/history/{txn}/receipt.json").status_code == 404


def test_nearby_ranks_stores_by_usable_points_then_distance(district, shopper, signed_in):
    # given a near shop where the shopper has nothing and a far one where they have points
    near = Shop(district, "NEAR", 1, lat="31.230000", lng="121.470000")
    far = Shop(district, "FAR", 1, lat="31.300000", lng="121.470000")
    far.credit(shopper, 80)
    elsewhere = Shop(DistrictFactory(), "ELSE", 1)

    html = signed_in.get("/nearby/?lat=31.23&lng=121.47").content.decode()

    assert html.index(far.store.name) < html.index(near.store.name)
    assert elsewhere.store.name not in html
    assert "¥80.00 of its points" in html
    # without a position: sorted from the district's centre, still a page
    assert signed_in.get("/nearby/?lat=abc").status_code == 200


@pytest.mark.parametrize("url", ["/", "/history/", "/nearby/", "/notifications/"])
def test_storefront_pages_run_a_bounded_number_of_queries(
        district, shopper, signed_in, url, django_assert_max_num_queries):
    shops = [Shop(district, f"S{n}", 1) for n in range(3)]
    for n in range(300):
        shops[n % 3].credit(shopper, n + 1)
    with django_assert_max_num_queries(20):
        assert signed_in.get(url).status_code == 200
