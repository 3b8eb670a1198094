"""Governance through the console: proposing, approving 2 of 3, the refused third approval,
the parameter's history page; admitting a witness key by proposal."""

import pytest
from django.test import Client

from alliance.models import ParameterChange, Proposal
from alliance.services import proposal_approve, proposal_create
from ledger import note
from ledger.log_services import witness_key_register
from ledger.models import Transaction, WitnessKey
from tests.factories import UserFactory
from tests.merchants.helpers import _private_media, active_merchant, council

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_two_of_three_through_the_console_and_the_history_says_who_and_when():
    # given the council and a member proposing a new daily airdrop
    first, second, third = council(3)
    first.display_name, second.display_name = "Council Zhao", "Council Qian"
    first.save(), second.save()
    response = _client(first).post("/console/governance/proposals/new/", {
        "kind": "set_parameter", "key": "airdrop_daily_shared", "value": "600",
        "reason": "More members"})
    assert response.status_code == 302
    proposal = Proposal.objects.get()
    url = f"/console/governance/proposals/{proposal.pk}/"

    # when the first member approves, nothing is executed
    response = _client(first).post(url + "approve/", follow=True)
    assert "Your approval is recorded." in response.content.decode()
    assert not ParameterChange.objects.exists()

    # when the second approves, it is
    response = _client(second).post(url + "approve/", follow=True)
    assert "it is executed" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == Proposal.Status.EXECUTED

    # a third approval is refused with the reason, and changes nothing
    response = _client(third).post(url + "approve/", follow=True)
    assert "This proposal is closed" in response.content.decode()
    assert proposal.approvals.count() == 2
    assert ParameterChange.objects.count() == 1

    # and the parameter's history page shows the change, who made it, when and by which proposal
    page = _client(third).get("/console/governance/parameters/airdrop_daily_shared/")
    body = page.content.decode()
    change = ParameterChange.objects.get()
    assert "498" in body and "600" in body and "Council Qian" in body
    assert f"#{proposal.pk}" in body
    assert change.changed_at.astimezone().strftime("%Y") in body
    home = _client(third).get("/console/governance/").content.decode()
    assert "600" in home


def test_only_council_members_approve_and_bad_proposals_are_form_errors():
    members = council(3)
    staff = UserFactory(is_alliance_staff=True)
    proposal = proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=staff,
                               data={"key": "inflation_rate", "value": "0.03"})
    # staff may propose and read, but the approve button is for council members only
    assert _client(staff).post(
        f"/console/governance/proposals/{proposal.pk}/approve/").status_code == 403
    assert "Approve" not in _client(staff).get(
        f"/console/governance/proposals/{proposal.pk}/").content.decode().split("approvals")[-1]

    for data, field in (
        ({"kind": "set_parameter", "key": "max_deduction_ratio", "value": "2"}, "value"),
        ({"kind": "set_parameter", "key": "", "value": "1"}, "key"),
        ({"kind": "allocate_shared", "merchant": "", "amount": "10"}, "merchant"),
        ({"kind": "allocate_shared", "merchant": active_merchant().pk, "amount": "-1"},
         "amount"),
    ):
        response = _client(members[0]).post("/console/governance/proposals/new/", data)
        assert response.status_code == 400, data
        assert response.context["form"].errors.get(field), (data, response.context[
            "form"].errors)
    assert Proposal.objects.count() == 1


def test_a_witness_key_is_admitted_by_proposal():
    # given a member's witness key, registered and waiting
    merchant = active_merchant()
    _skey, vkey = note.generate_signer("witness.burger.example")
    witness_key = witness_key_register(vkey=vkey, merchant=merchant)
    assert witness_key.status == WitnessKey.Status.PENDING
    first, second, _ = council(3)

    # when the council approves its admission
    proposal = proposal_create(kind=Proposal.Kind.ADMIT_WITNESS_KEY, proposed_by=first,
                               data={"witness_key": witness_key.pk})
    proposal_approve(proposal=proposal, member=first)
    proposal_approve(proposal=proposal, member=second)

    # then the key is approved, and the decision is journalled
    witness_key.refresh_from_db()
    assert witness_key.status == WitnessKey.Status.APPROVED
    assert witness_key.decided_by == second
    executed = Transaction.objects.get(kind="event.proposal.executed")
    assert executed.metadata["outcome"] == {"witness_key": witness_key.pk}
