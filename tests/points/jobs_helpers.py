"""Helpers of the scheduled-job tests: the alliance's assets, SV holders made set-based, and
the airdrop computed the slow, obvious way to compare the jobs against."""

import importlib
import uuid
from collections.abc import Sequence
from decimal import Decimal

from django.db import connection

from ledger import bulk
from ledger import services as ledger
from ledger.models import Account, Asset
from points.allocation import largest_remainder, sv_cut

_ASSETS = importlib.import_module("ledger.migrations.0003_alliance_assets").ASSETS


def alliance_assets() -> None:
    """SHARED, SV and ALLY, as migration ledger/0003 creates them (a transactional test
    before this one may have emptied every table)."""
    for spec in _ASSETS:
        Asset.objects.get_or_create(code=spec["code"], defaults=spec)


def sv_holders(balances: Sequence[int], *, chunk: int = 30_000) -> list[int]:
    """A new user per balance, with an SV wallet credited that balance by ledger
    transactions from the SV issuance (so ``verify_ledger`` holds); all in SQL, set-based.
    Returns the SV wallets' ids in the order of ``balances``. Zero balances get a wallet
    and no credit."""
    sv = ledger.alliance_asset("SV")
    tag = uuid.uuid4().hex[:10]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO alliance_user (password, is_superuser, email, phone, phone_verified, "
            "display_name, member_code, is_active, is_staff, is_alliance_staff, is_supervisor, "
            "is_council_member, date_joined) "
            "SELECT '!', false, %s || g || '@holders.test', NULL, false, '', "
            "'H' || substr(%s, 1, 6) || g, true, false, false, false, false, now() "
            "FROM generate_series(1, %s) g",
            [f"h{tag}-", tag, len(balances)],
        )
        cursor.execute(
            "INSERT INTO ledger_account (kind, holder_key, public_id, bounded, tracks_lots, "
            "balance, created_at, user_id, merchant_id, asset_id) "
            "SELECT 'wallet', 'u:' || u.id, 'ac_' || substr(md5(gen_random_uuid()::text), 1, 16), "
            "true, false, 0, now(), u.id, NULL, %s FROM alliance_user u "
            "WHERE u.email LIKE %s ORDER BY u.id RETURNING id",
            [sv.pk, f"h{tag}-%"],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
    issuance = ledger.issuance_account(sv).pk
    pairs = [(account, amount) for account, amount in zip(ids, balances, strict=True) if amount]
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        bulk.bulk_post(
            kind="sv_accrual", client="test", idempotency_key=f"sv:{tag}:{start}",
            legs_sql="SELECT -1 AS ord, %(issuance)s AS account_id, -%(total)s AS amount, "
                     "NULL::timestamptz AS expires_at "
                     "UNION ALL SELECT n, a, m, NULL FROM unnest(%(accounts)s::bigint[], "
                     "%(amounts)s::bigint[]) WITH ORDINALITY AS u(a, m, n)",
            params={"issuance": issuance, "total": sum(m for _a, m in part),
                    "accounts": [a for a, _m in part], "amounts": [m for _a, m in part]},
        )
    return ids


def sv_balances() -> dict[int, int]:
    """Every SV wallet's balance, by account id."""
    return dict(Account.objects.filter(asset__code="SV", kind=Account.Kind.WALLET)
                .values_list("pk", "balance"))


def shared_balances() -> dict[str, int]:
    """Every SHARED wallet's balance, by holder key."""
    return dict(Account.objects.filter(asset__code="SHARED", kind=Account.Kind.WALLET)
                .values_list("holder_key", "balance"))


def expected_airdrop(sv_before: dict[int, int], amount: int, factor: Decimal = Decimal(1)
                     ) -> tuple[dict[int, int], dict[int, int]]:
    """The airdrop worked out with the pure functions: ({SV account: part}, {SV account:
    SV after}) for holders in account-id order."""
    holders = sorted(pk for pk, balance in sv_before.items() if balance > 0)
    parts = largest_remainder(amount, [sv_before[pk] for pk in holders])
    received = dict(zip(holders, parts, strict=True))
    after = {pk: sv_before[pk] - sv_cut(received.get(pk, 0), sv_before[pk], factor)
             if pk in received else sv_before[pk] for pk in sv_before}
    return received, after


def ledger_consistent() -> list:
    from ledger.verification import (
        check_account_balances,
        check_lots,
        check_transactions_balance,
    )

    return [*check_transactions_balance(), *check_account_balances(), *check_lots()]
