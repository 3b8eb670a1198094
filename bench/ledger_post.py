"""Purchase-shaped ledger transactions per second against pgbench's TPC-B-like throughput.

Each transaction has the seven legs of SPEC §4.1's shared purchase: brand points (issuance →
shopper wallet), share value (issuance → shopper 10R and merchant 2R) and the deposit burn
(merchant deposit → burn). Clients are separate processes, each with its own connection,
spread over 8 merchants and 4,000 shoppers, as tills of an alliance would be. pgbench runs
in the same run, with the same client counts, initialised at scale 8 (one branch row per
client at 8 clients, so neither side is throttled by a single hot row). Before the clock
starts, the journal is given ``BENCH_HISTORY`` (200,000) transactions of the same shape and
analysed, as pgbench's own initialisation does with its tables.

Besides the throughputs, each point prints the CPU time one transaction cost the clients (their
processes' ``time.process_time``) and the server (their backends' user and system time, read
from ``/proc`` when the server runs on this machine and this user may read it): on a machine
shared with other work, throughput swings with the neighbours, CPU per transaction much less.

Run: ``python -m bench.ledger_post`` (``make bench`` runs it with the others).
"""

import multiprocessing as mp
import os
import random
import time
from decimal import Decimal

from bench.common import django_setup, pgbench_init, pgbench_tps, scratch_database

CLIENTS = tuple(int(c) for c in os.environ.get("BENCH_CLIENTS", "1,4,8").split(","))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
MERCHANTS = 8
SHOPPERS = 4000
# The journal a running alliance has before the clock starts, analysed as a live database is
# (pgbench's initialisation loads and analyses its 800,000 accounts the same way). Measured on
# an empty journal, the planner's first statistics describe tiny tables, and a session keeps
# the plans it made from them while the tables grow under it.
HISTORY = int(os.environ.get("BENCH_HISTORY", "200000"))
FILL_EXPIRY = "2099-12-31T16:00:00+00:00"


def setup() -> dict:
    from django.contrib.auth import get_user_model

    from alliance.models import District
    from ledger import services
    from ledger.models import Account
    from merchants.models import Merchant

    user_model = get_user_model()
    district = District.objects.create(slug="bench", name_zh="基准", name_en="Bench")
    shared = services.alliance_asset("SHARED")
    sv = services.alliance_asset("SV")
    sv_issuance = services.issuance_account(sv)
    shared_issuance = services.issuance_account(shared)
    shared_burn = services.sink_account(shared, Account.Kind.BURN)
    merchants = []
    for m in range(MERCHANTS):
        merchant = Merchant.objects.create(slug=f"m{m}", name_zh=f"商家{m}", name_en=f"M{m}",
                                           district=district, rebate_rate=Decimal("0.1"))
        brand = services.asset_create_brand(merchant=merchant, code=f"BM{m}", name_zh="积分",
                                            name_en="pts", units_per_cny=100)
        deposit = services.account_get_or_create(asset=shared, kind="deposit", merchant=merchant)
        services.transaction_post(
            kind="allocate", client="bench", idempotency_key=f"fund-{m}",
            legs=[services.Leg(shared_issuance, -10**15), services.Leg(deposit, 10**15)])
        merchants.append({
            "issuance": services.issuance_account(brand).pk, "deposit": deposit.pk,
            "sv": services.account_get_or_create(asset=sv, kind="wallet", merchant=merchant).pk,
            "brand": brand.pk,
        })
    users = user_model.objects.bulk_create(
        [user_model(email=f"s{i}@bench.example", phone=f"+8613900{i:06d}") for i in range(SHOPPERS)]
    )
    shoppers = []
    for i, user in enumerate(users):
        m = merchants[i % MERCHANTS]
        brand_wallet = Account.objects.create(
            asset_id=m["brand"], kind="wallet", user=user, holder_key=f"u:{user.pk}",
            bounded=True, tracks_lots=True)
        sv_wallet = Account.objects.create(
            asset=sv, kind="wallet", user=user, holder_key=f"u:{user.pk}", bounded=True,
            tracks_lots=False)
        shoppers.append((i % MERCHANTS, brand_wallet.pk, sv_wallet.pk))
    return {"merchants": merchants, "shoppers": shoppers, "sv_issuance": sv_issuance.pk,
            "burn": shared_burn.pk}


def fill_journal(plan: dict, target: int) -> int:
    """Insert purchase-shaped transactions until the journal holds ``target``; returns how many
    were inserted. The append-only, balance and foreign-key triggers are skipped for the bulk
    load (as a restore would; it needs a superuser). The rows are those ``ledger_post()``
    would write: the brand-point credits carry an expiry, and the bounded accounts' balances
    and lots are brought up to their postings, so ``verify_ledger`` still agrees."""
    from django.db import connection

    from ledger.models import Transaction

    missing = target - Transaction.objects.count()
    if missing <= 0:
        return 0
    merchants, shoppers = plan["merchants"], plan["shoppers"]
    params = {
        "n": missing, "shoppers": len(shoppers),
        "s_merchant": [s[0] + 1 for s in shoppers], "s_brand": [s[1] for s in shoppers],
        "s_sv": [s[2] for s in shoppers],
        "m_issuance": [m["issuance"] for m in merchants], "m_sv": [m["sv"] for m in merchants],
        "m_deposit": [m["deposit"] for m in merchants],
        "sv_issuance": plan["sv_issuance"], "burn": plan["burn"],
        "expires_at": FILL_EXPIRY,
    }
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SELECT coalesce(max(id), 0) FROM ledger_transaction")
        (after,) = cursor.fetchone()
        params["after"] = after
        cursor.execute(
            "INSERT INTO ledger_transaction (kind, client, idempotency_key, fingerprint, "
            "metadata, occurred_at, created_at) "
            "SELECT 'purchase', 'bench-sql', 'sql-' || g, '', "
            "jsonb_build_object('order_ref', 'o-sql-' || g), now(), now() "
            "FROM generate_series(1, %(n)s) g", params,
        )
        cursor.execute(
            "INSERT INTO ledger_posting (transaction_id, leg, account_id, asset_id, amount, "
            "expires_at) "
            "SELECT x.txn, x.leg, x.account, a.asset_id, x.amount, "
            "       CASE WHEN x.leg = 1 THEN %(expires_at)s::timestamptz END FROM ("
            "  SELECT t.id AS txn, l.leg,"
            "    CASE l.leg WHEN 0 THEN (%(m_issuance)s::bigint[])[t.m]"
            "      WHEN 1 THEN (%(s_brand)s::bigint[])[t.s] WHEN 2 THEN %(sv_issuance)s"
            "      WHEN 3 THEN (%(s_sv)s::bigint[])[t.s] WHEN 4 THEN (%(m_sv)s::bigint[])[t.m]"
            "      WHEN 5 THEN (%(m_deposit)s::bigint[])[t.m] ELSE %(burn)s END AS account,"
            "    CASE l.leg WHEN 0 THEN -10 * t.r WHEN 1 THEN 10 * t.r WHEN 2 THEN -12 * t.r"
            "      WHEN 3 THEN 10 * t.r WHEN 4 THEN 2 * t.r WHEN 5 THEN -t.r ELSE t.r END"
            "      AS amount"
            "  FROM (SELECT id, s, (%(s_merchant)s::int[])[s] AS m,"
            "               ((id %% 500) + 1) * 100 AS r"
            "          FROM (SELECT id, (id %% %(shoppers)s) + 1 AS s FROM ledger_transaction"
            "                 WHERE client = 'bench-sql' AND id > %(after)s) ids) t"
            "  CROSS JOIN generate_series(0, 6) AS l(leg)"
            ") x JOIN ledger_account a ON a.id = x.account", params,
        )
        cursor.execute(
            "UPDATE ledger_account a SET balance = a.balance + s.total FROM ("
            "  SELECT account_id, sum(amount) AS total FROM ledger_posting"
            "   WHERE transaction_id > %(after)s GROUP BY account_id) s "
            "WHERE a.id = s.account_id AND a.bounded", params,
        )
        cursor.execute(
            "INSERT INTO ledger_lot (account_id, expires_at, remaining) "
            "SELECT p.account_id, p.expires_at, sum(p.amount) FROM ledger_posting p "
            "  JOIN ledger_account a ON a.id = p.account_id AND a.tracks_lots "
            " WHERE p.transaction_id > %(after)s AND p.amount > 0 "
            " GROUP BY p.account_id, p.expires_at "
            "ON CONFLICT (account_id, expires_at) "
            "DO UPDATE SET remaining = ledger_lot.remaining + EXCLUDED.remaining", params,
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE")
    return missing


def _backend_cpu(pid: int) -> float | None:
    """Seconds of CPU the server process ``pid`` has used, or None where /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(seconds: float, plan: dict, seed: str, results, start) -> None:
    from django.db import connection

    from ledger import services
    from ledger.models import Account

    connection.close()  # never share the parent's connection
    accounts = services.accounts_by_id(
        {plan["sv_issuance"], plan["burn"]}
        | {pk for m in plan["merchants"] for pk in (m["issuance"], m["deposit"], m["sv"])}
        | {pk for s in plan["shoppers"] for pk in s[1:]}
    )
    rng = random.Random(seed)
    count = 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    start.wait()  # every client has loaded its accounts: the clock starts for all at once
    server_before, client_before = _backend_cpu(backend), time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        merchant_index, brand_wallet, sv_wallet = rng.choice(plan["shoppers"])
        m = plan["merchants"][merchant_index]
        r = rng.randint(1, 500) * 100  # rebate in SHARED/SV minor units (CNY 10 to 5,000)
        points = r * 10
        legs = [
            services.Leg(accounts[m["issuance"]], -points),
            services.Leg(accounts[brand_wallet], points),
            services.Leg(accounts[plan["sv_issuance"]], -12 * r),
            services.Leg(accounts[sv_wallet], 10 * r),
            services.Leg(accounts[m["sv"]], 2 * r),
            services.Leg(accounts[m["deposit"]], -r),
            services.Leg(accounts[plan["burn"]], r),
        ]
        services.transaction_post(kind="purchase", legs=legs, client=f"bench-{seed}",
                                  idempotency_key=f"{seed}-{count}",
                                  metadata={"order_ref": f"o-{seed}-{count}"})
        count += 1
    client_cpu = time.process_time() - client_before
    server_after = _backend_cpu(backend)
    server_cpu = None if server_before is None or server_after is None else (
        server_after - server_before)
    assert Account  # imported so the app registry is warm before the clock starts
    results.put((count, client_cpu, server_cpu))


def ledger_tps(clients: int, plan: dict) -> tuple[float, float, float | None]:
    """Transactions per second, and the client and server CPU milliseconds per transaction."""
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start = ctx.Barrier(clients)
    from django.db import connections

    connections.close_all()
    run = time.strftime("%H%M%S")
    procs = [ctx.Process(target=client,
                         args=(SECONDS, plan, f"{run}-{clients}-{i}", results, start))
             for i in range(clients)]
    for proc in procs:
        proc.start()
    outcomes = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    total = sum(count for count, _client, _server in outcomes)
    client_ms = 1000 * sum(cpu for _count, cpu, _server in outcomes) / total
    server = [cpu for _count, _client, cpu in outcomes]
    server_ms = None if None in server else 1000 * sum(server) / total
    return total / SECONDS, client_ms, server_ms


def main() -> dict:
    scratch_database("bench_ledger")
    django_setup()
    plan = setup()
    fill_journal(plan, HISTORY)
    pgbench_init("bench_pgbench", scale=8)
    rows = []
    for clients in CLIENTS:
        ours, client_ms, server_ms = ledger_tps(clients, plan)
        theirs = pgbench_tps(clients, SECONDS, "bench_pgbench", scale=8)
        rows.append({"clients": clients, "ledger_tps": round(ours), "pgbench_tps": round(theirs),
                     "ratio": round(ours / theirs, 2), "client_cpu_ms": round(client_ms, 3),
                     "server_cpu_ms": None if server_ms is None else round(server_ms, 3)})
    from ledger import verification

    # The benchmark's ledger must still be consistent (the log is not anchored here).
    for check in (verification.check_transactions_balance, verification.check_account_balances):
        problems = list(check())
        assert not problems, problems[:5]
    print(f"\nledger_post ({SECONDS}s per point, purchase-shaped 7-leg transactions, "
          f"on a journal of {HISTORY:,} transactions before the first point)")
    print(f"{'clients':>7} {'ledger tx/s':>12} {'pgbench tps':>12} {'ratio':>6} "
          f"{'client CPU ms/tx':>17} {'server CPU ms/tx':>17}")
    for row in rows:
        server = "n/a" if row["server_cpu_ms"] is None else f"{row['server_cpu_ms']:.3f}"
        print(f"{row['clients']:>7} {row['ledger_tps']:>12} {row['pgbench_tps']:>12} "
              f"{row['ratio']:>6} {row['client_cpu_ms']:>17.3f} {server:>17}")
    return {"ledger_post": rows}


if __name__ == "__main__":
    main()
