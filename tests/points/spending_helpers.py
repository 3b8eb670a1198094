"""Builders shared by the spending tests (holds, catalog, exchange, lotteries)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from django.db import connection
from rest_framework.test import APIClient

from ledger.models import Account, Asset
from ledger.services import Leg, account_get_or_create, issuance_account, transaction_post
from merchants import services as merchant_services
from points.exchange import exchange_settings_save
from points.spending import brand_asset
from tests.threads import connect_when_a_slot_is_free


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


def race(fn, count: int, workers: int | None = None) -> list:
    """Run ``fn(i)`` for i in range(count) on ``workers`` threads at once (all started
    together behind a barrier), each thread on its own database connection, closed after."""
    workers = min(workers or count, count)
    barrier = threading.Barrier(workers)

    def worker(i: int):
        try:
            connect_when_a_slot_is_free()  # connected before the start, so all start at once
            if i < workers:
                try:
                    barrier.wait(timeout=30)
                except threading.BrokenBarrierError:
                    pass
            return fn(i)
        except Exception as exc:  # collected and asserted on by the test
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(worker, range(count)))


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
