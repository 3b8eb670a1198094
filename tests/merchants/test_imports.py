"""Bringing existing members along: the CSV dry run, the import, and the claims."""

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone, translation

from alliance.models import User
from ledger.models import Account, Lot, Transaction
from ledger.services import account_get_or_create
from merchants.imports import (
    CLAIMS_KIND,
    DuplicateImport,
    brand_asset,
    claims_collect,
    claims_expire,
    member_import_check,
    member_import_run,
    member_import_start,
)
from merchants.models import MemberImport, PendingClaim
from tests.merchants.helpers import _private_media, active_merchant, verified_user

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


@pytest.fixture(autouse=True)
def _english():
    """The checks below read the English messages; the alliance's default language is
    Chinese, so they must not depend on a test before them having switched it."""
    with translation.override("en"):
        yield

PASSWORD = "a-long-pass-phrase-2026"


def _csv(text: str, name: str = "members.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def _wallet(user: User, asset) -> int:
    return account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=user).balance


def _claims(asset) -> Account:
    return account_get_or_create(asset=asset, kind=CLAIMS_KIND, merchant=asset.issuer)


def _nothing_written(merchant) -> None:
    assert not PendingClaim.objects.exists()
    assert not Transaction.objects.filter(kind="member_import").exists()
    assert _claims(brand_asset(merchant)).balance == 0


def _import(merchant, text: str, *, capture, batch_rows: int | None = None):
    member_import, report = member_import_check(merchant=merchant, upload=_csv(text))
    assert report.ok, report.errors
    with capture(execute=True):
        member_import_start(member_import=member_import)
    if batch_rows is not None:  # the task ran already with the default batch size
        return member_import
    member_import.refresh_from_db()
    return member_import


def test_a_file_with_bad_rows_is_refused_whole_with_each_bad_row_named():
    # given a merchant and a file with one problem per row, and two good rows
    merchant = active_merchant()
    text = (
        "phone,balance,expiry\n"
        "13800000001,1200,\n"  # row 2: good
        "13800000002,12x0,\n"  # row 3: unparseable balance
        "13800000001,50,\n"  # row 4: duplicate member (row 2)
        "13800000003,-40,\n"  # row 5: negative
        "12345,10,\n"  # row 6: not a phone number
        "13800000004,10,2020-01-01\n"  # row 7: expiry in the past
        "13800000005,10,,surplus\n"  # row 8: a value in an unknown column
        "13800000006,300,2099-12-31\n"  # row 9: good
    )

    # when the owner runs the dry run
    member_import, report = member_import_check(merchant=merchant, upload=_csv(text))

    # then every bad row is named with its column, and nothing is written
    assert not report.ok
    found = {(e.row, e.column) for e in report.errors}
    assert found == {(3, "balance"), (4, "phone"), (5, "balance"), (6, "phone"),
                     (7, "expiry"), (8, "")}
    messages = {e.row: e.message for e in report.errors}
    assert "not a number" in messages[3]
    assert "row 2" in messages[4]
    assert "negative" in messages[5]
    assert "unknown column" in messages[8]
    assert member_import.status == MemberImport.Status.FAILED and not member_import.file
    _nothing_written(merchant)


def test_an_unknown_header_column_refuses_the_file_at_the_header():
    merchant = active_merchant()
    _member_import, report = member_import_check(
        merchant=merchant, upload=_csv("phone,balance,tier\n13800000001,10,gold\n"))
    assert [(e.row, e.column) for e in report.errors] == [(1, "tier")]
    assert "Unknown column" in report.errors[0].message
    _nothing_written(merchant)


@pytest.mark.parametrize(
    "text",
    ["", "phone,expiry\n13800000001,\n", "balance\n10\n", "phone,balance\n",
     "email,balance\nnot-an-email,10\n", "email,balance\na@b.example.com,0\n",
     "phone,balance\n13800000001,1.5\n"],
    ids=["empty", "no-balance-column", "no-identifier-column", "no-rows", "bad-email",
         "zero", "fraction-of-a-point"],
)
def test_other_bad_files_are_refused_in_the_dry_run(text):
    merchant = active_merchant()
    _member_import, report = member_import_check(merchant=merchant, upload=_csv(text))
    assert not report.ok and report.errors
    _nothing_written(merchant)


def test_a_good_import_is_one_ledger_transaction_per_batch_recording_the_files_hash(
    django_capture_on_commit_callbacks,
):
    # given a file of five members, imported in batches of two
    merchant = active_merchant(code="BREAD", units=10)
    asset = brand_asset(merchant)
    text = "phone,email,balance,expiry\n" + "".join(
        f"1380000000{i},,{i * 100},\n" for i in range(1, 5)
    ) + ",li@example.com,50,2099-06-30\n"
    member_import, report = member_import_check(merchant=merchant, upload=_csv(text))
    assert report.ok and report.row_count == 5 and report.total == 1050
    MemberImport.objects.filter(pk=member_import.pk).update(status=MemberImport.Status.RUNNING)

    # when it runs
    member_import = member_import_run(member_import_id=member_import.pk, batch_rows=2)

    # then three transactions moved 1,050 points from the issuance into pending claims,
    # each carrying the file's SHA-256
    assert member_import.status == MemberImport.Status.COMMITTED
    batches = list(Transaction.objects.filter(kind="member_import").order_by("pk"))
    assert [t.metadata["rows"] for t in batches] == [2, 2, 1]
    assert {t.metadata["file_sha256"] for t in batches} == {report.sha256}
    assert member_import.transaction_ids == [t.pk for t in batches]
    assert _claims(asset).balance == 1050
    assert PendingClaim.objects.filter(status="pending").count() == 5
    assert PendingClaim.objects.get(email="li@example.com").expires_at is not None

    # and running it again changes nothing
    member_import_run(member_import_id=member_import.pk, batch_rows=2)
    assert Transaction.objects.filter(kind="member_import").count() == 3


def test_importing_the_same_file_twice_is_refused(django_capture_on_commit_callbacks):
    # given a file already imported
    merchant = active_merchant()
    text = "phone,balance\n13800000001,100\n"
    first = _import(merchant, text, capture=django_capture_on_commit_callbacks)
    assert first.status == MemberImport.Status.COMMITTED

    # when the same bytes are uploaded again
    with pytest.raises(DuplicateImport):
        member_import_check(merchant=merchant, upload=_csv(text, name="again.csv"))

    # then nothing more was written
    assert PendingClaim.objects.count() == 1
    assert Transaction.objects.filter(kind="member_import").count() == 1


def test_two_checked_copies_of_one_file_import_once(django_capture_on_commit_callbacks):
    # given the same file checked twice before either was imported
    merchant = active_merchant()
    text = "phone,balance\n13800000001,100\n"
    first, _ = member_import_check(merchant=merchant, upload=_csv(text))
    second, _ = member_import_check(merchant=merchant, upload=_csv(text))

    # when both are started
    with django_capture_on_commit_callbacks(execute=True):
        member_import_start(member_import=first)
    with pytest.raises(DuplicateImport):
        member_import_start(member_import=second)

    # then the members were credited once
    assert PendingClaim.objects.count() == 1


def test_a_good_import_is_claimed_on_sign_up_with_the_same_verified_phone(
    client: Client, sms_outbox, django_capture_on_commit_callbacks,
):
    # given an import naming a phone number, with an expiry, and another for someone else
    merchant = active_merchant(code="BREAD", units=10)
    asset = brand_asset(merchant)
    _import(merchant, "phone,balance,expiry\n13800138055,1200,2099-06-30\n13800138056,7,\n",
            capture=django_capture_on_commit_callbacks)

    # when a shopper signs up with that number and types the SMS code
    client.post("/accounts/signup/", {"phone": "138 0013 8055", "password1": PASSWORD,
                                      "password2": PASSWORD})
    user = User.objects.get(phone="+8613800138055")
    assert _wallet(user, asset) == 0  # not verified yet: nothing claimed
    code = re.search(r"[A-Z0-9]{3,}(?:-[A-Z0-9]{3,})?", sms_outbox[0][1]).group(0)
    client.post("/accounts/phone/verify/", {"code": code})

    # then the 1,200 points are in their wallet, with the file's expiry, and the claim is done
    user.refresh_from_db()
    assert user.phone_verified
    assert _wallet(user, asset) == 1200
    wallet = account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=user)
    lot = Lot.objects.get(account=wallet)
    assert timezone.localtime(lot.expires_at).date().isoformat() == "2099-07-01"
    claim = PendingClaim.objects.get(phone="+8613800138055")
    assert claim.status == PendingClaim.Status.CLAIMED and claim.claimed_by == user
    assert _claims(asset).balance == 7  # the other member's points still wait

    # and signing in again claims nothing twice
    client.logout()
    client.post("/accounts/login/", {"login": "+8613800138055", "password": PASSWORD})
    assert _wallet(user, asset) == 1200
    assert Transaction.objects.filter(kind="import_claim").count() == 1


def test_an_unverified_address_claims_nothing_and_a_verified_one_does(
    django_capture_on_commit_callbacks,
):
    # given an import by email and a user who has that address but not verified
    merchant = active_merchant(expiry_months=None)
    asset = brand_asset(merchant)
    _import(merchant, "email,balance\nWang@Example.com,300\n",
            capture=django_capture_on_commit_callbacks)
    user = verified_user(email="other@example.com", phone=None)
    EmailAddress.objects.create(user=user, email="wang@example.com", verified=False)

    # then nothing is claimed until the address is verified
    assert claims_collect(user=user) == []
    EmailAddress.objects.filter(email="wang@example.com").update(verified=True)
    assert len(claims_collect(user=user)) == 1
    assert _wallet(user, asset) == 300
    assert claims_collect(user=user) == []


def test_unclaimed_balances_past_their_expiry_go_to_breakage(django_capture_on_commit_callbacks):
    # given two waiting claims, one of which expires
    merchant = active_merchant()
    asset = brand_asset(merchant)
    _import(merchant, "phone,balance,expiry\n13800000001,100,2099-01-31\n13800000002,40,\n",
            capture=django_capture_on_commit_callbacks)
    later = timezone.now().replace(year=2099, month=3)

    # when the expiry job runs after the date
    assert claims_expire(now=later) == 1

    # then the 100 points left the pending claims for the merchant's expired account
    assert _claims(asset).balance == 40
    expired = account_get_or_create(asset=asset, kind=Account.Kind.EXPIRED, merchant=merchant)
    assert sum(p.amount for p in expired.postings.all()) == 100
    assert claims_expire(now=later + timedelta(days=1)) == 0
