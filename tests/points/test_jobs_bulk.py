"""``ledger.bulk.bulk_post`` and ``bulk_post_many``, the jobs' set-based posting: the ledger's
rules hold as they do for the engines (balance per asset, bounded balances, share value, lots,
idempotency), for each transaction of a batch."""

from datetime import UTC, datetime

import pytest

from ledger import services as ledger
from ledger.bulk import MAX_LEGS, BulkTransaction, bulk_post, bulk_post_many
from ledger.errors import IdempotencyConflict, InsufficientBalance, LedgerInvariantError
from ledger.models import Account, Lot, Posting, Transaction
from tests.factories import MerchantFactory, UserFactory
from tests.points.jobs_helpers import alliance_assets, ledger_consistent

pytestmark = pytest.mark.django_db

SOON = datetime(2030, 1, 1, tzinfo=UTC)
LATER = datetime(2031, 1, 1, tzinfo=UTC)
LEGS = ("SELECT n AS ord, a AS account_id, m AS amount, e AS expires_at "
        "FROM unnest(%(a)s::bigint[], %(m)s::bigint[], %(e)s::timestamptz[]) "
        "WITH ORDINALITY AS u(a, m, e, n)")


@pytest.fixture(autouse=True)
def _assets():
    alliance_assets()


@pytest.fixture
def brand():
    merchant = MerchantFactory()
    return ledger.asset_create_brand(merchant=merchant, code=f"K{merchant.pk}", name_zh="积分",
                                     name_en="Points", units_per_cny=100, expiry_months=12)


def _post(legs: list[tuple], key: str = "k", metadata: dict | None = None, **kwargs):
    return bulk_post(kind="test", client="test", idempotency_key=key, legs_sql=LEGS,
                     params={"a": [a.pk for a, *_ in legs], "m": [leg[1] for leg in legs],
                             "e": [leg[2] if len(leg) > 2 else None for leg in legs]},
                     metadata=metadata, **kwargs)


def _wallet(asset) -> Account:
    return ledger.account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=UserFactory())


def test_a_balanced_transaction_posts_with_balances_and_lots(brand):
    # given two wallets of an expiring brand
    issuance, a, b = ledger.issuance_account(brand), _wallet(brand), _wallet(brand)

    # when one bulk transaction credits them with expiry dates
    posted = _post([(issuance, -70), (a, 30, SOON), (b, 40, LATER)])

    # then postings, balances and lots are those the engines would have written
    assert posted.legs == 3 and not posted.replayed
    assert list(Posting.objects.filter(transaction_id=posted.transaction_id)
                .order_by("leg").values_list("leg", "amount")) == [(0, -70), (1, 30), (2, 40)]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.balance, b.balance) == (30, 40)
    assert dict(Lot.objects.filter(account=a).values_list("expires_at", "remaining")) == {
        SOON: 30}
    assert ledger_consistent() == []


def test_debits_take_lots_soonest_expiring_first(brand):
    issuance, wallet = ledger.issuance_account(brand), _wallet(brand)
    _post([(issuance, -80), (wallet, 50, LATER), (wallet, 30, SOON)], key="fund")

    _post([(wallet, -40), (issuance, 40)], key="spend")

    assert dict(Lot.objects.filter(account=wallet).values_list("expires_at", "remaining")) == {
        SOON: 0, LATER: 40}
    assert ledger_consistent() == []


@pytest.mark.parametrize(("legs", "detail"), [
    (lambda i, a, b, sv: [(i, -10), (a, 9, SOON)], "unbalanced_assets"),
    (lambda i, a, b, sv: [(i, -10), (a, 10)], "lot_expiry_missing"),
    (lambda i, a, b, sv: [(i, 0), (a, 0, SOON)], "legs"),
    (lambda i, a, b, sv: [(a, -1), (b, 1, SOON)], "lots"),
    (lambda i, a, b, sv: [(i, -1)], "legs"),
    (lambda i, a, b, sv: [(sv[0], -1), (sv[1], 1)], "non_transferable"),
])
def test_a_transaction_that_breaks_a_rule_is_refused_and_writes_nothing(brand, legs, detail):
    issuance, a, b = ledger.issuance_account(brand), _wallet(brand), _wallet(brand)
    _post([(issuance, -5), (a, 5, SOON)], key="fund")
    sv_asset = ledger.alliance_asset("SV")
    sv = [_wallet(sv_asset), _wallet(sv_asset)]
    Account.objects.filter(pk=sv[0].pk).update(balance=5)
    before = (Transaction.objects.count(), Posting.objects.count())

    with pytest.raises(LedgerInvariantError) as refused:
        _post(legs(issuance, a, b, sv), key="bad")

    assert detail in refused.value.details
    assert (Transaction.objects.count(), Posting.objects.count()) == before


def test_an_unknown_account_and_too_many_legs_are_refused(brand):
    issuance = ledger.issuance_account(brand)
    with pytest.raises(LedgerInvariantError):
        bulk_post(kind="t", client="t", idempotency_key="x",
                  legs_sql="SELECT 1 AS ord, -1::bigint AS account_id, 5 AS amount, "
                           "NULL::timestamptz AS expires_at UNION ALL "
                           f"SELECT 2, {issuance.pk}, -5, NULL")
    with pytest.raises(LedgerInvariantError) as refused:
        bulk_post(kind="t", client="t", idempotency_key="y",
                  legs_sql=f"SELECT g AS ord, {issuance.pk} AS account_id, "
                           "CASE WHEN g %% 2 = 0 THEN 1 ELSE -1 END AS amount, "
                           "NULL::timestamptz AS expires_at "
                           "FROM generate_series(1, %(n)s) g", params={"n": MAX_LEGS + 2})
    assert "at most" in refused.value.details["legs"]


def test_a_bounded_account_cannot_go_below_zero_and_the_error_names_it(brand):
    issuance, wallet = ledger.issuance_account(brand), _wallet(brand)
    _post([(issuance, -5), (wallet, 5, SOON)], key="fund")

    with pytest.raises(InsufficientBalance) as refused:
        _post([(wallet, -6), (issuance, 6)], key="overdraw")

    assert refused.value.details["account"] == wallet.public_id
    wallet.refresh_from_db()
    assert wallet.balance == 5
    assert not Transaction.objects.filter(idempotency_key="overdraw").exists()


def test_the_same_key_posts_once_and_another_request_under_it_is_a_conflict(brand):
    issuance, wallet = ledger.issuance_account(brand), _wallet(brand)
    first = _post([(issuance, -5), (wallet, 5, SOON)], key="once", metadata={"n": 1})
    again = _post([(issuance, -5), (wallet, 5, SOON)], key="once", metadata={"n": 1})

    assert again.replayed and again.transaction_id == first.transaction_id
    wallet.refresh_from_db()
    assert wallet.balance == 5
    with pytest.raises(IdempotencyConflict):
        _post([(issuance, -5), (wallet, 5, SOON)], key="once", metadata={"n": 2})


def test_legs_read_under_lock_sql_may_only_name_accounts_it_locked(brand):
    issuance, a, b = ledger.issuance_account(brand), _wallet(brand), _wallet(brand)

    with pytest.raises(LedgerInvariantError):
        _post([(issuance, -2), (a, 1, SOON), (b, 1, SOON)], key="stray",
              lock_sql="SELECT %(one)s::bigint", lock_params={"one": a.pk})
    posted = _post([(issuance, -2), (a, 1, SOON), (b, 1, SOON)], key="locked",
                   lock_sql="SELECT unnest(%(ids)s::bigint[])", lock_params={"ids": [a.pk, b.pk]})
    assert posted.legs == 3


def test_legs_that_select_nothing_post_nothing(brand):
    assert bulk_post(kind="t", client="t", idempotency_key="none",
                     legs_sql="SELECT 1 AS ord, 1::bigint AS account_id, 1 AS amount, "
                              "NULL::timestamptz AS expires_at WHERE false") is None
    assert not Transaction.objects.filter(idempotency_key="none").exists()


@pytest.mark.django_db(transaction=True)
def test_a_committed_bulk_transaction_passes_the_databases_own_balance_check(brand):
    # (the deferred constraint trigger of migration ledger/0002 runs at commit)
    issuance, wallet = ledger.issuance_account(brand), _wallet(brand)
    posted = _post([(issuance, -5), (wallet, 5, SOON)], key="commit")
    assert Transaction.objects.filter(pk=posted.transaction_id).exists()
    assert ledger_consistent() == []


MANY = ("SELECT t AS txn, n AS ord, a AS account_id, m AS amount, e AS expires_at "
        "FROM unnest(%(t)s::int[], %(a)s::bigint[], %(m)s::bigint[], %(e)s::timestamptz[]) "
        "WITH ORDINALITY AS u(t, a, m, e, n)")


def _post_many(keys: list[str], legs: list[tuple], **kwargs):
    """``legs``: (transaction index, account, amount[, expires_at])."""
    return bulk_post_many(
        kind="test", client="test",
        transactions=[BulkTransaction(key, {"key": key}) for key in keys], legs_sql=MANY,
        params={"t": [leg[0] for leg in legs], "a": [leg[1].pk for leg in legs],
                "m": [leg[2] for leg in legs],
                "e": [leg[3] if len(leg) > 3 else None for leg in legs]}, **kwargs)


def test_a_batch_posts_one_journal_transaction_per_key_in_order_and_skips_the_empty(brand):
    # given three wallets and a batch of three transactions, the second without legs
    issuance = ledger.issuance_account(brand)
    a, b, c = _wallet(brand), _wallet(brand), _wallet(brand)

    # when it is posted, the wallets locked by lock_sql
    posted = _post_many(["one", "two", "three"],
                        [(0, issuance, -30), (0, a, 10, SOON), (0, b, 20, SOON),
                         (2, c, 5, LATER), (2, issuance, -5)],
                        lock_sql="SELECT unnest(%(ids)s::bigint[])",
                        lock_params={"ids": [a.pk, b.pk, c.pk]})

    # then the first and third are journal rows of their own, in batch order, legs numbered
    # from 0 in each; the second wrote nothing
    first, second, third = posted
    assert second is None
    assert (first.legs, third.legs) == (3, 2) and first.transaction_id < third.transaction_id
    assert not Transaction.objects.filter(idempotency_key="two").exists()
    assert list(Posting.objects.filter(transaction_id=third.transaction_id).order_by("leg")
                .values_list("leg", "account_id", "amount")) == [(0, c.pk, 5), (1, issuance.pk, -5)]
    assert [Account.objects.get(pk=w.pk).balance for w in (a, b, c)] == [10, 20, 5]
    assert dict(Lot.objects.filter(account=c).values_list("expires_at", "remaining")) == {
        LATER: 5}
    assert ledger_consistent() == []


def test_a_batch_again_replays_what_posted_and_posts_the_rest(brand):
    # given a batch whose first transaction posted before (a crash after its commit)
    issuance, a, b = ledger.issuance_account(brand), _wallet(brand), _wallet(brand)
    legs = [(0, issuance, -10), (0, a, 10, SOON), (1, issuance, -7), (1, b, 7, SOON)]
    (earlier,) = _post_many(["first"], legs[:2])

    # when the whole batch is posted
    first, second = _post_many(["first", "second"], legs)

    # then the first is replayed (not moved twice), the second posted
    assert first.replayed and first.transaction_id == earlier.transaction_id
    assert not second.replayed and second.legs == 2
    assert [Account.objects.get(pk=w.pk).balance for w in (a, b)] == [10, 7]
    assert ledger_consistent() == []
    # and a key used for another request is a conflict that writes nothing
    with pytest.raises(IdempotencyConflict):
        bulk_post_many(kind="test", client="test",
                       transactions=[BulkTransaction("second", {"other": 1})],
                       legs_sql=MANY, params={"t": [0, 0], "a": [issuance.pk, b.pk],
                                              "m": [-1, 1], "e": [None, SOON]})
    assert Account.objects.get(pk=b.pk).balance == 7


def test_one_unbalanced_transaction_refuses_the_whole_batch(brand):
    issuance, a = ledger.issuance_account(brand), _wallet(brand)
    before = (Transaction.objects.count(), Posting.objects.count())

    with pytest.raises(LedgerInvariantError) as refused:
        _post_many(["fine", "short"], [(0, issuance, -1), (0, a, 1, SOON),
                                       (1, issuance, -2), (1, a, 1, SOON)])

    assert "unbalanced_assets" in refused.value.details
    assert (Transaction.objects.count(), Posting.objects.count()) == before
    assert Account.objects.get(pk=a.pk).balance == 0
