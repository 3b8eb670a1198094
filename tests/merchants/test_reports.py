"""The merchant's reports: KPIs, charts, coverage of the liability and a CSV export of its
own transactions only; managers and owners only; bounded queries."""

import csv
import io
import json
import re

import pytest
from django.test import Client

from ledger import services
from ledger.models import Account
from merchants.models import StaffMembership
from tests.factories import StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


class Shop:
    def __init__(self, code, units_per_cny=10, role=StaffMembership.Role.OWNER):
        self.membership = StaffMembershipFactory(role=role)
        self.merchant = self.membership.merchant
        self.asset = services.asset_create_brand(
            merchant=self.merchant, code=code, name_zh=code, name_en=code,
            units_per_cny=units_per_cny, expiry_months=12)
        self.issuance = services.issuance_account(self.asset)
        self.n = 0

    def _post(self, kind, legs):
        self.n += 1
        services.transaction_post(kind=kind, client="test",
                                  idempotency_key=f"{self.asset.code}-{self.n}", legs=legs)

    def wallet(self, user):
        return services.account_get_or_create(asset=self.asset, kind=Account.Kind.WALLET,
                                              user=user)

    def issue(self, user, amount):
        self._post("purchase", [services.Leg(self.issuance, -amount),
                                services.Leg(self.wallet(user), amount)])

    def sink(self, user, amount, kind):
        sink = services.sink_account(self.asset, kind)
        self._post(kind, [services.Leg(self.wallet(user), -amount), services.Leg(sink, amount)])

    def deposit(self, amount):
        shared = services.alliance_asset("SHARED")
        deposit = services.account_get_or_create(asset=shared, kind=Account.Kind.DEPOSIT,
                                                 merchant=self.merchant)
        self._post("deposit", [services.Leg(services.issuance_account(shared), -amount),
                               services.Leg(deposit, amount)])

    def client(self):
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        client.force_login(self.membership.user)
        return client


def _text(html, element_id):
    match = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert match, element_id
    return match.group(1).strip()


def test_kpis_show_issued_redeemed_expired_liability_and_coverage():
    # given 1,000 issued at 10 per CNY, 200 redeemed, 100 expired; a deposit of CNY 35.00
    shop = Shop("KPI")
    shopper = UserFactory()
    shop.issue(shopper, 1000)
    shop.sink(shopper, 200, Account.Kind.BURN)
    shop.sink(shopper, 100, Account.Kind.EXPIRED)
    shop.deposit(3500)

    html = shop.client().get("/dashboard/reports/?days=90").content.decode()

    assert _text(html, "kpi-issued") == "1,000"
    assert _text(html, "kpi-redeemed") == "200"
    assert _text(html, "kpi-expired") == "100"
    assert _text(html, "kpi-outstanding") == "700"
    assert "Liability ¥70.00" in html and "20.0% of issued" in html and "10.0% of issued" in html
    assert _text(html, "kpi-deposit") == "¥35.00"
    assert _text(html, "kpi-coverage") == "50%"
    chart = json.loads(re.search(r'id="report-flows" type="application/json">(.*?)</script>',
                                 html).group(1))
    assert len(chart["labels"]) == 90
    assert chart["datasets"][0]["data"][-1] == 1000


def test_the_csv_export_holds_only_the_merchants_own_postings():
    mine, theirs = Shop("MINE"), Shop("THEIRS")
    shopper = UserFactory()
    mine.issue(shopper, 11)
    theirs.issue(shopper, 22)

    response = mine.client().get("/dashboard/reports/transactions.csv")

    assert response["Content-Disposition"].startswith('attachment; filename="transactions-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "transaction"
    assert {row[3] for row in rows[1:]} == {"MINE"}
    assert sorted(int(row[6]) for row in rows[1:]) == [-11, 11]
    assert shopper.email not in "".join(",".join(r) for r in rows)


def test_cashiers_and_shoppers_cannot_read_reports():
    cashier = Shop("CASH", role=StaffMembership.Role.CASHIER)
    assert cashier.client().get("/dashboard/reports/").status_code == 403
    shopper = Client()
    shopper.force_login(UserFactory())
    assert shopper.get("/dashboard/reports/transactions.csv").status_code == 403


def test_the_reports_page_runs_a_bounded_number_of_queries(django_assert_max_num_queries):
    shop = Shop("BIG")
    users = [UserFactory() for _ in range(5)]
    for n in range(300):
        shop.issue(users[n % 5], n + 1)
    client = shop.client()
    with django_assert_max_num_queries(20):
        assert client.get("/dashboard/reports/").status_code == 200
    with django_assert_max_num_queries(20):
        assert client.get("/dashboard/").status_code == 200
