"""Point expiry (SPEC §4.6) and its reminders, on the real PostgreSQL."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.management import call_command

from ledger import services as ledger
from ledger.errors import InsufficientBalance
from ledger.models import Account, Lot, Transaction
from ledger.services import Leg
from points.expiry import ExpiryInFuture, expiry_reminders_send, points_expire_for_date
from points.jobs import day_start
from points.models import JobRun, Notification
from tests.factories import MerchantFactory, UserFactory
from tests.points.jobs_helpers import alliance_assets, ledger_consistent

pytestmark = pytest.mark.django_db

DAY = date(2025, 1, 1)
DUE = day_start(DAY)  # lots expiring at or before this instant expire on DAY
LATER = day_start(date(2026, 1, 1))


@pytest.fixture(autouse=True)
def _assets():
    alliance_assets()


@pytest.fixture
def brand():
    merchant = MerchantFactory()
    return ledger.asset_create_brand(merchant=merchant, code=f"X{merchant.pk}", name_zh="测试积分",
                                     name_en="Test points", units_per_cny=100, expiry_months=12)


def _wallet(brand, user=None):
    return ledger.account_get_or_create(asset=brand, kind=Account.Kind.WALLET,
                                        user=user or UserFactory())


def _credit(brand, wallet, amount, expires_at, key):
    ledger.transaction_post(
        kind="issue", client="test", idempotency_key=key,
        legs=[Leg(ledger.issuance_account(brand), -amount), Leg(wallet, amount, expires_at)])


def _spend(brand, wallet, amount, key):
    ledger.transaction_post(
        kind="spend", client="test", idempotency_key=key,
        legs=[Leg(wallet, -amount), Leg(ledger.issuance_account(brand), amount)])


def _lots(wallet) -> dict:
    return dict(Lot.objects.filter(account=wallet).values_list("expires_at", "remaining"))


def test_partly_spent_lots_expire_exactly_their_remainders_and_a_later_spend_cannot_use_them(
        brand):
    # given a wallet with 100 points due on DAY and 50 due a year later, of which 30 were spent
    # (the spend took the soonest-expiring lot first)
    wallet = _wallet(brand)
    _credit(brand, wallet, 100, DUE, "old")
    _credit(brand, wallet, 50, LATER, "new")
    _spend(brand, wallet, 30, "spent")
    assert _lots(wallet) == {DUE: 70, LATER: 50}

    # when the expiry of DAY runs
    run = points_expire_for_date(day=DAY)

    # then the 70 left of the old lot went to the issuer's expired account, nothing else
    wallet.refresh_from_db()
    assert wallet.balance == 50
    assert _lots(wallet) == {DUE: 0, LATER: 50}
    sink = ledger.sink_account(brand, Account.Kind.EXPIRED)
    assert sum(sink.postings.values_list("amount", flat=True)) == 70
    assert run.counts["accounts"] == 1 and run.counts["lots"] == 1
    assert run.counts[f"expired:{brand.code}"] == 70
    # and a spend of more than the unexpired 50 is refused; 50 uses the new lot only
    with pytest.raises(InsufficientBalance):
        _spend(brand, wallet, 51, "too-much")
    _spend(brand, wallet, 50, "the-rest")
    assert _lots(wallet) == {DUE: 0, LATER: 0}
    assert ledger_consistent() == []


def test_many_wallets_in_chunks_once_per_day_and_holds_are_left_alone(brand):
    # given 7 wallets with due lots of 1..7, one of them also holding a pending hold of a due
    # lot, and a wallet whose points are not due
    wallets = [_wallet(brand) for _ in range(7)]
    for n, wallet in enumerate(wallets, start=1):
        _credit(brand, wallet, n + 10, DUE - timedelta(days=n), f"w{n}")
    ledger.hold_place(wallet=wallets[0], amount=10, client="test", idempotency_key="hold")
    fresh = _wallet(brand)
    _credit(brand, fresh, 99, LATER, "fresh")

    # when the expiry runs with 3 wallets per transaction, then runs again
    run = points_expire_for_date(day=DAY, chunk_accounts=3)
    again = points_expire_for_date(day=DAY, chunk_accounts=3)

    # then each due wallet lost exactly its remainder, in 3 transactions, once
    assert [Account.objects.get(pk=w.pk).balance for w in wallets] == [0] * 7
    assert Account.objects.get(pk=fresh.pk).balance == 99
    assert run.counts["accounts"] == 7 and run.counts["transactions"] == 3
    assert run.counts[f"expired:{brand.code}"] == sum(n + 10 for n in range(1, 8)) - 10
    assert again.attempts == 1
    assert Transaction.objects.filter(kind="expiry").count() == 3
    # and the held 10 stayed in the hold account with its lot
    hold_account = Account.objects.get(asset=brand, kind=Account.Kind.HOLD,
                                       holder_key=wallets[0].holder_key)
    assert hold_account.balance == 10
    assert ledger_consistent() == []


def test_a_voided_hold_brings_its_due_lot_back_and_the_next_day_expires_it(brand):
    # given a hold placed on due points, expiry of DAY, then the hold voided
    wallet = _wallet(brand)
    _credit(brand, wallet, 40, DUE, "due")
    hold = ledger.hold_place(wallet=wallet, amount=40, client="test", idempotency_key="h")
    points_expire_for_date(day=DAY)
    ledger.hold_void(hold_id=hold.pk, client="test", idempotency_key="v")
    assert Account.objects.get(pk=wallet.pk).balance == 40

    # when the next day's expiry runs
    points_expire_for_date(day=DAY + timedelta(days=1))

    # then those points are gone too
    assert Account.objects.get(pk=wallet.pk).balance == 0
    assert ledger_consistent() == []


def test_the_python_path_expires_the_same(brand, settings):
    settings.LEDGER_ENGINE = "python"
    wallet = _wallet(brand)
    _credit(brand, wallet, 100, DUE, "old")
    _credit(brand, wallet, 50, LATER, "new")
    _spend(brand, wallet, 30, "spent")

    run = points_expire_for_date(day=DAY)

    assert Account.objects.get(pk=wallet.pk).balance == 50
    assert _lots(wallet) == {DUE: 0, LATER: 50}
    assert run.counts[f"expired:{brand.code}"] == 70 and run.counts["lots"] == 1
    assert ledger_consistent() == []


def test_a_future_day_is_refused_and_the_command_reports(brand):
    with pytest.raises(ExpiryInFuture):
        points_expire_for_date(day=date.today() + timedelta(days=2))
    wallet = _wallet(brand)
    _credit(brand, wallet, 5, DUE, "five")
    call_command("expire_points", "--date", DAY.isoformat())
    assert JobRun.objects.get(job="expiry", period=DAY.isoformat()).status == "done"
    assert Account.objects.get(pk=wallet.pk).balance == 0


def test_reminders_tell_each_shopper_once_by_notice_and_mail(brand, settings):
    # given two shoppers whose points expire in 7 days (one without an email address), one
    # whose points expire later, and a merchant wallet (no shopper to tell)
    settings.POINTS_EXPIRY_REMINDER_DAYS = 7
    today = date(2025, 3, 24)
    due = day_start(today + timedelta(days=7))
    with_mail, phone_only = UserFactory(), UserFactory(email=None)
    _credit(brand, _wallet(brand, with_mail), 1234, due, "a")
    _credit(brand, _wallet(brand, phone_only), 5, due, "b")
    _credit(brand, _wallet(brand), 77, due + timedelta(days=1), "c")

    # when the reminders of today run, twice
    run = expiry_reminders_send(day=today)
    expiry_reminders_send(day=today)

    # then each of the two has one notice naming the amount and the last day, and one mail
    notices = {n.user_id: n for n in Notification.objects.all()}
    assert set(notices) == {with_mail.pk, phone_only.pk}
    text = notices[with_mail.pk].text
    assert "1234" in text and "2025-03-30" in text and "测试积分" in text
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [with_mail.email]
    assert "1234" in mail.outbox[0].body
    assert run.counts["notices"] == 2 and run.counts["emails"] == 1
    assert all(n.emailed_at for n in notices.values())


def test_reminder_text_on_the_python_path_matches(brand, settings):
    settings.LEDGER_ENGINE = "python"
    settings.POINTS_EXPIRY_REMINDER_DAYS = 7
    today = date(2025, 3, 24)
    user = UserFactory()
    _credit(brand, _wallet(brand, user), 1234, day_start(today + timedelta(days=7)), "a")

    expiry_reminders_send(day=today)

    assert Notification.objects.get(user=user).key == f"expiring:{brand.code}:2025-03-30"
    assert "1234" in Notification.objects.get(user=user).text


def test_a_crash_between_batches_resumes_and_expires_each_remainder_once(brand, monkeypatch):
    # given 7 wallets with due lots, expired 2 wallets per transaction and 4 per database
    # transaction, and a worker that dies before the second batch
    from points import expiry as expiry_module

    wallets = [_wallet(brand) for _ in range(7)]
    for n, wallet in enumerate(wallets, start=1):
        _credit(brand, wallet, n, DUE, f"c{n}")
    real_post = expiry_module._post_batch_sql
    calls = {"n": 0}

    def crash_on_second(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("worker lost")
        return real_post(*args)

    monkeypatch.setattr(expiry_module, "_post_batch_sql", crash_on_second)
    with pytest.raises(ConnectionError):
        points_expire_for_date(day=DAY, chunk_accounts=2, batch_accounts=4)
    failed = JobRun.objects.get(job="expiry", period=DAY.isoformat())
    assert failed.progress_done == 4 and failed.counts["transactions"] == 2

    # when the run is started again
    run = points_expire_for_date(day=DAY, chunk_accounts=2, batch_accounts=4)

    # then every due remainder expired once, in 4 transactions with keys 0..3
    assert run.status == JobRun.Status.DONE and run.attempts == 2
    assert [Account.objects.get(pk=w.pk).balance for w in wallets] == [0] * 7
    assert run.counts["accounts"] == 7 and run.counts["lots"] == 7
    assert run.counts[f"expired:{brand.code}"] == sum(range(1, 8))
    assert sorted(Transaction.objects.filter(kind="expiry").values_list("idempotency_key",
                                                                       flat=True)) == [
        f"expiry:{DAY.isoformat()}:{n}" for n in range(4)]
    assert ledger_consistent() == []


def test_a_batch_locks_its_wallets_once_and_counts_its_lots_under_those_locks(brand):
    # given 5 wallets with due lots, two of them with two due lots each
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    wallets = [_wallet(brand) for _ in range(5)]
    for n, wallet in enumerate(wallets, start=1):
        _credit(brand, wallet, n, DUE, f"c{n}")
    for wallet in wallets[:2]:
        _credit(brand, wallet, 10, DUE - timedelta(days=1), f"early{wallet.pk}")

    # when they expire in one database batch
    with CaptureQueriesContext(connection) as queries:
        run = points_expire_for_date(day=DAY, chunk_accounts=2, batch_accounts=8)

    # then the wallets were locked by one statement (the expiry used to lock them twice), and
    # the lots counted are the seven it emptied
    locks = [q["sql"] for q in queries if "FOR NO KEY UPDATE" in q["sql"]]
    assert len(locks) == 1
    assert run.counts["accounts"] == 5 and run.counts["lots"] == 7
    assert Lot.objects.filter(account__in=wallets, remaining__gt=0).count() == 0
    assert ledger_consistent() == []
