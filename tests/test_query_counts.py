"""Every main page runs a bounded number of SQL queries whatever the volume (no N+1): each
is requested against a ledger of 2,000 transactions over 40 shoppers, two merchants and
their deposits, and must stay under a fixed bound."""

import pytest
from django.test import Client

from ledger import services
from ledger.models import Account
from merchants.models import StaffMembership
from tests.factories import StaffMembershipFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

TRANSACTIONS = 2000
MAX_QUERIES = 25


@pytest.fixture
def volume():
    owners, shoppers = [], [UserFactory() for _ in range(40)]
    legs = []
    for n in range(2):
        membership = StaffMembershipFactory(role=StaffMembership.Role.OWNER)
        StoreFactory(merchant=membership.merchant)
        asset = services.asset_create_brand(
            merchant=membership.merchant, code=f"VOL{n}", name_zh="积分", name_en="points",
            units_per_cny=10, expiry_months=12)
        issuance = services.issuance_account(asset)
        wallets = [services.account_get_or_create(asset=asset, kind=Account.Kind.WALLET,
                                                  user=shopper) for shopper in shoppers]
        legs.append((issuance, wallets))
        owners.append(membership.user)
    for n in range(TRANSACTIONS):
        issuance, wallets = legs[n % 2]
        services.transaction_post(
            kind="purchase", client="volume", idempotency_key=f"vol-{n}",
            legs=[services.Leg(issuance, -(n % 97 + 1)),
                  services.Leg(wallets[n % len(wallets)], n % 97 + 1)])
    return {"owner": owners[0], "shopper": shoppers[0],
            "staff": UserFactory(is_alliance_staff=True)}


def test_main_pages_stay_under_a_fixed_query_bound(volume, django_assert_max_num_queries):
    pages = [
        (None, "/explorer/"), (None, "/explorer/assets/"), (None, "/explorer/assets/VOL0/"),
        (None, "/explorer/transactions/"), (None, "/explorer/transactions/?page=20"),
        (None, "/explorer/reserves/"), (None, "/explorer/checkpoints/"),
        ("shopper", "/"), ("shopper", "/history/"), ("shopper", "/history/?asset=VOL1"),
        ("shopper", "/nearby/"),
        ("owner", "/dashboard/"), ("owner", "/dashboard/reports/"),
        ("owner", "/dashboard/reports/?days=90"),
        ("staff", "/console/"),
    ]
    for who, url in pages:
        client = Client()
        if who:
            client.force_login(volume[who])
        with django_assert_max_num_queries(MAX_QUERIES):
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
