"""Decisions racing on the real PostgreSQL: a proposal executes once however many council
members approve at the same moment; an application is approved once."""

import importlib

import pytest
from django.apps import apps

from alliance.models import MerchantApplication, Proposal
from alliance.services import (
    ApplicationState,
    ProposalClosed,
    application_approve,
    proposal_approve,
    proposal_create,
)
from ledger.models import Transaction
from merchants.models import Merchant
from tests.factories import UserFactory
from tests.merchants.helpers import (
    _private_media,
    active_merchant,
    council,
    shared_balance,
    submitted_application,
)
from tests.threads import race

# Several connections each: kept on one xdist worker with the other races.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]
__all__ = ["_private_media"]


@pytest.fixture(autouse=True)
def _alliance_assets():
    # Transactional tests flush every table, the migration-made SHARED/SV/ALLY included.
    importlib.import_module("ledger.migrations.0003_alliance_assets").create(apps, None)


def test_three_simultaneous_approvals_execute_an_allocation_once():
    # given an allocation of 1,000 SHARED needing two of three approvals
    merchant = active_merchant()
    members = council(3)
    proposal = proposal_create(kind=Proposal.Kind.ALLOCATE_SHARED, proposed_by=members[0],
                               data={"merchant": merchant.pk, "amount": "1000"})

    # when all three approve at once
    results = race(lambda i: proposal_approve(proposal=proposal, member=members[i]), 3)

    # then two approvals count, the third is refused, and the SHARED arrive once
    assert sum(isinstance(r, Proposal) for r in results) == 2
    assert [type(r) for r in results if not isinstance(r, Proposal)] == [ProposalClosed]
    proposal.refresh_from_db()
    assert proposal.status == Proposal.Status.EXECUTED
    assert proposal.approvals.count() == 2
    assert shared_balance(merchant, "wallet") == 100_000
    assert Transaction.objects.filter(kind="shared_allocation").count() == 1


def test_two_staff_approving_at_once_create_one_merchant():
    application = submitted_application()
    staff = [UserFactory(is_alliance_staff=True) for _ in range(2)]

    results = race(lambda i: application_approve(application=application, by=staff[i]), 2)

    assert sum(isinstance(r, MerchantApplication) for r in results) == 1
    assert sum(isinstance(r, ApplicationState) for r in results) == 1
    assert Merchant.objects.filter(licence_number=application.licence_number).count() == 1
    assert Transaction.objects.filter(kind="event.application.approved").count() == 1
