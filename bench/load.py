"""Load against gunicorn on PostgreSQL: the purchase API and the storefront wallet page at
rising concurrency, with a trivial JSON endpoint of the same server (``/api/v1/``, no
database) as the reference measured in the same run.

wrk (Debian's package) drives the load; its Lua scripts give every purchase its own
Idempotency-Key. Reported: requests/s, p50/p95/p99 latency, and errors (non-2xx or socket
errors) at each level; the ratios against the trivial endpoint go in the README.

Run: ``python -m bench.load`` (``make bench`` runs it with the others).
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

from bench.common import ROOT, django_setup, scratch_database

PORT = int(os.environ.get("BENCH_PORT", "8765"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
LEVELS = (1, 8, 32)
WORKERS = int(os.environ.get("BENCH_WORKERS", str((os.cpu_count() or 2) * 2)))

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

STATUS_LUA = """
local bad = 0
response = function(status, headers, body)
  if status >= 400 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("BAD_STATUS %d\\n", summary.errors.status))
end
"""


def prepare() -> dict:
    """Demo data on a scratch database, a well-funded merchant key, a signed-in shopper."""
    scratch_database("bench_load")
    django_setup()
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

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
    members = [User.objects.create_user(email=f"load{i}@bench.example", phone=None).member_code
               for i in range(300)]
    shopper = User.objects.get(email="alice@example.com")
    session = SessionStore()
    session["_auth_user_id"] = str(shopper.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = shopper.get_session_auth_hash()
    session.create()
    return {"keys": keys, "members": members, "session": session.session_key}


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


def run_wrk(path: str, connections: int, script: str, headers: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    threads = min(connections, 2)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{SECONDS}s",
               "--latency", "-s", handle.name]
    for header in headers:
        command += ["-H", header]
    out = subprocess.run([*command, f"http://127.0.0.1:{PORT}{path}"], check=True,
                         capture_output=True, text=True).stdout
    os.unlink(handle.name)
    latency = {p: _ms(v, u) for p, v, u in
               re.findall(r"^\s+(50|75|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)", out, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    bad = int(re.search(r"BAD_STATUS (\d+)", out).group(1)) if "BAD_STATUS" in out else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": round(rps), "p50": latency.get("50"), "p99": latency.get("99"),
            "p90": latency.get("90"),
            "errors": socket_errors + bad + (int(non2xx.group(1)) if non2xx else 0)}


def main() -> dict:
    if not shutil.which("wrk"):
        raise SystemExit("bench/load.py needs wrk: apt-get install wrk")
    plan = prepare()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "false",
           "API_THROTTLE_ANON": "100000000/min", "API_THROTTLE_USER": "100000000/min",
           "API_THROTTLE_API_KEY": "100000000/min", "ALLOWED_HOSTS": "127.0.0.1,localhost"}
    env.pop("CELERY_BROKER_URL", None)
    server = start_server(env)
    run = f"r{int(time.time())}"
    lua_list = lambda values: "{" + ", ".join(f'"{v}"' for v in values) + "}"  # noqa: E731
    purchase = (f'RUN = "{run}"\nMEMBERS = {lua_list(plan["members"])}\n'
                f'KEYS = {lua_list(plan["keys"])}\n' + PURCHASE_LUA + STATUS_LUA)
    rows = []
    try:
        for connections in LEVELS:
            trivial = run_wrk("/api/v1/", connections, STATUS_LUA, [])
            buy = run_wrk("/api/v1/purchases", connections,
                          purchase.replace(f'RUN = "{run}"', f'RUN = "{run}-{connections}"'), [])
            wallet = run_wrk("/", connections, STATUS_LUA,
                             [f"Cookie: sessionid={plan['session']}"])
            rows.append({"connections": connections, "trivial": trivial, "purchase": buy,
                         "wallet": wallet})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(f"\nload ({SECONDS}s per point, gunicorn {WORKERS} sync workers, PostgreSQL)")
    print(f"{'conns':>5} {'endpoint':>9} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6} {'vs trivial':>10}")
    for row in rows:
        for name in ("trivial", "purchase", "wallet"):
            r = row[name]
            ratio = r["rps"] / row["trivial"]["rps"] if row["trivial"]["rps"] else 0
            print(f"{row['connections']:>5} {name:>9} {r['rps']:>7} {r['p50'] or 0:>7.1f} "
                  f"{r['p90'] or 0:>7.1f} {r['p99'] or 0:>7.1f} {r['errors']:>6} {ratio:>10.2f}")
    print(json.dumps(rows))
    return {"load": rows}



if __name__ == "__main__":
    main()
