"""Fixtures and helpers of the transparency-log tests (imported by those test modules).

Nothing here depends on a key file in the repository: every test signs with a key made in
its own fixture.
"""

import itertools
from dataclasses import dataclass, field

import pytest
from django.db import connection

from ledger import note, services
from ledger.models import Account, Asset
from tests.factories import StaffMembershipFactory, UserFactory

ORIGIN = "test.example/points-log"
_keys = itertools.count()


@pytest.fixture
def log_key(settings) -> str:
    """A fresh log signer key in the settings; returns its verifier key."""
    skey, vkey = note.generate_signer(ORIGIN)
    settings.LOG_SIGNER_KEY = skey
    settings.LOG_ORIGIN = ORIGIN
    return vkey


@dataclass
class Kit:
    """A merchant with a brand asset, its owner, and shoppers with wallets."""

    merchant: object
    owner: object
    asset: Asset
    issuance: Account
    shoppers: list = field(default_factory=list)
    wallets: list = field(default_factory=list)

    def issue(self, amount: int = 100, shopper: int = 0, **kwargs) -> int:
        """Post one issuance to a shopper's wallet; returns the transaction id."""
        posted = services.transaction_post(
            kind="issue",
            legs=[services.Leg(self.issuance, -amount),
                  services.Leg(self.wallets[shopper], amount)],
            client="test", idempotency_key=f"log-test-{next(_keys)}", **kwargs,
        )
        return posted.transaction_id

    def spend(self, amount: int, shopper: int = 0) -> int:
        burn = services.sink_account(self.asset, Account.Kind.BURN)
        posted = services.transaction_post(
            kind="burn", legs=[services.Leg(self.wallets[shopper], -amount),
                               services.Leg(burn, amount)],
            client="test", idempotency_key=f"log-test-{next(_keys)}",
        )
        return posted.transaction_id


def make_kit(shoppers: int = 2) -> Kit:
    membership = StaffMembershipFactory()
    merchant = membership.merchant
    asset = services.asset_create_brand(
        merchant=merchant, code=f"L{merchant.pk}", name_zh="日志积分", name_en="Log points",
        units_per_cny=100, expiry_months=None,
    )
    kit = Kit(merchant, membership.user, asset, services.issuance_account(asset))
    for _ in range(shoppers):
        user = UserFactory()
        kit.shoppers.append(user)
        kit.wallets.append(
            services.account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=user)
        )
    return kit


@pytest.fixture
def kit() -> Kit:
    return make_kit()


def tamper(sql: str, params: list | None = None) -> None:
    """Run SQL as an attacker with database access would: with every trigger (append-only
    protection, foreign keys) switched off for this session. Needs a superuser."""
    with connection.cursor() as cursor:
        # Run the honest rows' deferred commit-time checks now: the test's transaction never
        # commits, and the tampered rows must not be what those checks see at teardown.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params or [])
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
