"""The ledger in the admin is read-only: superusers may look, nobody may add, change or
delete; witness keys are approved through the service."""

import pytest
from django.test import Client

from ledger import log_services, note
from ledger.models import Transaction, WitnessKey
from tests.factories import UserFactory

from . import log_helpers

pytestmark = pytest.mark.django_db
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures


@pytest.fixture
def admin_client(kit, log_key) -> Client:
    kit.issue(10)
    log_services.log_anchor()
    client = Client()
    client.force_login(UserFactory(is_superuser=True, is_staff=True),
                       backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.mark.parametrize("model", ["transaction", "posting", "lot", "hold", "account", "asset",
                                   "logleaf", "checkpoint", "witnesskey"])
def test_journal_and_log_pages_are_view_only(admin_client, model):
    assert admin_client.get(f"/admin/ledger/{model}/").status_code == 200
    assert admin_client.get(f"/admin/ledger/{model}/add/").status_code == 403


def test_a_transaction_can_be_seen_but_not_changed_or_deleted(admin_client):
    pk = Transaction.objects.first().pk
    page = admin_client.get(f"/admin/ledger/transaction/{pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert admin_client.post(f"/admin/ledger/transaction/{pk}/delete/").status_code == 403
    assert Transaction.objects.filter(pk=pk).exists()


def test_staff_approve_a_witness_key_from_the_admin(admin_client):
    vkey = note.generate_signer("w.example/admin", note.ALG_COSIGNATURE_V1)[1]
    key = log_services.witness_key_register(vkey=vkey, user=UserFactory())
    admin_client.post("/admin/ledger/witnesskey/", {
        "action": "approve", "_selected_action": [key.pk],
    })
    key.refresh_from_db()
    assert key.status == WitnessKey.Status.APPROVED
