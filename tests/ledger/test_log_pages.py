"""The explorer's log pages: checkpoints with their witnesses, and checking a receipt on the
server, in both languages, without JavaScript."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from ledger import log_selectors, log_services, note
from ledger.models import Transaction
from tests.factories import UserFactory

from . import log_helpers

pytestmark = pytest.mark.django_db
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures


@pytest.fixture
def receipt(kit, log_key) -> dict:
    for n in range(5):
        kit.issue(n + 1)
    log_services.log_anchor()
    return log_selectors.receipt_get(transaction=Transaction.objects.order_by("pk")[2])


def test_the_checkpoints_page_lists_sizes_roots_signatures_and_witnesses(client, receipt, kit):
    # given a witness that cosigned the checkpoint
    skey, vkey = note.generate_signer("witness.example/w9", note.ALG_COSIGNATURE_V1)
    key = log_services.witness_key_register(vkey=vkey, merchant=kit.merchant)
    log_services.witness_key_approve(witness_key=key, by=UserFactory(is_alliance_staff=True))
    checkpoint = log_selectors.checkpoint_latest()
    line = note.cosign(log_selectors.checkpoint_text(checkpoint), note.Signer.from_key(skey), 1)
    log_services.cosignature_add(checkpoint_size=5, line=line)

    # when a visitor opens the page
    page = client.get("/explorer/checkpoints/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # then the checkpoint, its root, the log's signature and the witness are shown
    assert ">5</a>" in page
    assert receipt["checkpoint"].split("\n")[2] in page
    assert log_helpers.ORIGIN + "+" in page
    assert "witness.example/w9" in page
    assert vkey in page


def test_the_checkpoints_page_in_chinese(client, receipt):
    page = client.get("/explorer/checkpoints/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert page.status_code == 200
    assert "已签名的检查点" in page.content.decode()


def _verify(client, language="en", **data):
    return client.post("/explorer/verify/", data, HTTP_ACCEPT_LANGUAGE=language)


def test_a_pasted_valid_receipt_is_shown_as_valid(client, receipt, kit):
    response = _verify(client, receipt_text=json.dumps(receipt))
    page = response.content.decode()
    assert response.status_code == 200
    assert "The receipt is valid." in page
    assert "The transaction is leaf 2 of the log at tree size 5" in page
    assert kit.wallets[0].public_id in page


def test_an_uploaded_receipt_with_a_changed_byte_is_refused_with_the_reason(client, receipt):
    changed = dict(receipt, index=1)
    upload = SimpleUploadedFile("receipt.json", json.dumps(changed).encode(), "application/json")
    page = _verify(client, receipt_file=upload).content.decode()
    assert "The receipt does not verify." in page
    assert "inclusion proof failed" in page


def test_the_verify_page_speaks_chinese(client, receipt):
    page = _verify(client, "zh-hans", receipt_text=json.dumps(receipt)).content.decode()
    assert "凭证有效。" in page
    assert "该交易是树大小为 5 的日志中的第 2 号叶子" in page
    bad = _verify(client, "zh-hans", receipt_text=json.dumps(dict(receipt, index=1)))
    assert "凭证未通过验证。" in bad.content.decode()


@pytest.mark.parametrize("data", [{}, {"receipt_text": "not json"}, {"receipt_text": "[1]"}])
def test_no_receipt_or_not_json_says_what_is_wrong(client, receipt, data):
    response = _verify(client, **data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "alert-danger" in page


def test_the_pages_carry_no_inline_script(client, receipt):
    for response in (client.get("/explorer/verify/"), client.get("/explorer/checkpoints/"),
                     _verify(client, receipt_text=json.dumps(receipt))):
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.content.decode())
        assert " style=" not in response.content.decode()


def test_the_download_form_sends_a_party_to_the_receipt_file(receipt, kit):
    transaction = Transaction.objects.order_by("pk")[2]
    anonymous = Client().get("/explorer/receipt/", {"transaction": transaction.pk})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]

    client = Client()
    client.force_login(kit.shoppers[0], backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/explorer/receipt/", {"transaction": transaction.pk}, follow=True)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.json()["index"] == 2
    assert client.get("/explorer/receipt/", {"transaction": "x"}).status_code == 400
