"""Load against gunicorn on PostgreSQL: the purchase API and the storefront wallet page at
rising concurrency, with a trivial JSON endpoint of the same server (``/api/v1/``, no
database) as the reference measured in the same run.

wrk (Debian's package) drives the load; its Lua script gives every purchase its own
Idempotency-Key. Reported: requests/s, p50/p90/p99 latency, and errors (non-2xx responses,
socket errors and timeouts) at each level, and the CPU each request cost the web workers,
PostgreSQL and Redis (from /proc); the ratios against the trivial endpoint go in the README.
Goal (issue 10): purchases at >= 1/3 of the trivial endpoint's throughput, p99 under 10x its
p99, no errors.

Fair by construction: one gunicorn (the same workers, settings and Redis-backed rate limits,
``DEBUG`` off, persistent database connections) serves all three endpoints; every endpoint
is warmed up before it is measured; wrk runs the same way for each (a Lua script only where
the request must change: the purchase's key and member). The database is measured as
production keeps it: vacuumed, analyzed and checkpointed after the set-up (``settle``).

As in production: the Celery broker is Redis (``BENCH_BROKER_URL``, by default the Redis
database after the cache's), so what a purchase leaves for later (its tasks and its
purchase.recorded webhook, one message, and only when a task or an endpoint could apply) is
queued, never run inside the request. No Celery worker runs during the measurement: in
production workers run on their own machines (docs/scaling.md), and here one would take the
two cores the web tier is measured on. The messages queued are counted and printed, then
dropped; ``bench/request_cost.py --drain`` measures what a worker spends on them.

Run: ``python -m bench.load`` (``make bench`` runs it with the others). Settings:
``BENCH_SECONDS`` per point (10), cut into ``BENCH_LOAD_SLICES`` slices (3) taken in turn
with the other endpoints', ``BENCH_LOAD_LEVELS`` connections (``1,8,32``),
``BENCH_WORKERS`` gunicorn sync workers (2 x cores + 1), ``BENCH_LOAD_DATABASE`` the scratch
database (``bench_load``), ``BENCH_REDIS_URL`` the cache (``REDIS_URL``, else database 0 of
the local Redis), ``BENCH_BROKER_URL`` the broker, ``BENCH_PORT``.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import ROOT, django_setup, scratch_database

PORT = int(os.environ.get("BENCH_PORT", "8765"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
# Each point's seconds are cut into slices, taken in turn (trivial, purchase, wallet, then
# again): the machine's speed drifts by up to a third from one minute to the next here, and
# taken in turn every endpoint meets the same drift.
SLICES = max(1, int(os.environ.get("BENCH_LOAD_SLICES", "3")))
LEVELS = tuple(int(n) for n in os.environ.get("BENCH_LOAD_LEVELS", "1,8,32").split(","))
# gunicorn's own advice for sync workers: (2 x cores) + 1.
WORKERS = int(os.environ.get("BENCH_WORKERS", str((os.cpu_count() or 2) * 2 + 1)))
DATABASE = os.environ.get("BENCH_LOAD_DATABASE", "bench_load")
REDIS_URL = os.environ.get("BENCH_REDIS_URL",
                           os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


def _next_database(url: str) -> str:
    """The Redis database after ``url``'s: the broker's, apart from the cache's."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{number + 1}"))


# The Celery broker, as in production (docs/scaling.md): after-commit tasks are queued on it,
# never run inside the request.
BROKER_URL = os.environ.get("BENCH_BROKER_URL", _next_database(REDIS_URL))
WARM_UP_SECONDS = 2
PLAN_FILE = Path(tempfile.gettempdir()) / f"{DATABASE}.plan.json"
# A response slower than this is a wrk timeout (an error); below it, it shows in the latencies.
WRK_TIMEOUT = os.environ.get("BENCH_WRK_TIMEOUT", "10s")

PURCHASE_LUA = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  thread_id = tid
  math.randomseed(tid)
end
request = function()
  counter = counter + 1
  local key = string.format("%s-%d-%d", RUN, thread_id, counter)
  local member = MEMBERS[math.random(#MEMBERS)]
  local api_key = KEYS[math.random(#KEYS)]
  local body = string.format('{"member": "%s", "amount": "1.00", "order_ref": "%s"}', member, key)
  return wrk.format("POST", "/api/v1/purchases",
    {["Content-Type"] = "application/json", ["Authorization"] = "Api-Key " .. api_key,
     ["Idempotency-Key"] = key}, body)
end
"""



def bench_environment(database_url: str) -> dict:
    """The server's settings, also used by ``bench/request_cost.py``. The limits are raised
    out of the way (the benchmark is one client), but still counted: every request pays for
    its rate limit as it would in production."""
    return {"DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "false",
            "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
            "CELERY_BROKER_URL": BROKER_URL,
            "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "600"),
            "API_THROTTLE_ANON": "100000000/min", "API_THROTTLE_USER": "100000000/min",
            "API_THROTTLE_API_KEY": "100000000/min", "ALLOWED_HOSTS": "127.0.0.1,localhost"}


def prepare() -> dict:
    """Demo data on a scratch database, a well-funded merchant key, a signed-in shopper."""
    url = scratch_database(DATABASE)
    os.environ.update(bench_environment(url))
    django_setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from alliance.models import User
    from merchants import services as merchant_services
    from merchants.models import Merchant

    call_command("seed_demo", stdout=open(os.devnull, "w"))
    # Every demo merchant's till, well funded, and 300 shoppers: purchases spread as they
    # would over a district's tills.
    keys = []
    for merchant in Merchant.objects.order_by("pk"):
        merchant_services.shared_allocate(merchant=merchant, amount=10**13,
                                          idempotency_key=f"bench-load-alloc-{merchant.pk}")
        merchant_services.deposit_top_up(merchant=merchant, amount=10**13,
                                         idempotency_key=f"bench-load-topup-{merchant.pk}")
        keys.append(merchant_services.api_key_create(merchant=merchant, name="bench",
                                                     scopes=["purchases"])[1])
    members = [User.objects.create_user(email=f"load{i}@bench.example", phone=None)
               for i in range(300)]
    # Each shopper has bought once at each merchant: the till's steady state is a returning
    # shopper. A first purchase at a merchant also opens the shopper's wallets and queues the
    # first-purchase reward; bench/request_cost.py prints what it costs apart.
    from points.services import purchase_record

    for merchant in Merchant.objects.order_by("pk"):
        for shopper in members:
            purchase_record(merchant=merchant, shopper=shopper, amount=Decimal("1.00"),
                            order_ref="first", idempotency_key=f"bench-first-{shopper.pk}",
                            fingerprint="bench-first")
    members = [shopper.member_code for shopper in members]
    settle(url)
    # Signed in as Django's login() does it: a session made by hand lacked what the site
    # checks, and the "wallet" measured before was the visitors' welcome page.
    signed_in = Client()
    signed_in.force_login(User.objects.get(email="alice@example.com"),
                          backend="django.contrib.auth.backends.ModelBackend")
    plan = {"keys": keys, "members": members,
            "session": signed_in.cookies[settings.SESSION_COOKIE_NAME].value}
    # For bench/request_cost.py --keep, which measures again on this database.
    PLAN_FILE.write_text(json.dumps(plan))
    return plan


def settle(url: str) -> None:
    """The database as production's runs: its statistics current and the set-up's writes
    vacuumed and checkpointed. Otherwise the measurement pays for the set-up (autovacuum and
    analyze of the tables it filled, hint bits, the checkpoint of its pages) and the
    workers' cached plans are made on tables the planner has never seen."""
    subprocess.run(["psql", url, "-q", "-c", "VACUUM (ANALYZE)", "-c", "CHECKPOINT"],
                   check=True)


def start_server(env: dict) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{PORT}",
         "--workers", str(WORKERS), "--worker-class", "sync", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/", timeout=1)
            return server
        except OSError:
            time.sleep(0.2)
    os.killpg(server.pid, signal.SIGTERM)
    raise RuntimeError("gunicorn did not start")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(path: str, connections: int, script: str | None, headers: list[str],
            seconds: int = SECONDS) -> dict:
    """One wrk run. Errors are wrk's own counts: responses of status 400 and above
    ("Non-2xx or 3xx responses") plus socket errors (connect, read, write, timeout)."""
    threads = min(connections, 2)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", WRK_TIMEOUT, "--latency"]
    script_path = None
    if script is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(script)
        script_path = handle.name
        command += ["-s", script_path]
    for header in headers:
        command += ["-H", header]
    try:
        out = subprocess.run([*command, f"http://127.0.0.1:{PORT}{path}"], check=True,
                             capture_output=True, text=True).stdout
    finally:
        if script_path:
            os.unlink(script_path)
    latency = {p: _ms(v, u) for p, v, u in
               re.findall(r"^\s+(50|75|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": round(rps), "p50": latency.get("50"), "p99": latency.get("99"),
            "p90": latency.get("90"), "requests": requests,
            "errors": socket_errors + (int(non2xx.group(1)) if non2xx else 0)}


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server_pid: int) -> dict:
    """CPU used so far by the server's workers (its process group), by PostgreSQL (every
    server process: backends, WAL writer, checkpointer) and by Redis, from /proc."""
    used = {"web": 0, "db": 0, "redis": 0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:  # gone since the listing
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        if int(fields[2]) == server_pid:  # process group
            used["web"] += ticks
        elif name.startswith("postgres"):
            used["db"] += ticks
        elif name.startswith("redis-server"):
            used["redis"] += ticks
    return {role: ticks / TICKS for role, ticks in used.items()}


def combine(slices: list[dict], cpu: dict) -> dict:
    """One point from its slices: requests/s over all of them, the median slice's p50 and
    p90, the worst slice's p99, every error; and the CPU per request (ms) by role."""
    requests = sum(s["requests"] for s in slices)
    seconds = sum(s["requests"] / s["rps"] for s in slices if s["rps"])
    middle = sorted(slices, key=lambda s: s["p50"] or 0)[len(slices) // 2]
    p99s = [s["p99"] for s in slices if s["p99"] is not None]
    return {"rps": round(requests / seconds) if seconds else 0, "p50": middle["p50"],
            "p99": max(p99s) if p99s else None, "p90": middle["p90"],
            "errors": sum(s["errors"] for s in slices),
            "cpu_ms": {role: round(used / requests * 1000, 2) if requests else None
                       for role, used in cpu.items()}}


def redis_check(url: str) -> None:
    """The rate limits count in Redis, as in production; an unreachable Redis would make
    every request wait for the cache's connect timeout, so refuse to measure that."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"bench/load.py needs Redis at {url} (BENCH_REDIS_URL): {exc}") from None


def main() -> dict:
    if not shutil.which("wrk"):
        raise SystemExit("bench/load.py needs wrk: apt-get install wrk")
    redis_check(REDIS_URL)
    plan = prepare()
    redis_check(BROKER_URL)
    import redis

    broker = redis.Redis.from_url(BROKER_URL)
    broker.delete("celery")  # the default queue: what seed_demo and the set-up left
    env = {**os.environ, **bench_environment(os.environ["DATABASE_URL"])}
    server = start_server(env)
    run = f"r{int(time.time())}"
    lua_list = lambda values: "{" + ", ".join(f'"{v}"' for v in values) + "}"  # noqa: E731
    purchase = (f'MEMBERS = {lua_list(plan["members"])}\n'
                f'KEYS = {lua_list(plan["keys"])}\n' + PURCHASE_LUA)
    endpoints = {
        "trivial": ("/api/v1/", lambda tag: None, []),
        "purchase": ("/api/v1/purchases", lambda tag: f'RUN = "{run}-{tag}"\n' + purchase, []),
        "wallet": ("/", lambda tag: None, [f"Cookie: sessionid={plan['session']}"]),
    }
    rows = []
    try:
        # The session signs the shopper in: the page measured is the wallet, not the welcome.
        wallet = urllib.request.Request(f"http://127.0.0.1:{PORT}/",
                                        headers={"Cookie": f"sessionid={plan['session']}"})
        with urllib.request.urlopen(wallet, timeout=10) as response:  # noqa: S310 (http)
            if b'id="wallet-total"' not in response.read():
                raise RuntimeError("the wallet page did not show the shopper's wallet")
        # Every worker's first requests import, connect and fill caches: not measured.
        for name, (path, script, headers) in endpoints.items():
            run_wrk(path, max(LEVELS), script(f"warm-{name}"), headers, WARM_UP_SECONDS)
        seconds = max(2, round(SECONDS / SLICES))
        for connections in LEVELS:
            slices = {name: [] for name in endpoints}
            cpu = {name: {"web": 0.0, "db": 0.0, "redis": 0.0} for name in endpoints}
            for turn in range(SLICES):
                for name, (path, script, headers) in endpoints.items():
                    before = cpu_seconds(server.pid)
                    slices[name].append(run_wrk(path, connections,
                                                script(f"{connections}-{turn}"), headers,
                                                seconds))
                    after = cpu_seconds(server.pid)
                    for role in after:
                        cpu[name][role] += after[role] - before[role]
            rows.append({"connections": connections,
                         **{name: combine(slices[name], cpu[name]) for name in endpoints}})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    queued = broker.llen("celery")
    broker.delete("celery")
    print(f"\nload ({SLICES} x {seconds}s per point, taken in turn; gunicorn {WORKERS} sync "
          f"workers, PostgreSQL, rate limits in Redis)")
    print(f"{'conns':>5} {'endpoint':>9} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6} {'vs trivial':>10} {'p99 vs':>7}   CPU ms per request: web db redis")
    for row in rows:
        base = row["trivial"]
        for name in endpoints:
            r = row[name]
            ratio = r["rps"] / base["rps"] if base["rps"] else 0
            p99_ratio = (r["p99"] or 0) / base["p99"] if base["p99"] else 0
            print(f"{row['connections']:>5} {name:>9} {r['rps']:>7} {r['p50'] or 0:>7.1f} "
                  f"{r['p90'] or 0:>7.1f} {r['p99'] or 0:>7.1f} {r['errors']:>6} {ratio:>10.2f} "
                  f"{p99_ratio:>7.1f}   {r['cpu_ms']['web']:>5} {r['cpu_ms']['db']:>5} "
                  f"{r['cpu_ms']['redis']:>5}")
    for row in rows:
        buy, base = row["purchase"], row["trivial"]
        met = (base["rps"] and buy["rps"] * 3 >= base["rps"] and buy["p99"] is not None
               and base["p99"] and buy["p99"] < 10 * base["p99"] and not buy["errors"])
        print(f"goal at {row['connections']} connections (purchases >= 1/3 of trivial req/s, "
              f"p99 < 10x, no errors): {'met' if met else 'not met'}")
    print(f"follow-up messages queued for the worker (none ran): {queued}")
    print(json.dumps(rows))
    return {"load": rows}


if __name__ == "__main__":
    main()
