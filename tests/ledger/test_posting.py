"""The posting service: balance, idempotency, lots, holds and reversals, on both engines."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from ledger import services
from ledger.errors import (
    HoldStateError,
    IdempotencyConflict,
    InsufficientBalance,
    LedgerInvariantError,
)
from ledger.models import Account, Hold, Lot, Posting, Transaction
from ledger.services import Leg

pytestmark = pytest.mark.django_db


def test_issue_credits_wallet_and_opens_a_lot(engine, wallet, issuance, fund):
    # when points are issued to a wallet
    posted = fund(wallet, 500)

    # then the wallet holds them, in one lot expiring per the asset's policy
    wallet.refresh_from_db()
    assert wallet.balance == 500
    lot = Lot.objects.get(account=wallet)
    assert lot.remaining == 500
    assert lot.expires_at == wallet.asset.expiry_for(posted.transaction.occurred_at)
    # and the postings balance
    assert sum(Posting.objects.filter(transaction_id=posted.transaction_id)
               .values_list("amount", flat=True)) == 0


def test_same_key_same_request_replays(engine, wallet, issuance, fund):
    first = fund(wallet, 100)
    again = fund(wallet, 100)
    assert again.transaction_id == first.transaction_id
    assert again.replayed and not first.replayed
    wallet.refresh_from_db()
    assert wallet.balance == 100
    assert Transaction.objects.count() == 1


def test_same_key_other_request_conflicts(engine, wallet, issuance, fund):
    fund(wallet, 100)
    with pytest.raises(IdempotencyConflict) as excinfo:
        services.transaction_post(
            kind="issue", legs=[Leg(issuance, -101), Leg(wallet, 101)],
            client="test", idempotency_key=f"fund:{wallet.pk}:100",
        )
    assert excinfo.value.status == 409
    wallet.refresh_from_db()
    assert wallet.balance == 100


def test_overdraft_refused_and_nothing_written(engine, wallet, issuance, fund):
    fund(wallet, 10)
    with pytest.raises(InsufficientBalance) as excinfo:
        services.transaction_post(
            kind="spend", legs=[Leg(wallet, -11), Leg(issuance, 11)],
            client="test", idempotency_key="overdraft",
        )
    assert excinfo.value.details["account"] == wallet.public_id
    wallet.refresh_from_db()
    assert wallet.balance == 10
    assert not Transaction.objects.filter(idempotency_key="overdraft").exists()


@pytest.mark.parametrize("amounts", [(-5, 4), (5, 5), (0, 0)])
def test_unbalanced_or_zero_legs_refused(engine, wallet, issuance, amounts):
    with pytest.raises(LedgerInvariantError):
        services.transaction_post(
            kind="bad", legs=[Leg(issuance, amounts[0]), Leg(wallet, amounts[1])],
            client="test", idempotency_key="bad",
        )
    assert Transaction.objects.count() == 0


def test_float_amount_refused(engine, wallet, issuance):
    with pytest.raises(LedgerInvariantError):
        services.transaction_post(
            kind="bad", legs=[Leg(issuance, -1.5), Leg(wallet, 1.5)],
            client="test", idempotency_key="float",
        )


def test_share_value_cannot_move_between_holders(engine, shopper):
    sv = services.alliance_asset("SV")
    other = services.account_get_or_create(
        asset=sv, kind=Account.Kind.WALLET, user=type(shopper).objects.create_user(
            email="other@example.com", password="x-y-z-123"))
    mine = services.account_get_or_create(asset=sv, kind=Account.Kind.WALLET, user=shopper)
    services.transaction_post(kind="accrue", legs=[Leg(services.issuance_account(sv), -100),
                                                    Leg(mine, 100)],
                              client="test", idempotency_key="sv")
    with pytest.raises(LedgerInvariantError):
        services.transaction_post(kind="transfer", legs=[Leg(mine, -50), Leg(other, 50)],
                                  client="test", idempotency_key="sv-move")


def test_debits_consume_soonest_expiring_lots_first(engine, wallet, issuance):
    now = timezone.now()
    soon, late = now + timedelta(days=10), now + timedelta(days=300)
    for key, amount, expiry in (("late", 70, late), ("soon", 50, soon)):
        services.transaction_post(
            kind="issue", legs=[Leg(issuance, -amount), Leg(wallet, amount, expires_at=expiry)],
            client="test", idempotency_key=key,
        )
    # when 60 are spent
    services.transaction_post(kind="spend", legs=[Leg(wallet, -60), Leg(issuance, 60)],
                              client="test", idempotency_key="spend")
    # then the soon lot is gone and 10 came out of the late one
    lots = dict(Lot.objects.filter(account=wallet).values_list("expires_at", "remaining"))
    assert lots == {soon: 0, late: 60}


def test_hold_capture_part_returns_the_rest_with_its_expiry(engine, wallet, issuance):
    now = timezone.now()
    soon, late = now + timedelta(days=10), now + timedelta(days=300)
    for key, amount, expiry in (("a", 30, soon), ("b", 70, late)):
        services.transaction_post(
            kind="issue", legs=[Leg(issuance, -amount), Leg(wallet, amount, expires_at=expiry)],
            client="test", idempotency_key=key,
        )
    hold = services.hold_place(wallet=wallet, amount=60, client="pos", idempotency_key="h")
    wallet.refresh_from_db()
    assert wallet.balance == 40

    # when 20 of the 60 are captured
    hold = services.hold_capture(hold_id=hold.pk, destination=issuance, amount=20,
                                 client="pos", idempotency_key="c")

    # then 40 come back; the captured 20 were the soonest-expiring
    wallet.refresh_from_db()
    assert (hold.state, hold.captured, wallet.balance) == ("captured", 20, 80)
    lots = dict(Lot.objects.filter(account=wallet).values_list("expires_at", "remaining"))
    assert lots == {soon: 10, late: 70}
    # and a second capture is refused, a replay of the first is not
    assert services.hold_capture(hold_id=hold.pk, destination=issuance, amount=20,
                                 client="pos", idempotency_key="c").pk == hold.pk
    with pytest.raises(HoldStateError):
        services.hold_void(hold_id=hold.pk, client="pos", idempotency_key="v")


def test_expired_hold_gives_everything_back(engine, wallet, issuance, fund):
    fund(wallet, 100)
    hold = services.hold_place(wallet=wallet, amount=100, client="pos", idempotency_key="h",
                               ttl=timedelta(minutes=15))
    assert services.holds_expire(now=timezone.now()) == 0
    assert services.holds_expire(now=timezone.now() + timedelta(minutes=16)) == 1
    hold.refresh_from_db()
    wallet.refresh_from_db()
    assert hold.state == Hold.State.EXPIRED
    assert wallet.balance == 100
    assert sum(Lot.objects.filter(account=wallet).values_list("remaining", flat=True)) == 100


def test_reversal_mirrors_and_happens_once(engine, wallet, issuance, fund):
    posted = fund(wallet, 100)
    first = services.transaction_reverse(transaction=posted.transaction, reason="mistake")
    second = services.transaction_reverse(transaction=posted.transaction, reason="mistake")
    assert second.transaction_id == first.transaction_id
    wallet.refresh_from_db()
    assert wallet.balance == 0
    assert sorted(Posting.objects.filter(transaction_id=first.transaction_id)
                  .values_list("amount", flat=True)) == [-100, 100]


def test_event_record_has_no_postings(engine):
    posted = services.event_record(kind="event.application.approved",
                                   metadata={"application": 1}, client="system",
                                   idempotency_key="e1")
    assert not Posting.objects.filter(transaction_id=posted.transaction_id).exists()
    with pytest.raises(LedgerInvariantError):
        services.event_record(kind="purchase", metadata={}, client="system",
                              idempotency_key="e2")


def test_journal_refuses_update_and_delete(wallet, fund):
    fund(wallet, 100)
    for statement in ("UPDATE ledger_posting SET amount = amount + 1",
                      "DELETE FROM ledger_posting",
                      "UPDATE ledger_transaction SET kind = 'forged'",
                      "DELETE FROM ledger_transaction"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)


def test_balance_check_constraint(wallet):
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=wallet.pk).update(balance=-1)


def test_floor_keeps_a_minimum_after_the_debit(engine, wallet, issuance, fund):
    # given a balance of 100 that must not fall below 60
    fund(wallet, 100)
    # when 40 are taken, the floor holds; 1 more is refused, naming the account
    services.transaction_post(kind="spend", legs=[Leg(wallet, -40, floor=60), Leg(issuance, 40)],
                              client="test", idempotency_key="f1")
    with pytest.raises(InsufficientBalance):
        services.transaction_post(kind="spend",
                                  legs=[Leg(wallet, -1, floor=60), Leg(issuance, 1)],
                                  client="test", idempotency_key="f2")
    wallet.refresh_from_db()
    assert wallet.balance == 60
