"""What PostgreSQL itself refuses at commit, whatever the application does."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from ledger.models import Transaction

pytestmark = pytest.mark.django_db(transaction=True)


def _forged(key: str) -> Transaction:
    """A journal row written around the service, as an attacker with database access would."""
    return Transaction.objects.create(
        kind="forged", client="attacker", idempotency_key=key, fingerprint="0" * 64,
        occurred_at=timezone.now(), created_at=timezone.now(),
    )


def _insert(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, "
                       "amount) VALUES " + sql, params)


def test_unbalanced_transaction_fails_at_commit(wallet, issuance):
    # given postings written around the service, one leg short
    with pytest.raises(DatabaseError, match="does not balance"):
        with transaction.atomic():
            txn = _forged("x")
            _insert("(%s, 0, %s, %s, 100), (%s, 1, %s, %s, -99)",
                    [txn.pk, wallet.pk, wallet.asset_id, txn.pk, issuance.pk, issuance.asset_id])
        # the deferred trigger fires here, at COMMIT
    assert not Transaction.objects.filter(kind="forged").exists()


def test_a_leg_naming_another_asset_than_its_account_fails_at_commit(wallet, issuance):
    # given postings that balance per asset, but legs 2 and 3 name the SV asset for the
    # brand's issuance and wallet
    from ledger import services

    sv = services.alliance_asset("SV")
    with pytest.raises(DatabaseError, match=r"posting \d+\.2 names another asset"):
        with transaction.atomic():
            txn = _forged("y")
            _insert("(%s, 0, %s, %s, -100), (%s, 1, %s, %s, 100), (%s, 2, %s, %s, 7), "
                    "(%s, 3, %s, %s, -7)",
                    [txn.pk, issuance.pk, issuance.asset_id, txn.pk, wallet.pk, wallet.asset_id,
                     txn.pk, issuance.pk, sv.pk, txn.pk, wallet.pk, sv.pk])
    assert not Transaction.objects.filter(kind="forged").exists()


def test_a_leg_added_to_a_posted_transaction_is_refused_at_once(wallet, issuance, fund):
    # given a posted transaction (legs 0 and 1)
    posted = fund(wallet, 10)
    # when someone adds a balanced pair of legs to it afterwards
    with pytest.raises(DatabaseError, match="without its leg 0"):
        with transaction.atomic():
            _insert("(%s, 2, %s, %s, 5), (%s, 3, %s, %s, -5)",
                    [posted.transaction_id, wallet.pk, wallet.asset_id,
                     posted.transaction_id, issuance.pk, issuance.asset_id])
    # then the statement itself is refused: no leg can join a transaction after its leg 0
    assert Transaction.objects.get(pk=posted.transaction_id).postings.count() == 2


@pytest.mark.parametrize("missing", ["account", "transaction"])
def test_a_posting_naming_a_missing_row_fails_at_commit(wallet, issuance, missing):
    with pytest.raises(DatabaseError, match=r"names? no " + missing):
        with transaction.atomic():
            txn = _forged("z")
            txn_id = txn.pk if missing == "account" else txn.pk + 1000
            account = 987654321 if missing == "account" else wallet.pk
            _insert("(%s, 0, %s, %s, 100), (%s, 1, %s, %s, -100)",
                    [txn_id, account, wallet.asset_id, txn_id, issuance.pk, issuance.asset_id])
    assert not Transaction.objects.filter(kind="forged").exists()
