"""Merchant A reads none of merchant B's shoppers, transactions or settings through any page
or endpoint of the dashboard and of the merchant API: every attempt is made with B's ids."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from alliance.models import MerchantApplication
from merchants.imports import member_import_check
from merchants.models import (
    ApiKey,
    LeaveRequest,
    MemberImport,
    StaffInvitation,
    StaffMembership,
)
from merchants.services import (
    api_key_create,
    deposit_top_up,
    merchant_leave_request,
    shared_allocate,
    staff_invite,
)
from tests.merchants.helpers import (
    _private_media,
    active_merchant,
    owner_of,
    submitted_application,
    verified_user,
)

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]

B_SECRETS = ("b-cashier@b.example.com", "b-invitee@b.example.com", "B's secret till",
             "b-members.csv", "+8613700000077", "13700000077", "b-applicant@b.example.com")


@pytest.fixture
def two_merchants(django_capture_on_commit_callbacks):
    """Merchant A and merchant B, B with staff, an invitation, a key, an import of its
    members, deposit movements and a pending request to leave."""
    a = active_merchant(code="AAA")
    b = active_merchant(code="BBB")
    b_cashier = verified_user(email="b-cashier@b.example.com")
    cashier = StaffMembership.objects.create(merchant=b, user=b_cashier, role="cashier")
    invitation = staff_invite(merchant=b, email="b-invitee@b.example.com", role="manager",
                              invited_by=owner_of(b))
    b_key, b_raw = api_key_create(merchant=b, name="B's secret till", scopes=["purchases"])
    b_import, report = member_import_check(
        merchant=b, upload=SimpleUploadedFile("b-members.csv", b"phone,balance\n13700000077,5\n"))
    assert report.ok
    shared_allocate(merchant=b, amount=100_000, idempotency_key="b-alloc")
    top_up = deposit_top_up(merchant=b, amount=60_000, idempotency_key="b-top-up")
    leave = merchant_leave_request(merchant=b, by=owner_of(b), reason="B leaves")
    b_application = submitted_application(applicant=verified_user(
        email="b-applicant@b.example.com"))
    _a_key, a_raw = api_key_create(merchant=a, name="A till", scopes=["purchases"])
    return {
        "a": a, "b": b, "cashier": cashier, "invitation": invitation, "b_key": b_key,
        "b_raw": b_raw, "b_import": b_import, "top_up": top_up.transaction_id, "leave": leave,
        "b_application": b_application, "a_raw": a_raw,
    }


def _owner_client(merchant) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(owner_of(merchant), backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_a_reads_none_of_bs_rows_by_their_ids(two_merchants):
    # given A's owner, trying every page that takes an id with B's ids
    t = two_merchants
    client = _owner_client(t["a"])
    attempts = [
        ("get", "onboarding:import-detail", t["b_import"].pk),
        ("post", "onboarding:import-start", t["b_import"].pk),
        ("post", "onboarding:staff-role", t["cashier"].pk),
        ("post", "onboarding:staff-remove", t["cashier"].pk),
        ("post", "onboarding:invitation-revoke", t["invitation"].pk),
        ("post", "onboarding:api-key-revoke", t["b_key"].pk),
        ("get", "onboarding:apply-detail", t["b_application"].pk),
        ("post", "onboarding:apply-detail", t["b_application"].pk),
        ("get", "onboarding:apply-licence", t["b_application"].pk),
        ("post", "onboarding:apply-submit", t["b_application"].pk),
        ("post", "onboarding:apply-withdraw", t["b_application"].pk),
    ]

    # then each is 404, as if the row did not exist
    for method, name, pk in attempts:
        url = reverse(name, kwargs={"pk": pk})
        response = getattr(client, method)(url, {"role": "owner"} if method == "post" else None)
        assert response.status_code == 404, (name, response.status_code)

    # and none of B's rows changed
    assert StaffMembership.objects.get(pk=t["cashier"].pk).role == "cashier"
    assert StaffInvitation.objects.get(pk=t["invitation"].pk).revoked_at is None
    assert ApiKey.objects.get(pk=t["b_key"].pk).revoked_at is None
    assert MemberImport.objects.get(pk=t["b_import"].pk).status == MemberImport.Status.CHECKED
    assert (MerchantApplication.objects.get(pk=t["b_application"].pk).status
            == MerchantApplication.Status.SUBMITTED)


def test_as_list_pages_show_none_of_bs_shoppers_transactions_or_settings(two_merchants):
    # given A's owner
    t = two_merchants
    client = _owner_client(t["a"])

    # when they open every list page of the dashboard
    pages = ["/dashboard/", "/dashboard/staff/", "/dashboard/keys/", "/dashboard/deposit/",
             "/dashboard/members/import/", "/dashboard/apply/"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        # then none of B's people, members, keys, files or transactions appear
        for secret in B_SECRETS:
            assert secret not in body, (url, secret)
        assert f"#{t['top_up']}" not in body, url
        assert t["b_key"].prefix not in body, url


def test_choosing_bs_id_as_the_working_merchant_gives_nothing(two_merchants):
    # given A's owner whose session names B as the merchant they work for
    t = two_merchants
    client = _owner_client(t["a"])
    session = client.session
    session["merchant_id"] = t["b"].pk
    session.save()

    # when they open B-only pages, then they still see A
    body = client.get("/dashboard/keys/").content.decode()
    assert "A till" in body and "B's secret till" not in body
    assert client.get("/api/v1/me").json()["merchant"]["slug"] == t["a"].slug
    response = client.post("/dashboard/merchant/", {"merchant": t["b"].pk})
    assert client.get("/dashboard/deposit/").context["merchant"] == t["a"]
    assert response.status_code == 302


def test_as_api_key_reads_only_as_merchant(two_merchants):
    # given A's key
    t = two_merchants
    api = Client(HTTP_AUTHORIZATION=f"Api-Key {t['a_raw']}")

    # then the key and deposit endpoints answer for A, with no way to name B
    assert api.get("/api/v1/merchant/key").json()["merchant"] == t["a"].slug
    deposit = api.get("/api/v1/merchant/deposit").json()
    assert deposit["balance_minor"] == 0  # B's deposit holds 60,000
    assert api.get(f"/api/v1/merchant/key?merchant={t['b'].pk}").json()["merchant"] == \
        t["a"].slug


def test_bs_leave_request_is_not_as_to_cancel(two_merchants):
    # given B's pending request to leave, and A's owner cancelling "their" request
    t = two_merchants
    response = _owner_client(t["a"]).post("/dashboard/deposit/leave/cancel/")

    # then A has none, and B's request stands
    assert response.status_code == 404
    assert LeaveRequest.objects.get(pk=t["leave"].pk).status == LeaveRequest.Status.PENDING
