"""The supervisor's read-only console: issuance, outstanding points and their CNY liability,
deposits and flows per merchant; alerts (deposit low, issuance spike, abuse) and their
acknowledgement."""

from datetime import timedelta
from decimal import Decimal

import pgtrigger
import pytest
from django.test import Client
from django.utils import timezone

from alliance.models import Alert
from alliance.selectors import supervision_overview
from alliance.services import alert_raise, issuance_spike_check
from ledger.models import Account, Transaction
from ledger.services import Leg, account_get_or_create, issuance_account, transaction_post
from merchants.imports import brand_asset
from merchants.services import deposit_top_up, shared_allocate
from tests.factories import UserFactory
from tests.merchants.helpers import _private_media, active_merchant

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _issue(merchant, amount: int, key: str, shopper=None) -> Transaction:
    asset = brand_asset(merchant)
    shopper = shopper or UserFactory()
    wallet = account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=shopper)
    posted = transaction_post(kind="purchase", legs=[Leg(issuance_account(asset), -amount),
                                                     Leg(wallet, amount)],
                              client="test", idempotency_key=key)
    return posted.transaction


def _age(transaction: Transaction, days: int) -> None:
    # The journal is append-only; only a test may move a row back in time.
    with pgtrigger.ignore("ledger.Transaction:transaction_append_only"):
        Transaction.objects.filter(pk=transaction.pk).update(
            created_at=transaction.created_at - timedelta(days=days))


def test_the_overview_shows_issuance_liability_deposit_and_flows():
    # given a merchant (100 points = CNY 1) that issued 1,000 points and took 200 back,
    # was allocated 5,000 SHARED and deposited 2,000 of them
    merchant = active_merchant(code="BURGER", units=100)
    shopper = UserFactory()
    _issue(merchant, 1_000, "i1", shopper)
    asset = brand_asset(merchant)
    wallet = account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=shopper)
    transaction_post(kind="redemption", legs=[Leg(wallet, -200),
                                              Leg(issuance_account(asset), 200)],
                     client="test", idempotency_key="r1")
    shared_allocate(merchant=merchant, amount=500_000, idempotency_key="a")
    deposit_top_up(merchant=merchant, amount=200_000, idempotency_key="t")

    # when supervisors look
    row = next(r for r in supervision_overview() if r.merchant == merchant)

    # then the figures are the ledger's
    assert (row.issued, row.retired, row.outstanding) == (1_000, 200, 800)
    assert row.liability_cny == Decimal("8.00")
    assert row.deposit == 200_000
    assert (row.points_out, row.points_in) == (1_000, 200)
    assert (row.shared_in, row.shared_out) == (500_000, 0)  # the top-up is internal

    # and the page shows them to a supervisor, with the merchant's own page and chart data
    supervisor = _client(UserFactory(is_supervisor=True))
    body = supervisor.get("/console/supervision/").content.decode()
    assert "Merchant BURGER" in body and "8.00" in body and "2000.00" in body
    page = supervisor.get(f"/console/supervision/merchants/{merchant.pk}/")
    assert page.status_code == 200
    assert page.context["flows"][-1]["issued"] == 1_000
    assert 'id="flows-data"' in page.content.decode()
    # read-only: no decision of the console is open to a supervisor
    assert supervisor.post("/console/governance/proposals/new/", {}).status_code == 403


def test_issuance_far_above_the_trailing_average_raises_one_alert_per_day():
    # given two merchants that issued 2,800 points ten days ago (100 a day on average)
    spiking, steady = active_merchant(code="SPIKE"), active_merchant(code="STEADY")
    _age(_issue(spiking, 2_800, "old-1"), days=10)
    _age(_issue(steady, 2_800, "old-2"), days=10)

    # when today one issues 400 (> 3 × 100) and the other 250, and the check runs twice
    _issue(spiking, 400, "new-1")
    _issue(steady, 250, "new-2")
    raised = issuance_spike_check()
    issuance_spike_check()

    # then one alert, for the spiking merchant, with the figures
    assert [a.merchant for a in raised] == [spiking]
    alert = Alert.objects.get(kind=Alert.Kind.ISSUANCE_SPIKE)
    assert alert.details == {"asset": "SPIKE", "today": 400, "average": "100.00",
                             "factor": "3"}


def test_imports_are_not_issuance_spikes():
    merchant = active_merchant(code="IMPORTER")
    _age(_issue(merchant, 2_800, "old"), days=10)
    asset = brand_asset(merchant)
    claims = account_get_or_create(asset=asset, kind="claims", merchant=merchant)
    transaction_post(kind="member_import", legs=[Leg(issuance_account(asset), -100_000),
                                                 Leg(claims, 100_000,
                                                     expires_at=timezone.now() + timedelta(
                                                         days=3650))],
                     client="test", idempotency_key="import")
    assert issuance_spike_check() == []


def test_alerts_are_acknowledged_once_with_who_and_a_note():
    # given an abuse flag raised by the points app, twice with one key
    merchant = active_merchant()
    alert, created = alert_raise(kind=Alert.Kind.ABUSE, key="abuse:velocity:1.2.3.4:2026-11-22",
                                 merchant=merchant, details={"ip": "1.2.3.4", "hits": 90})
    assert created and not alert_raise(kind=Alert.Kind.ABUSE,
                                       key="abuse:velocity:1.2.3.4:2026-11-22")[1]
    supervisor_user = UserFactory(is_supervisor=True, display_name="Supervisor Sun")
    supervisor = _client(supervisor_user)
    assert "hits: 90" in supervisor.get("/console/supervision/alerts/").content.decode()

    # when a supervisor acknowledges it with a note, and again
    supervisor.post(f"/console/supervision/alerts/{alert.pk}/acknowledge/",
                    {"note": "Known promotion"})
    supervisor.post(f"/console/supervision/alerts/{alert.pk}/acknowledge/", {"note": "again"})

    # then the first acknowledgement stands, and the open list no longer shows it
    alert.refresh_from_db()
    assert alert.acknowledged_by == supervisor_user and alert.note == "Known promotion"
    assert "hits: 90" not in supervisor.get("/console/supervision/alerts/").content.decode()
    assert "Known promotion" in supervisor.get(
        "/console/supervision/alerts/?show=all").content.decode()
