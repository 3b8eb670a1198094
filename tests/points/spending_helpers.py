"""Builders shared by the spending tests (holds, catalog, exchange, lotteries)."""

from decimal import Decimal

from rest_framework.test import APIClient

from ledger.models import Account, Asset
from ledger.services import Leg, account_get_or_create, issuance_account, transaction_post
from merchants import services as merchant_services
from points.exchange import exchange_settings_save
from points.spending import brand_asset
from tests.threads import race  # noqa: F401  (the spending tests import it from here)


def brand(merchant) -> Asset:
    return brand_asset(merchant)


def wallet(asset: Asset, user=None, merchant=None) -> Account:
    return account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=user,
                                 merchant=merchant)


def balance(asset: Asset, *, user=None, merchant=None, kind=Account.Kind.WALLET) -> int:
    return account_get_or_create(asset=asset, kind=kind, user=user, merchant=merchant).balance


def fund(asset: Asset, user, amount: int, key: str | None = None) -> None:
    """Credit ``amount`` minor units of ``asset`` to the user's wallet from its issuance."""
    target = wallet(asset, user=user)
    transaction_post(
        kind="issue", legs=[Leg(issuance_account(asset), -amount), Leg(target, amount)],
        client="test", idempotency_key=key or f"fund:{target.pk}:{amount}:{target.balance}",
    )


def deposit(merchant) -> int:
    return balance(Asset.objects.get(code="SHARED"), merchant=merchant,
                   kind=Account.Kind.DEPOSIT)


def opt_in(merchant, daily_cap: str = "10000.00", ratio: Decimal | None = None) -> None:
    exchange_settings_save(merchant=merchant, opted_in=True, daily_cap=Decimal(daily_cap),
                           max_deduction_ratio=ratio)


def api_key_client(merchant, scopes=("holds", "vouchers")) -> APIClient:
    _key, raw = merchant_services.api_key_create(merchant=merchant, name="till",
                                                 scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def shopper_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    return body["error"]["code"]


def alliance_assets_restore() -> None:
    """Transactional tests flush every table, the alliance's assets (made by a migration)
    included; put them back for a test that needs SHARED."""
    import importlib

    from django.apps import apps

    importlib.import_module("ledger.migrations.0003_alliance_assets").create(apps, None)


def catalog_item(merchant, *, price: int = 500, stock: int = 10, asset: Asset | None = None,
                 **fields):
    from points.catalog import catalog_item_save

    values = {"name_zh": "咖啡", "name_en": "Coffee", "description": "A cup of coffee",
              "price_asset": asset or brand(merchant), "price": price, "stock": stock,
              "per_shopper_limit": None, "available_from": None, "available_until": None,
              "voucher_valid_days": 30, "refundable": True, "active": True}
    values.update(fields)
    return catalog_item_save(merchant=merchant, fields=values)
