"""Merchant staff: invitations by email, accepting them, roles, and the last owner."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from alliance.errors import PermissionDenied
from merchants.models import StaffInvitation, StaffMembership
from merchants.services import (
    InvitationInvalid,
    StaffConflict,
    staff_invitation_accept,
    staff_invite,
    staff_remove,
    staff_role_change,
)
from tests.merchants.helpers import _private_media, active_merchant, owner_of, verified_user

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _invite(merchant, email, role, capture) -> str:
    with capture(execute=True):
        staff_invite(merchant=merchant, email=email, role=role, invited_by=owner_of(merchant),
                     site_url="https://portal.example")
    return re.search(r"/dashboard/invitations/([^/\s]+)/", mail.outbox[-1].body).group(1)


def test_an_invitation_is_mailed_and_only_its_verified_address_can_accept(
    django_capture_on_commit_callbacks,
):
    # given an invitation for a manager
    merchant = active_merchant()
    token = _invite(merchant, "Manager@Example.com", "manager",
                    django_capture_on_commit_callbacks)
    assert mail.outbox[-1].to == ["manager@example.com"]
    assert "https://portal.example/dashboard/invitations/" in mail.outbox[-1].body
    stored = StaffInvitation.objects.get()
    assert token not in stored.token_hash  # only the hash is kept

    # when someone else (another verified address) opens the link and accepts
    stranger = verified_user(email="stranger@example.com")
    response = _client(stranger).post(f"/dashboard/invitations/{token}/")

    # then they are refused with the reason, and nothing changes
    assert response.status_code == 400
    assert "manager@example.com" in response.content.decode()
    assert not StaffMembership.objects.filter(user=stranger).exists()

    # and the invited person, with the address verified, accepts and works there
    invited = verified_user(email="manager@example.com")
    response = _client(invited).post(f"/dashboard/invitations/{token}/")
    assert response.status_code == 302
    assert StaffMembership.objects.get(user=invited).role == "manager"
    with pytest.raises(InvitationInvalid):
        staff_invitation_accept(token=token, user=invited)


def test_an_unverified_address_expired_or_withdrawn_invitations_are_refused(
    django_capture_on_commit_callbacks,
):
    merchant = active_merchant()
    unverified = verified_user(email="other@example.com")
    unverified.emailaddress_set.create(email="late@example.com", verified=False)
    token = _invite(merchant, "late@example.com", "cashier", django_capture_on_commit_callbacks)
    with pytest.raises(PermissionDenied):
        staff_invitation_accept(token=token, user=unverified)

    StaffInvitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    unverified.emailaddress_set.filter(email="late@example.com").update(verified=True)
    with pytest.raises(InvitationInvalid):
        staff_invitation_accept(token=token, user=unverified)

    # a new invitation replaces the open one; the withdrawn one no longer works
    first = _invite(merchant, "again@example.com", "cashier", django_capture_on_commit_callbacks)
    second = _invite(merchant, "again@example.com", "manager", django_capture_on_commit_callbacks)
    person = verified_user(email="again@example.com")
    with pytest.raises(InvitationInvalid):
        staff_invitation_accept(token=first, user=person)
    assert staff_invitation_accept(token=second, user=person).role == "manager"
    assert _client(person).get("/dashboard/invitations/no-such-token/").status_code == 404
    assert not StaffMembership.objects.filter(user=unverified).exists()


def test_inviting_someone_already_on_the_staff_is_a_form_error():
    merchant = active_merchant()
    owner = owner_of(merchant)
    with pytest.raises(StaffConflict):
        staff_invite(merchant=merchant, email=owner.email.upper(), role="cashier",
                     invited_by=owner)
    response = _client(owner).post("/dashboard/staff/", {"email": owner.email, "role": "cashier"})
    assert response.status_code == 400
    assert "already works for this merchant" in response.content.decode()
    response = _client(owner).post("/dashboard/staff/", {"email": "x@example.com",
                                                         "role": "admiral"})
    assert response.status_code == 400
    assert not StaffInvitation.objects.exists()


def test_a_merchant_always_keeps_an_owner():
    merchant = active_merchant()
    owner = StaffMembership.objects.get(merchant=merchant)
    with pytest.raises(StaffConflict):
        staff_role_change(membership=owner, role="cashier")
    with pytest.raises(StaffConflict):
        staff_remove(membership=owner)
    response = _client(owner.user).post(f"/dashboard/staff/{owner.pk}/role/",
                                        {"role": "manager"}, follow=True)
    assert "at least one owner" in response.content.decode()

    # with a second owner, the first may step down
    second = StaffMembership.objects.create(merchant=merchant, user=verified_user(),
                                            role="owner")
    staff_role_change(membership=owner, role="manager")
    assert StaffMembership.objects.get(pk=owner.pk).role == "manager"
    with pytest.raises(StaffConflict):
        staff_remove(membership=second)
    cashier = StaffMembership.objects.create(merchant=merchant, user=verified_user(),
                                             role="cashier")
    response = _client(second.user).post(f"/dashboard/staff/{cashier.pk}/remove/")
    assert response.status_code == 302
    assert not StaffMembership.objects.filter(pk=cashier.pk).exists()
