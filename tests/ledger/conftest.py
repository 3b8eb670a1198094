"""Fixtures for ledger tests: a merchant's expiring brand asset and accounts to move it."""

import pytest

from ledger import services
from ledger.models import Account
from tests.factories import MerchantFactory, UserFactory


@pytest.fixture(params=["sql", "python"])
def engine(request, settings):
    """Run a test once on each posting engine (both on the real PostgreSQL)."""
    settings.LEDGER_ENGINE = request.param
    return request.param


@pytest.fixture
def merchant():
    return MerchantFactory()


@pytest.fixture
def brand(merchant):
    return services.asset_create_brand(
        merchant=merchant, code=f"B{merchant.pk}", name_zh="测试积分", name_en="Test points",
        units_per_cny=100, expiry_months=12,
    )


@pytest.fixture
def shopper():
    return UserFactory()


@pytest.fixture
def wallet(brand, shopper) -> Account:
    return services.account_get_or_create(asset=brand, kind=Account.Kind.WALLET, user=shopper)


@pytest.fixture
def issuance(brand) -> Account:
    return services.issuance_account(brand)


@pytest.fixture
def fund(issuance):
    """Credit ``amount`` to ``account`` from the brand's issuance."""

    def _fund(account: Account, amount: int, key: str = "fund", **kwargs):
        return services.transaction_post(
            kind="issue", legs=[services.Leg(issuance, -amount), services.Leg(account, amount)],
            client="test", idempotency_key=f"{key}:{account.pk}:{amount}", **kwargs,
        )

    return _fund
