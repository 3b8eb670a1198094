"""The deposit (SPEC §4.3): levels, the dashboard banner, the owner's mail and the supervisors'
alert once per fall; leaving and getting the deposit back, or staying."""

from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.utils import translation

from alliance.models import Alert, Proposal
from alliance.services import proposal_approve, proposal_create
from ledger.models import Account
from ledger.services import (
    Leg,
    account_get_or_create,
    alliance_asset,
    sink_account,
    transaction_post,
)
from merchants.models import DepositWatch, LeaveRequest, Merchant, StaffMembership
from merchants.services import (
    LeaveState,
    deposit_level_check,
    deposit_levels,
    deposit_status,
    deposit_top_up,
    merchant_leave_approve,
    merchant_leave_cancel,
    merchant_leave_reject,
    merchant_leave_request,
    shared_allocate,
)
from merchants.tasks import deposit_levels_check
from tests.factories import UserFactory
from tests.merchants.helpers import (
    _private_media,
    active_merchant,
    council,
    owner_of,
    shared_balance,
    verified_user,
)

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def _burn(merchant: Merchant, amount: int, key: str) -> None:
    """What a rebated purchase does to the deposit (points' purchase_record burns like this)."""
    shared = alliance_asset("SHARED")
    deposit = account_get_or_create(asset=shared, kind=Account.Kind.DEPOSIT, merchant=merchant)
    transaction_post(kind="purchase", legs=[Leg(deposit, -amount),
                                            Leg(sink_account(shared, Account.Kind.BURN), amount)],
                     client="test", idempotency_key=key)


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_the_levels_follow_the_parameters():
    # given the defaults: minimum 500 SHARED, warning 20% above it
    assert deposit_levels() == (50_000, 60_000)
    members = council(3)
    proposal = proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=members[0],
                               data={"key": "deposit_warning_ratio", "value": "0.5"})
    for member in members[:2]:
        proposal_approve(proposal=proposal, member=member)
    assert deposit_levels() == (50_000, 75_000)


@translation.override("en")
def test_a_fall_below_the_warning_level_mails_the_owners_and_alerts_once(
    django_capture_on_commit_callbacks,
):
    # given a merchant with 700 SHARED deposited (above the 600 warning level)
    merchant = active_merchant()
    shared_allocate(merchant=merchant, amount=100_000, idempotency_key="a")
    with django_capture_on_commit_callbacks(execute=True):
        deposit_top_up(merchant=merchant, amount=70_000, idempotency_key="t")
    assert DepositWatch.objects.get(merchant=merchant).level == DepositWatch.Level.OK
    mail.outbox.clear()

    # when purchases burn it to 550 SHARED and the level is checked (twice)
    _burn(merchant, 15_000, "p1")
    with django_capture_on_commit_callbacks(execute=True):
        assert deposit_level_check(merchant=merchant) == "warning"
        assert deposit_level_check(merchant=merchant) == "warning"

    # then the owner got one mail and supervisors one alert
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [owner_of(merchant).email]
    assert "running low" in mail.outbox[0].subject and "550.00" in mail.outbox[0].body
    alert = Alert.objects.get(kind=Alert.Kind.DEPOSIT_LOW)
    assert alert.merchant == merchant and alert.severity == "warning"

    # when it falls below the minimum, a second (critical) mail and alert follow
    _burn(merchant, 10_000, "p2")
    with django_capture_on_commit_callbacks(execute=True):
        deposit_levels_check.delay()
    assert len(mail.outbox) == 2 and "below the minimum" in mail.outbox[1].subject
    assert Alert.objects.filter(kind=Alert.Kind.DEPOSIT_LOW, severity="critical").count() == 1


def test_the_dashboard_shows_a_banner_to_staff_while_the_deposit_is_low():
    # given a merchant below the minimum, its owner and its cashier
    merchant = active_merchant()
    cashier = verified_user()
    StaffMembership.objects.create(merchant=merchant, user=cashier, role="cashier")

    # then both see the banner on the dashboard; only the owner gets the top-up link
    owner_page = _client(owner_of(merchant)).get("/dashboard/").content.decode()
    cashier_page = _client(cashier).get("/dashboard/").content.decode()
    assert "Your deposit is below the minimum." in owner_page
    assert "Your deposit is below the minimum." in cashier_page
    assert "/dashboard/deposit/" in owner_page.split("deposit-banner")[1][:800]
    assert "Top up" not in cashier_page.split("deposit-banner")[1][:800]

    # when the deposit is topped up above the warning level, the banner goes
    shared_allocate(merchant=merchant, amount=100_000, idempotency_key="a")
    deposit_top_up(merchant=merchant, amount=100_000, idempotency_key="t")
    assert "deposit-banner" not in _client(cashier).get("/dashboard/").content.decode()
    assert deposit_status(merchant).level == "ok"


def test_leaving_returns_the_whole_deposit_to_the_wallet_and_approving_twice_is_refused():
    # given a merchant with 300 SHARED deposited and 200 in its wallet, asking to leave
    merchant = active_merchant()
    shared_allocate(merchant=merchant, amount=50_000, idempotency_key="a")
    deposit_top_up(merchant=merchant, amount=30_000, idempotency_key="t")
    request = merchant_leave_request(merchant=merchant, by=owner_of(merchant), reason="Closing")
    with pytest.raises(LeaveState):
        merchant_leave_request(merchant=merchant, by=owner_of(merchant))
    staff = UserFactory(is_alliance_staff=True)

    # when staff approve
    request = merchant_leave_approve(leave_request=request, by=staff)

    # then the deposit is back, the merchant has left, and a second approval is refused
    assert (shared_balance(merchant, "wallet"), shared_balance(merchant, "deposit")) == (
        50_000, 0)
    assert request.refunded == 30_000 and request.refund_transaction is not None
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.LEFT
    with pytest.raises(LeaveState):
        merchant_leave_approve(leave_request=request, by=staff)
    assert shared_balance(merchant, "wallet") == 50_000
    history = [h.status for h in request.history.order_by("history_date", "history_id")]
    assert history == ["pending", "approved"]


def test_a_rejected_or_cancelled_request_keeps_the_merchant_in(django_capture_on_commit_callbacks):
    merchant = active_merchant()
    owner = owner_of(merchant)
    request = merchant_leave_request(merchant=merchant, by=owner)
    with pytest.raises(Exception, match="reason"):
        merchant_leave_reject(leave_request=request, by=UserFactory(), note="  ")
    with django_capture_on_commit_callbacks(execute=True):
        merchant_leave_reject(leave_request=request, by=UserFactory(), note="Settle debts first")
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.ACTIVE
    assert "Settle debts first" in mail.outbox[-1].body

    again = merchant_leave_request(merchant=merchant, by=owner)
    merchant_leave_cancel(leave_request=again, by=owner)
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.ACTIVE
    assert [r.status for r in LeaveRequest.objects.order_by("pk")] == ["rejected", "cancelled"]


def test_leaving_and_deciding_through_the_pages(django_capture_on_commit_callbacks):
    merchant = active_merchant()
    owner = _client(owner_of(merchant))
    staff = _client(UserFactory(is_alliance_staff=True))
    assert owner.post("/dashboard/deposit/leave/", {"reason": "x" * 2001}).status_code == 302
    assert not LeaveRequest.objects.exists()  # too long: refused with a message
    owner.post("/dashboard/deposit/leave/", {"reason": "Moving away"})
    request = LeaveRequest.objects.get()
    assert "leave-pending" in owner.get("/dashboard/deposit/").content.decode()
    response = staff.post(f"/console/leaving/{request.pk}/reject/", {"note": ""}, follow=True)
    assert "Give the reason" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/console/leaving/{request.pk}/approve/", {"note": ""})
    request.refresh_from_db()
    assert request.status == LeaveRequest.Status.APPROVED
    assert Decimal(request.refunded) == 0
