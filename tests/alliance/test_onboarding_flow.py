"""The whole path of a merchant through the pages: apply, changes requested, resubmit, approve,
invite a cashier, an API key, SHARED allocated by the council, a deposit top-up, leaving with
the deposit back."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from alliance.models import MerchantApplication, Proposal
from ledger.models import Account, Asset, Transaction
from ledger.services import account_get_or_create
from merchants.models import ApiKey, LeaveRequest, Merchant, StaffMembership
from tests.factories import DistrictFactory, UserFactory
from tests.merchants.helpers import _private_media, licence_png, verified_user

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def application_post(district, **overrides) -> dict:
    data = {
        "name_zh": "面包房", "name_en": "Bread Shop", "legal_name": "Bread Shop Ltd.",
        "licence_number": "91310000ma1k000001", "contact_name": "Li Lei",
        "contact_phone": "139 0000 0001", "contact_email": "li@bread.example.com",
        "category": "retail", "district": district.pk, "rebate_rate": "0.1000",
        "asset_code": "bread", "asset_name_zh": "面包积分", "asset_name_en": "Bread points",
        "units_per_cny": "10", "expiry_months": "12",
        "stores-TOTAL_FORMS": "1", "stores-INITIAL_FORMS": "0",
        "stores-MIN_NUM_FORMS": "0", "stores-MAX_NUM_FORMS": "1000",
        "stores-0-name": "Bread Shop Huaihai Rd", "stores-0-address": "淮海中路1号",
        "stores-0-latitude": "31.220000", "stores-0-longitude": "121.470000",
        "stores-0-hours": "08:00-20:00",
    }
    data.update(overrides)
    return data


def _shared(merchant, kind) -> int:
    return account_get_or_create(asset=Asset.objects.get(code="SHARED"), kind=kind,
                                 merchant=merchant).balance


def test_the_whole_path_of_a_member(django_capture_on_commit_callbacks):
    applicant = verified_user(email="li@bread.example.com")
    staff = UserFactory(is_alliance_staff=True)
    council = [UserFactory(is_council_member=True) for _ in range(3)]
    district = DistrictFactory()
    as_applicant, as_staff = _client(applicant), _client(staff)

    # 1. the applicant applies, with the licence image, and sends the application
    response = as_applicant.post("/dashboard/apply/new/", {
        **application_post(district), "licence_image": licence_png(), "submit": "1",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    application = MerchantApplication.objects.get()
    assert application.status == MerchantApplication.Status.SUBMITTED
    assert application.licence_number == "91310000MA1K000001"
    assert application.asset_code == "BREAD"
    assert application.contact_phone == "+8613900000001"

    # 2. staff find it in the queue and ask for changes; the applicant is mailed
    queue = as_staff.get("/console/applications/")
    assert "Bread Shop" in queue.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_staff.post(f"/console/applications/{application.pk}/request-changes/",
                                 {"message": "Please add the opening hours of Sunday."})
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == MerchantApplication.Status.CHANGES_REQUESTED
    assert mail.outbox[-1].to == ["li@bread.example.com"]
    assert "opening hours of Sunday" in mail.outbox[-1].body

    # 3. the applicant sees the request, changes the store hours, replies and resubmits
    page = as_applicant.get(f"/dashboard/apply/{application.pk}/").content.decode()
    assert "opening hours of Sunday" in page
    response = as_applicant.post(f"/dashboard/apply/{application.pk}/", {
        **application_post(district, **{"stores-0-hours": "08:00-20:00, Sun 10:00-18:00"}),
        "applicant_reply": "Sunday hours added.", "submit": "1",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    application.refresh_from_db()
    assert application.status == MerchantApplication.Status.SUBMITTED
    assert application.applicant_reply == "Sunday hours added."
    assert application.stores.get().hours.endswith("Sun 10:00-18:00")
    assert application.licence_image  # kept from the first upload

    # 4. staff approve: the merchant, its points, its accounts and its owner exist
    with django_capture_on_commit_callbacks(execute=True):
        response = as_staff.post(f"/console/applications/{application.pk}/approve/")
    assert response.status_code == 302
    application.refresh_from_db()
    merchant = application.merchant
    assert application.status == MerchantApplication.Status.APPROVED
    assert merchant.status == Merchant.Status.ACTIVE
    assert merchant.licence_number == "91310000MA1K000001"
    asset = Asset.objects.get(code="BREAD")
    assert asset.issuer == merchant and asset.units_per_cny == 10
    assert Account.objects.filter(merchant=merchant, kind="issuance", asset=asset).exists()
    assert StaffMembership.objects.get(merchant=merchant).user == applicant
    assert "Welcome to the alliance" in mail.outbox[-1].subject
    # every decision is kept, and journalled without personal data
    statuses = [h.status for h in application.history.order_by("history_date", "history_id")]
    assert statuses == ["draft", "submitted", "changes_requested", "changes_requested",
                        "submitted", "approved"]
    events = Transaction.objects.filter(kind__startswith="event.application").order_by("pk")
    assert [e.kind for e in events] == [
        "event.application.submitted", "event.application.changes",
        "event.application.submitted", "event.application.approved"]
    journal = " ".join(str(e.metadata) for e in events)
    assert "li@bread" not in journal and "Li Lei" not in journal and "Sunday" not in journal

    # 5. the owner invites a cashier, who accepts with the verified invited address
    as_owner = _client(applicant)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_owner.post("/dashboard/staff/", {"email": "Wang@Bread.example.com",
                                                        "role": "cashier"})
    assert response.status_code == 302
    link = re.search(r"https?://[^/]+(/dashboard/invitations/\S+/)", mail.outbox[-1].body)
    cashier = verified_user(email="wang@bread.example.com")
    as_cashier = _client(cashier)
    assert as_cashier.get(link.group(1)).status_code == 200
    response = as_cashier.post(link.group(1))
    assert response.status_code == 302
    assert StaffMembership.objects.get(merchant=merchant, user=cashier).role == "cashier"
    assert as_cashier.get("/dashboard/").status_code == 200
    assert as_cashier.get("/dashboard/keys/").status_code == 403  # owners only

    # 6. the owner creates an API key, shown once; it works on the API
    response = as_owner.post("/dashboard/keys/", {"name": "Till 1", "scopes": ["purchases"]})
    assert response.status_code == 200
    raw = re.search(r"apk_[0-9a-f]{10}_[0-9a-f]{48}", response.content.decode()).group(0)
    assert raw not in as_owner.get("/dashboard/keys/").content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert api.get("/api/v1/merchant/key").json()["merchant"] == merchant.slug

    # 7. the council allocates 5,000 SHARED by proposal: two of three approvals
    proposer = _client(staff)
    response = proposer.post("/console/governance/proposals/new/", {
        "kind": "allocate_shared", "merchant": merchant.pk, "amount": "5000",
        "reason": "Welcome allocation"})
    assert response.status_code == 302
    proposal = Proposal.objects.get()
    for member in council[:2]:
        assert _client(member).post(
            f"/console/governance/proposals/{proposal.pk}/approve/").status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == Proposal.Status.EXECUTED
    assert _shared(merchant, "wallet") == 500_000

    # 8. the owner tops up the deposit with 2,000 SHARED
    page = as_owner.get("/dashboard/deposit/")
    key = page.context["form"].initial["idempotency_key"]
    response = as_owner.post("/dashboard/deposit/", {"amount": "2000", "idempotency_key": key})
    assert response.status_code == 302
    assert (_shared(merchant, "wallet"), _shared(merchant, "deposit")) == (300_000, 200_000)
    # the same form sent twice moves the SHARED once
    as_owner.post("/dashboard/deposit/", {"amount": "2000", "idempotency_key": key})
    assert _shared(merchant, "deposit") == 200_000

    # 9. the owner asks to leave; staff approve; the deposit goes back to the wallet
    response = as_owner.post("/dashboard/deposit/leave/", {"reason": "Closing the shop"})
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.LEAVING
    leave = LeaveRequest.objects.get()
    assert "Bread Shop" in as_staff.get("/console/leaving/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_staff.post(f"/console/leaving/{leave.pk}/approve/", {"note": "Good luck"})
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.LEFT
    assert (_shared(merchant, "wallet"), _shared(merchant, "deposit")) == (500_000, 0)
    leave.refresh_from_db()
    assert leave.status == LeaveRequest.Status.APPROVED and leave.refunded == 200_000
    assert Transaction.objects.filter(kind="event.merchant.left").count() == 1
    # its keys stop working, and its owner no longer has a dashboard
    assert ApiKey.objects.get().revoked_at is not None
    assert api.get("/api/v1/merchant/key").status_code == 401
    assert as_owner.get("/dashboard/").status_code == 403
    assert EmailAddress.objects.filter(user=applicant, verified=True).exists()
