"""Importing 1,000,000 existing members from CSV on PostgreSQL (SPEC §4.9).

A merchant's file of a million members (80% by phone, 20% by email, a third with an expiry)
goes through the same path as the dashboard: the dry run (every row checked, duplicates
across the whole file), then the import task (one ledger transaction per 50,000-row batch
from the merchant's issuance into its pending-claims account, claims written with ``COPY``).
Afterwards one member signs up and claims, to show the lookup stays an index probe.

Run: ``python bench/import_members.py`` (``BENCH_IMPORT_ROWS`` to change the size).
"""

import os
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import django_setup, scratch_database

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))


def write_csv(path: Path, rows: int) -> int:
    """A member file of ``rows`` distinct members; returns the total balance."""
    rng = random.Random(2026)
    total = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,email,balance,expiry\n")
        for i in range(rows):
            balance = rng.randint(1, 50_000)
            total += balance
            expiry = f"2099-{rng.randint(1, 12):02d}-28" if i % 3 == 0 else ""
            if i % 5 == 4:
                out.write(f",member{i}@old-system.example,{balance},{expiry}\n")
            else:
                # 138 0000 0000 onwards: valid Chinese mobile numbers, all distinct.
                out.write(f"138{i:08d},,{balance},{expiry}\n")
    return total


def main() -> dict:
    scratch_database("bench_import")
    django_setup()
    from allauth.account.models import EmailAddress
    from django.core.files import File

    from alliance.models import District, User
    from ledger.models import Transaction
    from merchants.imports import (
        brand_asset,
        claims_account,
        claims_collect,
        member_import_check,
        member_import_start,
    )
    from merchants.models import MemberImport, PendingClaim
    from merchants.services import merchant_onboard

    owner = User.objects.create_user(email="owner@bench.example", password=None)
    district = District.objects.create(slug="bench", name_zh="商圈", name_en="Bench")
    merchant = merchant_onboard(
        owner=owner, name_zh="老会员", name_en="Old Members", legal_name="Old Members Ltd.",
        licence_number="BENCH-1", category="retail", district=district,
        rebate_rate=Decimal("0.1"), stores=[], asset_code="OLD", asset_name_zh="老积分",
        asset_name_en="Old points", units_per_cny=Decimal(100), expiry_months=12,
    )
    asset = brand_asset(merchant)

    with tempfile.TemporaryDirectory() as tmp:
        from django.conf import settings

        settings.PRIVATE_MEDIA_ROOT = tmp
        path = Path(tmp) / "members.csv"
        started = time.perf_counter()
        total = write_csv(path, ROWS)
        generated = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6

        with path.open("rb") as stream:
            upload = File(stream, name="members.csv")
            started = time.perf_counter()
            member_import, report = member_import_check(merchant=merchant, upload=upload,
                                                        uploaded_by=owner)
            dry_run = time.perf_counter() - started
        assert report.ok, report.errors[:5]
        assert (report.row_count, report.total) == (ROWS, total)

        # Outside a transaction, on_commit runs at once and Celery is in-process: this is
        # the dashboard's "Import" button and the task it queues, start to finish.
        started = time.perf_counter()
        member_import_start(member_import=member_import)
        imported = time.perf_counter() - started

    member_import.refresh_from_db()
    assert member_import.status == MemberImport.Status.COMMITTED, member_import.error
    batches = Transaction.objects.filter(kind="member_import").count()
    assert PendingClaim.objects.count() == ROWS
    assert claims_account(asset).balance == total

    # One of the million signs up with their verified phone number and claims.
    shopper = User.objects.create_user(email="late@bench.example", phone="+8613800000007",
                                       phone_verified=True)
    EmailAddress.objects.create(user=shopper, email=shopper.email, verified=True)
    started = time.perf_counter()
    claimed = claims_collect(user=shopper)
    claim_ms = (time.perf_counter() - started) * 1000
    assert len(claimed) == 1

    from ledger import verification

    for check in (verification.check_transactions_balance, verification.check_account_balances):
        problems = list(check())
        assert not problems, problems[:5]

    result = {
        "rows": ROWS, "file_mb": round(size_mb, 1), "generate_s": round(generated, 1),
        "dry_run_s": round(dry_run, 1), "import_s": round(imported, 1),
        "total_s": round(dry_run + imported, 1), "batches": batches,
        "rows_per_s": round(ROWS / (dry_run + imported)), "claim_ms": round(claim_ms, 1),
    }
    print(f"\nimport_members ({ROWS:,} rows, {size_mb:.1f} MB CSV, PostgreSQL)")
    print(f"  dry run (check every row)   {dry_run:8.1f} s")
    print(f"  import ({batches} ledger batches)  {imported:8.1f} s")
    print(f"  total                       {dry_run + imported:8.1f} s "
          f"({result['rows_per_s']:,} rows/s)")
    print(f"  one member's claim at sign-in {claim_ms:6.1f} ms")
    return {"import_members": result}


if __name__ == "__main__":
    main()
