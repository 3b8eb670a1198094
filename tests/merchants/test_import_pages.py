"""The member import on the dashboard: the dry-run report, the import with its progress page,
the same file refused twice; a claim when an email address is confirmed."""

import pytest
from allauth.account.models import EmailAddress
from allauth.account.signals import email_confirmed
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ledger.models import Account, Transaction
from ledger.services import account_get_or_create
from merchants.imports import brand_asset
from merchants.models import MemberImport, PendingClaim
from tests.factories import UserFactory
from tests.merchants.helpers import _private_media, active_merchant, owner_of

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]

BAD = "phone,balance,tier\n"
GOOD = "phone,email,balance,expiry\n13800000001,,120,\n,zhou@example.com,80,2099-12-31\n"


def _owner(merchant) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(owner_of(merchant), backend="django.contrib.auth.backends.ModelBackend")
    return client


def _upload(client: Client, text: str, name: str = "members.csv"):
    return client.post("/dashboard/members/import/",
                       {"file": SimpleUploadedFile(name, text.encode(), "text/csv")})


def test_the_dry_run_page_names_every_bad_row_and_imports_nothing():
    merchant = active_merchant()
    client = _owner(merchant)
    response = _upload(client, "phone,balance\n13800000001,ten\n13800000002,-3\n"
                               "13800000001,5\n13800000003,7\n")
    assert response.status_code == 400
    body = response.content.decode()
    assert "The file is refused: 3 problems" in body
    table = body.split('id="bad-rows"')[1]
    for row, text in ((2, "not a number"), (3, "negative"), (4, "Duplicate member")):
        assert f"<td>{row}</td>" in table and text in table
    assert "Import these members" not in body
    assert not PendingClaim.objects.exists()
    assert not Transaction.objects.filter(kind="member_import").exists()


def test_a_good_file_is_imported_once_with_progress_and_claims(
    django_capture_on_commit_callbacks,
):
    # given the owner's good file, checked
    merchant = active_merchant(units=10)
    client = _owner(merchant)
    response = _upload(client, GOOD)
    assert response.status_code == 200
    assert "The file is good: 2 members, 200 points." in response.content.decode()
    member_import = MemberImport.objects.get(status=MemberImport.Status.CHECKED)

    # when they start the import (the task runs after the commit)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/dashboard/members/import/{member_import.pk}/start/")
    assert response.status_code == 302

    # then the detail page shows it imported, with its transaction and waiting claims
    page = client.get(f"/dashboard/members/import/{member_import.pk}/").content.decode()
    member_import.refresh_from_db()
    assert member_import.status == MemberImport.Status.COMMITTED
    assert "Imported" in page and f"#{member_import.transaction_ids[0]}" in page
    assert member_import.sha256 in page
    partial = client.get(f"/dashboard/members/import/{member_import.pk}/",
                         HTTP_HX_REQUEST="true")
    assert 'id="import-progress"' in partial.content.decode()
    assert "<html" not in partial.content.decode()

    # and the same file again is refused on the form, naming the first import's date
    response = _upload(client, GOOD, name="copy.csv")
    assert response.status_code == 400
    assert "already imported" in " ".join(response.context["form"].errors["file"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/dashboard/members/import/{member_import.pk}/start/",
                               follow=True)
    assert "not waiting to start" in response.content.decode()
    assert Transaction.objects.filter(kind="member_import").count() == 1


def test_confirming_an_email_address_claims_its_balance(django_capture_on_commit_callbacks):
    # given an imported member known by email
    merchant = active_merchant(units=10)
    client = _owner(merchant)
    _upload(client, GOOD)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/dashboard/members/import/"
                    f"{MemberImport.objects.get().pk}/start/")
    user = UserFactory(email="zhou@example.com", phone=None)
    address = EmailAddress.objects.create(user=user, email="zhou@example.com", verified=True)

    # when allauth reports the address confirmed
    email_confirmed.send(sender=EmailAddress, request=None, email_address=address)

    # then the 80 points are theirs
    wallet = account_get_or_create(asset=brand_asset(merchant), kind=Account.Kind.WALLET,
                                   user=user)
    assert wallet.balance == 80
    assert PendingClaim.objects.get(email="zhou@example.com").claimed_by == user


def test_an_oversized_or_non_csv_upload_is_refused(monkeypatch):
    merchant = active_merchant()
    client = _owner(merchant)
    response = _upload(client, "\ufeffphone,balance\n13800000001,1\n")  # a BOM is fine
    assert response.status_code == 200
    response = client.post("/dashboard/members/import/",
                           {"file": SimpleUploadedFile("m.csv", b"\xff\xfe\x00garbage")})
    assert response.status_code == 400
    assert "not UTF-8" in response.content.decode()
    monkeypatch.setattr("merchants.forms.MAX_FILE_BYTES", 10)
    response = _upload(client, BAD + "x" * 20)
    assert response.status_code == 400
    assert "larger than" in " ".join(response.context["form"].errors["file"])
