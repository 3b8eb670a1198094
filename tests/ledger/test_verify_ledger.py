"""verify_ledger: silent on a clean ledger, names the transaction an attacker changed."""

import pytest
from django.core.management import call_command
from django.db import connection

from ledger import services
from ledger.models import Posting
from ledger.services import Leg

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ledger_with_history(wallet, issuance, fund):
    fund(wallet, 1000)
    services.transaction_post(kind="spend", legs=[Leg(wallet, -300), Leg(issuance, 300)],
                              client="test", idempotency_key="spend")
    hold = services.hold_place(wallet=wallet, amount=200, client="pos", idempotency_key="h")
    services.hold_capture(hold_id=hold.pk, destination=issuance, amount=50, client="pos",
                          idempotency_key="c")
    return wallet


def _run(capsys) -> tuple[int, str]:
    try:
        call_command("verify_ledger")
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().out


def test_clean_ledger_passes(ledger_with_history, capsys):
    code, out = _run(capsys)
    assert code == 0, out
    assert "consistent" in out


def test_changed_posting_amount_is_named(ledger_with_history, capsys):
    # given an attacker with database access who disables the triggers first
    target = Posting.objects.filter(account=ledger_with_history, amount=-300).get()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_posting DISABLE TRIGGER USER")
        try:
            cursor.execute("UPDATE ledger_posting SET amount = -30 WHERE id = %s", [target.pk])
        finally:
            cursor.execute("ALTER TABLE ledger_posting ENABLE TRIGGER USER")

    # when the auditor runs verify_ledger
    code, out = _run(capsys)

    # then it fails and names the transaction and the account
    assert code != 0
    assert f"transaction {target.transaction_id}" in out
    assert ledger_with_history.public_id in out


def test_changed_balance_is_named(ledger_with_history, capsys):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_account SET balance = balance + 1 WHERE id = %s",
                       [ledger_with_history.pk])
    code, out = _run(capsys)
    assert code != 0
    assert ledger_with_history.public_id in out
    assert "stored balance" in out


def test_changed_lot_is_named(ledger_with_history, capsys):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_lot SET remaining = remaining + 5 WHERE account_id = %s",
                       [ledger_with_history.pk])
    code, out = _run(capsys)
    assert code != 0
    assert "lots" in out and ledger_with_history.public_id in out


def test_a_posting_moved_to_a_missing_account_is_named(ledger_with_history, capsys):
    # given an attacker who points a leg at an account that does not exist (the journal's
    # foreign keys are checked at commit by a trigger, which they disable)
    target = Posting.objects.filter(account=ledger_with_history, amount=-300).get()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_posting DISABLE TRIGGER USER")
        try:
            cursor.execute("UPDATE ledger_posting SET account_id = 987654321 WHERE id = %s",
                           [target.pk])
        finally:
            cursor.execute("ALTER TABLE ledger_posting ENABLE TRIGGER USER")

    code, out = _run(capsys)

    assert code != 0
    assert f"leg {target.leg} names no account" in out
    assert f"transaction {target.transaction_id}" in out


def test_a_deleted_lot_is_named(ledger_with_history, capsys):
    # given an attacker who deletes the wallet's lots, leaving its balance
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_lot WHERE account_id = %s", [ledger_with_history.pk])

    code, out = _run(capsys)

    # then the lots the journal says the wallet holds are missing, and its balance is unbacked
    assert code != 0
    assert "holds 0, the journal says 650" in out
    assert f"lots sum to 0, balance is 650 (account {ledger_with_history.public_id})" in out


def test_a_lot_on_an_account_that_tracks_none_is_named(ledger_with_history, issuance, capsys):
    # given a lot slipped onto the brand's issuance account, which keeps no lots
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ledger_lot (account_id, expires_at, remaining) "
                       "VALUES (%s, now() + interval '1 year', 7)", [issuance.pk])

    code, out = _run(capsys)

    # then the lot is named with the last transaction of that account, and the wallet is clean
    assert code != 0
    assert "holds 7, the journal says 0" in out
    assert "lots sum to 7, balance is 0" in out
    assert ledger_with_history.public_id not in out


def test_replayed_lots_of_an_account_the_stored_side_missed_are_still_compared(
        ledger_with_history, monkeypatch):
    # given the stored side read without the wallet (its lot flag changed between the reads)
    from ledger import verification

    monkeypatch.setattr(verification, "_stored_lots", lambda: iter(()))

    # then the wallet's replayed lots are compared with none
    problems = [str(p) for p in verification.check_lots()]
    assert any("holds 0, the journal says 650" in p for p in problems), problems
