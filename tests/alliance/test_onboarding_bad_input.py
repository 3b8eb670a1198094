"""Bad input on the onboarding path: each a clear error, nothing changed.

An oversized or disguised upload, a duplicate licence number, approving twice, a revoked or
wrong-scope API key, a top-up beyond the wallet."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from alliance.models import MerchantApplication
from alliance.services import (
    ApplicationState,
    LicenceTaken,
    application_approve,
    application_save,
)
from alliance.uploads import LICENCE_MAX_BYTES
from ledger.errors import InsufficientBalance
from ledger.models import Asset, Transaction
from merchants.models import Merchant
from merchants.services import api_key_create, api_key_revoke, deposit_top_up, shared_allocate
from tests.alliance.test_onboarding_flow import application_post
from tests.factories import DistrictFactory, UserFactory
from tests.merchants.helpers import (
    JPEG,
    PDF,
    PNG,
    STORE,
    _private_media,
    active_merchant,
    application_fields,
    licence_png,
    owner_of,
    shared_balance,
    submitted_application,
    verified_user,
)

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def _client(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("licence.png", PNG[:16] + b"\x00" * (LICENCE_MAX_BYTES + 1), "the limit is 5"),
        ("licence.png", b"<html><script>alert(1)</script></html>", "not a JPEG, PNG, PDF"),
        ("licence.png", b"MZ\x90\x00" + b"\x00" * 64, "not a JPEG, PNG, PDF"),
        ("licence.png", JPEG, "content is image/jpeg but its name ends in"),
        ("licence.jpg", PDF, "content is application/pdf"),
        ("licence.exe", PNG, "content is image/png"),
        ("licence.png", b"", "empty"),
    ],
    ids=["oversized", "html-as-png", "exe-as-png", "jpeg-named-png", "pdf-named-jpg",
         "png-named-exe", "empty"],
)
def test_a_bad_licence_upload_is_a_form_error_and_nothing_is_saved(name, data, message):
    # given a signed-in applicant
    client = _client(verified_user())

    # when they send the application with a bad file
    response = client.post("/dashboard/apply/new/", {
        **application_post(DistrictFactory()),
        "licence_image": SimpleUploadedFile(name, data, content_type="image/png"),
        "submit": "1",
    })

    # then the form says what is wrong with the file, and no application exists
    assert response.status_code == 400
    errors = response.context["form"].errors["licence_image"]
    assert any(message in error for error in errors), errors
    assert not MerchantApplication.objects.exists()


@pytest.mark.parametrize(("name", "data"), [("l.png", PNG), ("l.JPEG", JPEG), ("l.pdf", PDF)])
def test_the_accepted_kinds_of_licence_upload(name, data):
    response = _client(verified_user()).post("/dashboard/apply/new/", {
        **application_post(DistrictFactory()), "licence_image": SimpleUploadedFile(name, data),
    })
    assert response.status_code == 302
    assert MerchantApplication.objects.get().licence_image.name.endswith(
        {"l.png": ".png", "l.JPEG": ".jpg", "l.pdf": ".pdf"}[name])


def test_a_duplicate_licence_number_is_refused_on_the_form():
    # given a member with a licence number, and an application in review with another
    active_merchant(code="MEMBER")  # licence LIC-MEMBER
    submitted_application(licence_number="LIC-INREVIEW", asset_code="REVIEW")
    client = _client(verified_user())

    for number in ("lic-member", "LIC-INREVIEW"):
        # when another applicant uses one of them
        response = client.post("/dashboard/apply/new/", {
            **application_post(DistrictFactory(), licence_number=number),
            "licence_image": licence_png(), "submit": "1",
        })

        # then the licence field says it is taken, and nothing new is stored
        assert response.status_code == 400
        assert "already registered" in " ".join(response.context["form"].errors["licence_number"])
    assert MerchantApplication.objects.count() == 1


def test_a_duplicate_point_code_is_refused_at_submission():
    active_merchant(code="TAKEN")
    client = _client(verified_user())
    response = client.post("/dashboard/apply/new/", {
        **application_post(DistrictFactory(), asset_code="taken"),
        "licence_image": licence_png(), "submit": "1",
    })
    assert response.status_code == 400
    assert "already used" in " ".join(response.context["form"].errors["asset_code"])
    assert not MerchantApplication.objects.filter(status="submitted").exists()


def test_approving_twice_is_refused_and_creates_one_merchant(django_capture_on_commit_callbacks):
    # given an approved application
    application = submitted_application()
    staff = UserFactory(is_alliance_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        application_approve(application=application, by=staff)
    events = Transaction.objects.filter(kind="event.application.approved").count()

    # when it is approved again, by service and by page
    with pytest.raises(ApplicationState):
        application_approve(application=application, by=staff)
    response = _client(staff).post(f"/console/applications/{application.pk}/approve/",
                                   follow=True)

    # then the page says it was already decided, and there is still one merchant
    assert "already decided" in response.content.decode()
    assert Merchant.objects.count() == 1
    assert Asset.objects.filter(family="brand").count() == 1
    assert Transaction.objects.filter(kind="event.application.approved").count() == events


def test_a_licence_taken_between_submission_and_approval_is_refused_at_approval():
    # given a submitted application whose licence number a merchant took meanwhile
    application = submitted_application(licence_number="LIC-RACE")
    Merchant.objects.filter(pk=active_merchant(code="RACER").pk).update(
        licence_number="LIC-RACE")

    # then approving it is refused and nothing is created
    with pytest.raises(LicenceTaken):
        application_approve(application=application, by=UserFactory(is_alliance_staff=True))
    assert not Asset.objects.filter(code="BREAD").exists()
    application.refresh_from_db()
    assert application.status == MerchantApplication.Status.SUBMITTED


def test_a_draft_cannot_be_edited_by_another_user_or_after_submission():
    applicant = verified_user()
    application = submitted_application(applicant=applicant)
    with pytest.raises(ApplicationState):
        application_save(applicant=applicant, application=application,
                         fields=application_fields(licence_number="NEW"), stores=[STORE])
    response = _client(applicant).post(f"/dashboard/apply/{application.pk}/",
                                       application_post(DistrictFactory()), follow=True)
    assert "can no longer be edited" in response.content.decode()
    application.refresh_from_db()
    assert application.licence_number == "91310000MA1K000001"


def test_revoked_and_wrong_scope_keys_are_refused_by_the_api():
    merchant = active_merchant()
    revoked, revoked_raw = api_key_create(merchant=merchant, name="Old", scopes=["purchases"])
    api_key_revoke(api_key=revoked)
    _, vouchers_raw = api_key_create(merchant=merchant, name="Scanner", scopes=["vouchers"])

    response = Client(HTTP_AUTHORIZATION=f"Api-Key {revoked_raw}").get("/api/v1/merchant/deposit")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"

    response = Client(HTTP_AUTHORIZATION=f"Api-Key {vouchers_raw}").get(
        "/api/v1/merchant/deposit")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"

    response = Client(HTTP_AUTHORIZATION="Api-Key apk_0123456789_" + "a" * 48).get(
        "/api/v1/merchant/key")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_top_up_beyond_the_wallet_is_refused_and_moves_nothing():
    # given a merchant with 100 SHARED in its wallet
    merchant = active_merchant()
    shared_allocate(merchant=merchant, amount=10_000, idempotency_key="alloc")
    client = _client(owner_of(merchant))

    # when the owner tries to move 100.01 SHARED
    response = client.post("/dashboard/deposit/", {"amount": "100.01", "idempotency_key": "k"})

    # then the form says how much the wallet holds
    assert response.status_code == 400
    assert "holds 100.00; you asked to move 100.01" in response.context["form"].errors[
        "amount"][0]

    # and zero, negative, over-precise and non-numeric amounts are form errors too
    for amount in ("0", "-5", "1.001", "abc"):
        response = client.post("/dashboard/deposit/", {"amount": amount,
                                                       "idempotency_key": f"k-{amount}"})
        assert response.status_code == 400, amount
        assert response.context["form"].errors["amount"], amount

    # and nothing moved
    assert (shared_balance(merchant, "wallet"), shared_balance(merchant, "deposit")) == (
        10_000, 0)
    assert not Transaction.objects.filter(kind="deposit_top_up").exists()

    # and the service says the same in the API's terms
    with pytest.raises(InsufficientBalance) as refused:
        deposit_top_up(merchant=merchant, amount=10_001, idempotency_key="svc")
    assert refused.value.code == "insufficient_balance" and refused.value.status == 409
    assert refused.value.details["available"] == 10_000


def test_a_draft_that_cannot_be_sent_yet_is_kept_once_and_the_form_posts_to_it():
    # given an application without a licence image, sent
    client = _client(verified_user())
    response = client.post("/dashboard/apply/new/", {**application_post(DistrictFactory()),
                                                     "submit": "1"})

    # then it is saved as a draft, the form says what is missing, and posts to the draft
    assert response.status_code == 400
    draft = MerchantApplication.objects.get()
    assert draft.status == MerchantApplication.Status.DRAFT
    assert "licence_image" in " ".join(response.context["form"].non_field_errors())
    assert f'action="/dashboard/apply/{draft.pk}/"' in response.content.decode()

    # and sending again with the image submits that same application
    response = client.post(f"/dashboard/apply/{draft.pk}/", {
        **application_post(DistrictFactory()), "licence_image": licence_png(), "submit": "1"})
    assert response.status_code == 302
    assert MerchantApplication.objects.get().status == MerchantApplication.Status.SUBMITTED
