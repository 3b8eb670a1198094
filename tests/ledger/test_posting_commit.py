"""What PostgreSQL itself refuses at commit, whatever the application does."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from ledger.models import Transaction

pytestmark = pytest.mark.django_db(transaction=True)


def test_unbalanced_transaction_fails_at_commit(wallet, issuance):
    # given postings written around the service, one leg short
    with pytest.raises(DatabaseError, match="does not balance"):
        with transaction.atomic():
            txn = Transaction.objects.create(
                kind="forged", client="attacker", idempotency_key="x", fingerprint="0" * 64,
                occurred_at=timezone.now(), created_at=timezone.now(),
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount)"
                    " VALUES (%s, 0, %s, %s, 100), (%s, 1, %s, %s, -99)",
                    [txn.pk, wallet.pk, wallet.asset_id, txn.pk, issuance.pk, issuance.asset_id],
                )
        # the deferred trigger fires here, at COMMIT
    assert not Transaction.objects.filter(kind="forged").exists()



def test_a_leg_naming_another_asset_than_its_account_fails_at_commit(wallet, issuance):
    # given postings that balance per asset, but legs 2 and 3 name the SV asset for the
    # brand's issuance and wallet
    from ledger import services

    sv = services.alliance_asset("SV")
    with pytest.raises(DatabaseError, match=r"posting \d+\.2 names another asset"):
        with transaction.atomic():
            txn = Transaction.objects.create(
                kind="forged", client="attacker", idempotency_key="y", fingerprint="0" * 64,
                occurred_at=timezone.now(), created_at=timezone.now(),
            )
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount)"
                    " VALUES (%s, 0, %s, %s, -100), (%s, 1, %s, %s, 100),"
                    " (%s, 2, %s, %s, 7), (%s, 3, %s, %s, -7)",
                    [txn.pk, issuance.pk, issuance.asset_id, txn.pk, wallet.pk, wallet.asset_id,
                     txn.pk, issuance.pk, sv.pk, txn.pk, wallet.pk, sv.pk],
                )
    assert not Transaction.objects.filter(kind="forged").exists()
