"""The daily airdrop and point expiry over 1,000,000 holders on PostgreSQL (SPEC §9).

In one scratch database (``bench_jobs``), one run:

1. the machine's reference: a plain ``INSERT ... SELECT`` of 1,000,000 rows into a table of
   three bigint columns and a primary key, and the same into a table shaped like
   ``ledger_posting`` (its columns and indexes, no triggers);
2. set-up (not timed): 1,000,000 shoppers, each with an SV wallet credited by ledger
   transactions and a brand wallet with one lot due today (half of them partly spent), loaded
   with ``INSERT ... SELECT`` straight into the ledger tables (triggers skipped, as a restore
   would: it needs a superuser); the rows are what posting would have written;
3. the airdrop of day 1: D large enough that every holder gets a part, so 2,000,000 postings
   and 2,000,000 balance updates, plus the 1,000,000 SHARED wallets it opens;
4. the airdrop of day 2: the same, wallets already open (every day after the first);
5. the expiry: 1,000,000 due lots, partly spent, moved to the issuer's expired account;
6. the airdrop of day 3 after a rewrite of ``ledger_account`` (``VACUUM FULL``): its pages
   back at the ``fillfactor = 50`` of migration ``ledger/0007``, as a table whose old row
   versions have been pruned would be;
7. ``airdrop_verify`` of day 2 and ``verify_ledger``'s balance and lot checks.

For each job: wall time, the Python process's peak memory (tracemalloc), and on the server
the backend's peak resident memory (``VmHWM``, reset before each job; it counts the shared
buffers the backend touched), the bytes it spilled to temporary files and the WAL written
while it ran (with PostgreSQL's defaults, much of it full-page images).

Run: ``python -m bench.jobs`` (``BENCH_JOBS_HOLDERS`` to change the size).
"""

import os
import resource
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

from bench.common import django_setup, scratch_database

HOLDERS = int(os.environ.get("BENCH_JOBS_HOLDERS", "1000000"))
# Shown with the figures: checkpoints forced by WAL volume make the jobs write every page they
# touch again in full.
WAL_SETTINGS = ("max_wal_size", "checkpoint_timeout", "wal_compression", "shared_buffers")
# Credits per seed transaction (a transaction holds at most 32,768 legs).
SEED_CHUNK = 30_000


def _sql(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _scalar(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def reference() -> dict:
    """The machine's yardstick, measured in this run."""
    _sql("DROP TABLE IF EXISTS bench_reference, bench_reference_postings")
    _sql("CREATE TABLE bench_reference (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
         "account_id bigint NOT NULL, amount bigint NOT NULL)")
    _sql("CREATE TABLE bench_reference_postings (LIKE ledger_posting INCLUDING DEFAULTS "
         "INCLUDING IDENTITY INCLUDING INDEXES INCLUDING CONSTRAINTS)")
    _sql("CHECKPOINT")
    started = time.perf_counter()
    _sql("INSERT INTO bench_reference (account_id, amount) "
         "SELECT g, g FROM generate_series(1, %s) g", [HOLDERS])
    plain = time.perf_counter() - started
    _sql("CHECKPOINT")
    started = time.perf_counter()
    _sql("INSERT INTO bench_reference_postings (transaction_id, leg, account_id, asset_id, "
         "amount) SELECT 1 + g / 30000, g %% 30000, g, 1, g FROM generate_series(1, %s) g",
         [HOLDERS])
    shaped = time.perf_counter() - started
    return {"plain_s": plain, "postings_shaped_s": shaped}


def seed(due) -> dict:
    """1,000,000 shoppers with SV and a brand wallet holding a due lot; loaded in bulk."""
    from django.db import connection

    from ledger import services as ledger
    from merchants.models import Merchant

    sv = ledger.alliance_asset("SV")
    sv_issuance = ledger.issuance_account(sv)
    merchant = Merchant.objects.first()
    brand = ledger.asset_create_brand(merchant=merchant, code="BENCH", name_zh="基准积分",
                                      name_en="Bench points", units_per_cny=100,
                                      expiry_months=12)
    brand_issuance = ledger.issuance_account(brand)
    ledger.sink_account(brand, "expired")
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "INSERT INTO alliance_user (password, is_superuser, email, phone, phone_verified, "
            "display_name, member_code, is_active, is_staff, is_alliance_staff, is_supervisor, "
            "is_council_member, date_joined) "
            "SELECT '!', false, NULL, '+86139' || lpad(g::text, 8, '0'), true, '', "
            "'B' || g, true, false, false, false, false, now() "
            "FROM generate_series(1, %s) g", [HOLDERS])
        # SV: 1 .. 1,000,000 minor units, spread; brand: 1,000 points due, half 400 spent.
        for asset, amount, lots in ((sv.pk, "1 + (u.id * 7919) %% 1000000", False),
                                    (brand.pk, "CASE WHEN u.id %% 2 = 0 THEN 600 ELSE 1000 END",
                                     True)):
            cursor.execute(
                "INSERT INTO ledger_account (kind, holder_key, public_id, bounded, tracks_lots, "
                "balance, created_at, user_id, merchant_id, asset_id) "
                "SELECT 'wallet', 'u:' || u.id, 'ac_' || substr(md5(random()::text || u.id || "
                f"%s), 1, 16), true, %s, {amount}, now(), u.id, NULL, %s "
                "FROM alliance_user u WHERE u.phone LIKE '+86139%%'",
                [asset, lots, asset])
        # The journal that explains those balances: chunks of credits from the issuances,
        # and for the spent halves a debit back to the issuance.
        for asset, issuance, expires in ((sv.pk, sv_issuance.pk, None),
                                         (brand.pk, brand_issuance.pk, due)):
            cursor.execute(
                "WITH w AS (SELECT id, (row_number() OVER (ORDER BY id) - 1) AS n, "
                "  CASE WHEN tracks_lots THEN 1000 ELSE balance END AS credit "
                "  FROM ledger_account WHERE asset_id = %(asset)s AND kind = 'wallet'), "
                "t AS (INSERT INTO ledger_transaction (kind, client, idempotency_key, "
                "  fingerprint, metadata, occurred_at, created_at) "
                "  SELECT 'bench_seed', 'bench', 'seed:' || %(asset)s || ':' || c, '', '{}', "
                "  now(), now() FROM generate_series(0, (SELECT max(n) FROM w) / %(chunk)s) c "
                "  RETURNING id, split_part(idempotency_key, ':', 3)::int AS c) "
                "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount, "
                "  expires_at) "
                "SELECT t.id, 1 + w.n %% %(chunk)s, w.id, %(asset)s, w.credit, "
                "  %(expires)s::timestamptz FROM w JOIN t ON t.c = w.n / %(chunk)s "
                "UNION ALL SELECT t.id, 0, %(issuance)s, %(asset)s, -s.total, NULL "
                "  FROM t JOIN (SELECT n / %(chunk)s AS c, sum(credit) AS total FROM w "
                "               GROUP BY 1) s ON s.c = t.c",
                {"asset": asset, "issuance": issuance, "chunk": SEED_CHUNK, "expires": expires})
        cursor.execute(
            "INSERT INTO ledger_lot (account_id, expires_at, remaining) "
            "SELECT id, %s, balance FROM ledger_account WHERE asset_id = %s AND kind = 'wallet'",
            [due, brand.pk])
        cursor.execute(
            "WITH w AS (SELECT id, (row_number() OVER (ORDER BY id) - 1) AS n "
            "  FROM ledger_account WHERE asset_id = %(asset)s AND kind = 'wallet' "
            "  AND balance = 600), "
            "t AS (INSERT INTO ledger_transaction (kind, client, idempotency_key, fingerprint, "
            "  metadata, occurred_at, created_at) "
            "  SELECT 'bench_spend', 'bench', 'spend:' || c, '', '{}', now(), now() "
            "  FROM generate_series(0, (SELECT max(n) FROM w) / %(chunk)s) c "
            "  RETURNING id, split_part(idempotency_key, ':', 2)::int AS c) "
            "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount) "
            "SELECT t.id, 1 + w.n %% %(chunk)s, w.id, %(asset)s, -400 FROM w "
            "  JOIN t ON t.c = w.n / %(chunk)s "
            "UNION ALL SELECT t.id, 0, %(issuance)s, %(asset)s, 400 * s.count "
            "  FROM t JOIN (SELECT n / %(chunk)s AS c, count(*) AS count FROM w GROUP BY 1) s "
            "  ON s.c = t.c",
            {"asset": brand.pk, "issuance": brand_issuance.pk, "chunk": SEED_CHUNK})
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("VACUUM ANALYZE")
    return {"brand": brand}


def _backend_pid() -> int:
    return _scalar("SELECT pg_backend_pid()")


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _temp_bytes() -> int:
    return _scalar("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()")


def _wal_lsn() -> str:
    return _scalar("SELECT pg_current_wal_insert_lsn()::text")


def _wal_mb(since: str) -> float:
    return _scalar("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s::pg_lsn)",
                   [since]) / 2**20


def measure(name: str, job) -> dict:
    pid = _backend_pid()
    _sql("CHECKPOINT")
    _reset_peak(pid)
    temp_before = _temp_bytes()
    wal_before = _wal_lsn()
    tracemalloc.start()
    started = time.perf_counter()
    run = job()
    seconds = time.perf_counter() - started
    _current, python_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The statistics collector reports a moment later.
    time.sleep(1)
    result = {"s": seconds, "python_peak_mb": python_peak / 2**20,
              "pg_peak_rss_mb": _peak_mb(pid),
              "pg_temp_mb": (_temp_bytes() - temp_before) / 2**20,
              "wal_mb": _wal_mb(wal_before),
              "status": run.status, "counts": run.counts}
    assert run.status == "done", (name, run.status, run.error)
    return result


def main() -> dict:
    scratch_database("bench_jobs")
    django_setup()
    from alliance.models import District
    from alliance.parameters import parameter_set
    from ledger import verification
    from merchants.models import Merchant
    from points.airdrop import airdrop_run_for_date, airdrop_verify
    from points.expiry import points_expire_for_date
    from points.jobs import day_start

    district = District.objects.create(slug="bench", name_zh="商圈", name_en="Bench")
    Merchant.objects.create(slug="bench", name_zh="基准", name_en="Bench", district=district)
    ref = reference()
    day1 = date.today() - timedelta(days=4)
    day2, day3, expiry_day = (day1 + timedelta(days=n) for n in (1, 2, 3))
    started = time.perf_counter()
    seed(day_start(expiry_day))
    seeded = time.perf_counter() - started
    # D = 10,000,000 SHARED: every holder's part is at least one minor unit.
    parameter_set(key="airdrop_daily_shared", value="10000000")

    airdrop1 = measure("airdrop", lambda: airdrop_run_for_date(day=day1))
    airdrop2 = measure("airdrop", lambda: airdrop_run_for_date(day=day2))
    expiry = measure("expiry", lambda: points_expire_for_date(day=expiry_day))
    # The account pages rewritten at the table's fillfactor (50, migration ledger/0007): every
    # balance update of the day finds room on its page and is HOT.
    _sql("VACUUM FULL ANALYZE ledger_account")
    airdrop3 = measure("airdrop", lambda: airdrop_run_for_date(day=day3))

    started = time.perf_counter()
    check = airdrop_verify(day=day2)
    verify_s = time.perf_counter() - started
    assert check.ok, check.problems[:5]
    # The process's peak resident memory only grows: read before and after, it tells whether
    # the ledger's checks set the peak of the run.
    peak_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    for problems in (verification.check_transactions_balance(),
                     verification.check_account_balances(), verification.check_lots()):
        problems = list(problems)
        assert not problems, problems[:5]
    ledger_s = time.perf_counter() - started
    postings = _scalar("SELECT count(*) FROM ledger_posting")

    plain = ref["plain_s"]
    jobs = {"airdrop (day 1, opens the wallets)": airdrop1, "airdrop (next days)": airdrop2,
            "expiry": expiry, "airdrop, after VACUUM FULL": airdrop3}
    # The server settings that decide how much WAL the jobs write (docs/scaling.md).
    server = {name: _scalar(f"SHOW {name}") for name in WAL_SETTINGS}
    print(f"\njobs ({HOLDERS:,} holders, PostgreSQL; set-up {seeded:.0f} s, "
          f"{postings:,} postings in the end)")
    print("  server: " + ", ".join(f"{name} {value}" for name, value in server.items()))
    print(f"  reference: INSERT ... SELECT of {HOLDERS:,} rows          {plain:7.1f} s")
    print(f"  reference: the same into a ledger_posting-shaped table "
          f"{ref['postings_shaped_s']:7.1f} s")
    shaped = ref["postings_shaped_s"]
    for name, figures in jobs.items():
        print(f"  {name:36} {figures['s']:7.1f} s  {figures['s'] / plain:5.1f}x reference "
              f"({figures['s'] / shaped:4.1f}x posting-shaped)  "
              f"python peak {figures['python_peak_mb']:.1f} MB, "
              f"server backend peak {figures['pg_peak_rss_mb'] or 0:.0f} MB, "
              f"temp {figures['pg_temp_mb']:.0f} MB, WAL {figures['wal_mb']:.0f} MB")
    met = all(f["s"] <= 5 * plain and f["s"] < 60 for f in jobs.values())
    print(f"  goal (each job within 5x the plain reference and under 60 s): "
          f"{'met' if met else 'not met'}")
    print(f"  airdrop_verify (day 2)               {verify_s:7.1f} s")
    print(f"  verify_ledger balances and lots      {ledger_s:7.1f} s")
    print(f"  process peak RSS (whole run)         "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:7.0f} MB "
          f"({peak_before_mb:.0f} MB before verify_ledger's checks)")
    return {"jobs": {"holders": HOLDERS, "reference_s": plain, **ref, "server": server,
                     **{name: {k: v for k, v in f.items() if k != "counts"}
                        for name, f in jobs.items()},
                     "airdrop_verify_s": verify_s, "verify_ledger_s": ledger_s}}


if __name__ == "__main__":
    main()
