"""Anchoring throughput and proof latency at 1,000,000 transactions.

In one scratch database (``bench_anchor``, or ``BENCH_ANCHOR_DATABASE``), one run:

1. posting: purchase-shaped 7-leg transactions through ``ledger.services.transaction_post``
   from 8 client processes for ``BENCH_SECONDS`` (the same clients as ``bench/ledger_post``),
   so the ratio below compares figures measured on the same machine in the same run;
2. the journal is filled up to ``BENCH_ANCHOR_LEAVES`` (default 1,000,000) transactions of the
   same shape with ``INSERT ... SELECT generate_series`` straight into the journal tables;
3. anchoring: ``ledger.log_services.log_anchor()`` logs all of them (leaves per second);
4. proofs: the server time of ``GET /api/v1/log/proof/inclusion`` (and of a consistency proof
   and a whole receipt) at that tree size, through Django's full request stack;
5. the log's ``verify_ledger`` checks over the whole log.

Run: ``python -m bench.anchor`` (``make bench`` runs it with the others).
"""

import os
import random
import statistics
import time

from bench.common import django_setup, scratch_database

LEAVES = int(os.environ.get("BENCH_ANCHOR_LEAVES", "1000000"))
DATABASE = os.environ.get("BENCH_ANCHOR_DATABASE", "bench_anchor")
PROOFS = 200
POSTING_CLIENTS = 8


def _timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms, max {max(times):.2f} ms"


def main() -> dict:
    from ledger.note import generate_signer

    scratch_database(DATABASE)
    os.environ["LOG_SIGNER_KEY"] = generate_signer("bench.example/points-log")[0]
    django_setup()

    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from bench.ledger_post import SECONDS, fill_journal, ledger_tps, setup
    from ledger import log_selectors, log_services, log_verification
    from ledger.models import LogLeaf, Transaction

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    plan = setup()
    posting_tps = ledger_tps(POSTING_CLIENTS, plan)
    connection.close()

    started = time.perf_counter()
    inserted = fill_journal(plan, LEAVES)
    fill_seconds = time.perf_counter() - started
    total = Transaction.objects.count()

    started = time.perf_counter()
    result = log_services.log_anchor()
    anchor_seconds = time.perf_counter() - started
    assert result.leaves == total == LogLeaf.objects.count()
    size = result.checkpoint.size
    leaves_per_second = total / anchor_seconds

    rng = random.Random(9162)
    client = Client()
    proof_times = _timed(lambda: _ok(client.get(
        "/api/v1/log/proof/inclusion", {"index": rng.randrange(size), "size": size}
    )), PROOFS)
    selector_times = _timed(lambda: log_selectors.inclusion_proof_get(
        index=rng.randrange(size), size=size), PROOFS)
    floor_times = _timed(lambda: _ok(client.get("/api/v1/log/key")), PROOFS)
    consistency_times = _timed(lambda: _ok(client.get(
        "/api/v1/log/proof/consistency", {"first": rng.randrange(1, size), "second": size}
    )), 50)
    transactions = list(Transaction.objects.values_list("pk", flat=True)[:: max(1, total // 50)])
    receipt_times = _timed(lambda: log_selectors.receipt_get(
        transaction=Transaction.objects.get(pk=rng.choice(transactions))), 50)

    checks = {}
    for name, check in log_verification.LOG_CHECKS:
        started = time.perf_counter()
        problems = list(check())
        checks[name] = time.perf_counter() - started
        assert not problems, problems[:3]

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('ledger_logleaf') + "
                       "pg_total_relation_size('ledger_lognode')")
        (log_bytes,) = cursor.fetchone()

    ratio = leaves_per_second / posting_tps
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nanchor ({total:,} transactions of 7 legs; {inserted:,} bulk-inserted in "
          f"{fill_seconds:.0f} s; {os.cpu_count()} CPUs, load average {load})")
    print(f"posting, {POSTING_CLIENTS} clients, {SECONDS} s:   {posting_tps:>10,.0f} tx/s")
    print(f"anchoring, one writer:            {leaves_per_second:>10,.0f} leaves/s "
          f"({anchor_seconds:.1f} s, {ratio:.0f}x posting)")
    print(f"inclusion proof at size {size:,}, server time over HTTP stack: "
          f"{_summary(proof_times)}")
    print(f"inclusion proof, selector only:   {_summary(selector_times)}")
    print(f"the HTTP stack alone (GET /api/v1/log/key): {_summary(floor_times)}")
    print(f"consistency proof over HTTP stack: {_summary(consistency_times)}")
    print(f"receipt (leaf rebuilt + proof):   {_summary(receipt_times)}")
    print(f"log storage: {log_bytes / total:.0f} bytes per leaf (leaves + subtree hashes)")
    for name, seconds in checks.items():
        print(f"verify_ledger '{name}': {seconds:.1f} s")
    return {"anchor": {
        "transactions": total, "posting_tps": round(posting_tps),
        "anchor_leaves_per_second": round(leaves_per_second), "ratio": round(ratio, 1),
        "proof_ms_median": round(statistics.median(proof_times), 2),
    }}


def _ok(response):
    assert response.status_code == 200, response.content[:200]
    return response


if __name__ == "__main__":
    main()
