"""Governance: proposals carried by M of N council approvals, executed once, journalled."""

from decimal import Decimal

import pytest
from django.utils import translation

from alliance.errors import PermissionDenied
from alliance.models import Proposal
from alliance.parameters import InvalidParameter, parameter_get, parameter_history
from alliance.services import (
    AlreadyApproved,
    ProposalClosed,
    ProposalInvalid,
    proposal_approve,
    proposal_cancel,
    proposal_create,
)
from ledger.models import Transaction
from merchants.models import Merchant
from tests.factories import UserFactory
from tests.merchants.helpers import _private_media, active_merchant, council, shared_balance

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def _events(kind: str) -> list[Transaction]:
    return list(Transaction.objects.filter(kind=kind).order_by("pk"))


def test_two_of_three_one_approval_executes_nothing_the_second_executes_a_third_is_refused():
    # given a council of three and a proposal to raise the minimum deposit
    first, second, third = council(3)
    staff = UserFactory(is_alliance_staff=True)
    proposal = proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=staff,
                               data={"key": "min_deposit_shared", "value": "800"},
                               reason="More cover for rebates")
    assert proposal.threshold == 2

    # when one member approves
    proposal = proposal_approve(proposal=proposal, member=first)

    # then nothing is executed yet
    assert proposal.status == Proposal.Status.OPEN
    assert parameter_get("min_deposit_shared") == Decimal("500")

    # when a second member approves
    proposal = proposal_approve(proposal=proposal, member=second)

    # then the parameter is in force, and its history says who and which proposal
    assert proposal.status == Proposal.Status.EXECUTED
    assert parameter_get("min_deposit_shared") == Decimal("800")
    change = parameter_history("min_deposit_shared").get()
    assert (change.old_value, change.new_value) == (Decimal("500"), Decimal("800"))
    assert change.changed_by == second and change.proposal == proposal
    assert change.changed_at is not None

    # when the third member approves after execution
    with pytest.raises(ProposalClosed):
        proposal_approve(proposal=proposal, member=third)

    # then it is refused, nothing changes again, and the journal holds each step once
    assert parameter_history("min_deposit_shared").count() == 1
    assert proposal.approvals.count() == 2
    assert len(_events("event.proposal.created")) == 1
    assert len(_events("event.proposal.approved")) == 2
    executed = _events("event.proposal.executed")
    assert len(executed) == 1
    assert executed[0].metadata["outcome"] == {"key": "min_deposit_shared", "old": "500",
                                               "new": "800"}


def test_one_member_cannot_approve_twice_and_non_members_cannot_approve():
    # given a proposal and one approval
    first, _second, _third = council(3)
    proposal = proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=first,
                               data={"key": "airdrop_daily_shared", "value": "600"})
    proposal_approve(proposal=proposal, member=first)

    # then the same member again, and alliance staff, are refused
    with pytest.raises(AlreadyApproved):
        proposal_approve(proposal=proposal, member=first)
    with pytest.raises(PermissionDenied):
        proposal_approve(proposal=proposal, member=UserFactory(is_alliance_staff=True))

    # and the parameter is unchanged
    proposal.refresh_from_db()
    assert proposal.status == Proposal.Status.OPEN
    assert parameter_get("airdrop_daily_shared") == Decimal("498")


def test_allocating_shared_mints_from_the_alliance_issuance_into_the_merchant_wallet():
    # given a merchant and a council
    merchant = active_merchant()
    first, second, _ = council(3)

    # when the council allocates 5,000 SHARED to it
    proposal = proposal_create(kind=Proposal.Kind.ALLOCATE_SHARED, proposed_by=first,
                               data={"merchant": merchant.pk, "amount": "5000"})
    proposal_approve(proposal=proposal, member=first)
    assert shared_balance(merchant, "wallet") == 0
    proposal_approve(proposal=proposal, member=second)

    # then its SHARED wallet holds 500,000 minor units, from one allocation transaction
    assert shared_balance(merchant, "wallet") == 500_000
    allocation = Transaction.objects.get(kind="shared_allocation")
    assert allocation.metadata == {"proposal": proposal.pk, "merchant": merchant.pk}
    assert sorted(p.amount for p in allocation.postings.all()) == [-500_000, 500_000]


def test_suspend_and_readmit_a_merchant():
    merchant = active_merchant()
    first, second, _ = council(3)
    for kind, status in ((Proposal.Kind.SUSPEND_MERCHANT, Merchant.Status.SUSPENDED),
                         (Proposal.Kind.READMIT_MERCHANT, Merchant.Status.ACTIVE)):
        proposal = proposal_create(kind=kind, proposed_by=first, data={"merchant": merchant.pk})
        proposal_approve(proposal=proposal, member=first)
        proposal_approve(proposal=proposal, member=second)
        merchant.refresh_from_db()
        assert merchant.status == status


def test_a_proposal_that_can_no_longer_be_carried_out_closes_as_failed_and_changes_nothing():
    # given a proposal to suspend a merchant, which is suspended meanwhile by another
    merchant = active_merchant()
    first, second, _ = council(3)
    proposal = proposal_create(kind=Proposal.Kind.SUSPEND_MERCHANT, proposed_by=first,
                               data={"merchant": merchant.pk})
    Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.LEFT)
    proposal_approve(proposal=proposal, member=first)

    # when the deciding approval comes
    proposal = proposal_approve(proposal=proposal, member=second)

    # then the proposal failed with the reason and the merchant is as it was
    assert proposal.status == Proposal.Status.FAILED
    assert proposal.outcome["error"] == "invalid_proposal"
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.LEFT
    assert len(_events("event.proposal.failed")) == 1


@pytest.mark.parametrize(
    ("kind", "data", "error"),
    [
        (Proposal.Kind.SET_PARAMETER, {"key": "council_threshold", "value": "0"},
         InvalidParameter),
        (Proposal.Kind.SET_PARAMETER, {"key": "nope", "value": "1"}, InvalidParameter),
        (Proposal.Kind.ALLOCATE_SHARED, {"merchant": 999999, "amount": "10"}, ProposalInvalid),
        (Proposal.Kind.ALLOCATE_SHARED, {"merchant": None, "amount": "-10"}, ProposalInvalid),
        (Proposal.Kind.ALLOCATE_SHARED, {"merchant": None, "amount": "1.001"}, ProposalInvalid),
        (Proposal.Kind.READMIT_MERCHANT, {"merchant": None}, ProposalInvalid),
        ("bogus", {}, ProposalInvalid),
    ],
)
def test_an_invalid_proposal_is_refused_and_nothing_is_recorded(kind, data, error):
    merchant = active_merchant()
    data = {k: (merchant.pk if v is None and k == "merchant" else v) for k, v in data.items()}
    members = council(3)
    with pytest.raises(error):
        proposal_create(kind=kind, data=data, proposed_by=members[0])
    assert not Proposal.objects.exists()
    assert not _events("event.proposal.created")


def test_a_council_smaller_than_the_threshold_cannot_be_asked():
    # given a single council member and a threshold of two
    member = council(1)[0]
    # (the message is read in English; the alliance's default language is Chinese)
    with translation.override("en"), pytest.raises(Exception, match="fewer members"):
        proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=member,
                        data={"key": "inflation_rate", "value": "0.03"})
    assert not Proposal.objects.exists()


def test_the_proposer_can_cancel_an_open_proposal_which_then_takes_no_approvals():
    first, second, _ = council(3)
    proposal = proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=first,
                               data={"key": "inflation_rate", "value": "0.03"})
    with pytest.raises(PermissionDenied):
        proposal_cancel(proposal=proposal, by=second)
    proposal_cancel(proposal=proposal, by=first)
    with pytest.raises(ProposalClosed):
        proposal_approve(proposal=proposal, member=second)
    assert parameter_get("inflation_rate") == Decimal("0.02")
