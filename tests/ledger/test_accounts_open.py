"""``accounts_get_or_create``: several accounts at once, the missing ones opened in one
statement, each as ``account_get_or_create`` would open it."""

import pytest

from ledger import services
from ledger.models import Account
from tests.factories import UserFactory
from tests.threads import race

pytestmark = pytest.mark.django_db


def test_opens_the_missing_accounts_as_one_by_one_would(brand, merchant, shopper,
                                                        django_assert_num_queries):
    # given a shopper with no account yet
    sv = services.alliance_asset("SV")

    # when the shopper's brand wallet, SV wallet and the brand's issuance are asked for at once
    with django_assert_num_queries(1):
        wallet, sv_wallet, issuance = services.accounts_get_or_create([
            (brand, Account.Kind.WALLET, shopper, None),
            (sv, Account.Kind.WALLET, shopper, None),
            (brand, Account.Kind.ISSUANCE, None, merchant),
        ])

    # then one statement opened the three, each as account_get_or_create opens it
    for account, asset in ((wallet, brand), (sv_wallet, sv), (issuance, brand)):
        assert account.pk and account.asset is asset
        assert account == services.account_get_or_create(
            asset=asset, kind=account.kind, user=account.user_id and shopper,
            merchant=account.merchant_id and merchant)
        assert account.public_id.startswith("ac_") and len(account.public_id) == 19
        assert account.balance == 0 and not account._state.adding
    assert (wallet.holder_key, wallet.user_id, wallet.merchant_id) == (
        f"u:{shopper.pk}", shopper.pk, None)
    assert wallet.bounded and wallet.tracks_lots  # brand points expire
    assert sv_wallet.bounded and not sv_wallet.tracks_lots  # share value does not
    assert not issuance.bounded and not issuance.tracks_lots
    assert issuance.holder_key == f"m:{merchant.pk}"


def test_an_account_that_exists_is_read_not_opened_again(brand, shopper, wallet, fund,
                                                         django_assert_num_queries):
    # given a wallet that holds points
    fund(wallet, 70)
    sv = services.alliance_asset("SV")

    # when it is asked for with one that does not exist yet, and twice in the same call
    with django_assert_num_queries(2):  # the opening, then the read of the one that existed
        again, sv_wallet, twice = services.accounts_get_or_create([
            (brand, Account.Kind.WALLET, shopper, None),
            (sv, Account.Kind.WALLET, shopper, None),
            (brand, Account.Kind.WALLET, shopper, None),
        ])

    # then the wallet is the same account, its balance untouched, and only the other opened
    assert again.pk == twice.pk == wallet.pk and again.balance == 70
    assert Account.objects.filter(holder_key=f"u:{shopper.pk}").count() == 2
    assert sv_wallet.pk != wallet.pk


def test_nothing_asked_nothing_run(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert services.accounts_get_or_create([]) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
def test_eight_requests_opening_the_same_wallets_get_the_same_accounts(brand):
    # given a new shopper, whose first purchase arrives at eight tills at once
    shopper = UserFactory()
    sv = services.alliance_asset("SV")

    def open_wallets(_i):
        return [account.pk for account in services.accounts_get_or_create([
            (brand, Account.Kind.WALLET, shopper, None), (sv, Account.Kind.WALLET, shopper, None)])]

    # when the eight open the shopper's two wallets at the same moment
    results = race(open_wallets, 8)

    # then every one of them got the same two accounts, opened once
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({tuple(r) for r in results}) == 1
    assert Account.objects.filter(holder_key=f"u:{shopper.pk}").count() == 2
