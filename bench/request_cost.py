"""CPU per request, web process and database backend apart: the trivial endpoint, the
purchase API and the wallet page, each sent N times through Django's WSGI handler in this
process (no server, no socket), with the same settings as ``bench/load.py``'s gunicorn.

A measure that holds on a busy machine, unlike throughput: the web side is this process's
``time.process_time()``; the database side is the CPU its PostgreSQL backend used
(``/proc/<pid>/stat`` of ``pg_backend_pid()``, 10 ms ticks, so N should be a few hundred).
Their sum is what one request costs the machine's cores; its ratio to the trivial endpoint's
bounds the throughput ratio ``bench/load.py`` can show when the cores are the limit.

After-commit Celery tasks are sent to the broker (``CELERY_BROKER_URL``, as in production)
and not run here; with ``--drain`` the queued follow-ups are then run in this process and
their CPU per purchase is printed apart: the worker's share, which production spends on the
worker nodes.

Run: ``python -m bench.request_cost`` (``BENCH_REQUESTS`` per round, default 400, the least
costly of ``BENCH_ROUNDS`` (3) rounds kept;
``BENCH_LOAD_DATABASE``, ``BENCH_REDIS_URL``, ``BENCH_BROKER_URL`` as for ``bench/load.py``;
``--profile`` prints a cProfile of the purchases; ``--keep`` reuses the scratch database).
"""

import cProfile
import io
import json
import os
import pstats
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

from bench.common import BASE_URL, django_setup
from bench.load import (
    BROKER_URL,
    DATABASE,
    PLAN_FILE,
    REDIS_URL,
    bench_environment,
    prepare,
    redis_check,
)

N = int(os.environ.get("BENCH_REQUESTS", "400"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def main(argv: list[str]) -> None:
    redis_check(REDIS_URL)
    if "--keep" in argv and PLAN_FILE.exists():
        parts = urlsplit(BASE_URL)
        os.environ.update(bench_environment(urlunsplit(parts._replace(path=f"/{DATABASE}"))))
        django_setup()
        plan = json.loads(PLAN_FILE.read_text())
    else:
        plan = prepare()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    assert not settings.CELERY_TASK_ALWAYS_EAGER, "the broker must be set, as in production"
    import redis
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()

    application = get_wsgi_application()

    def call(method: str, path: str, body: bytes = b"", **headers) -> tuple[int, bytes]:
        """One request through the WSGI application, as gunicorn makes it."""
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
                   "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
                   "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                   "wsgi.errors": sys.stderr, "CONTENT_LENGTH": str(len(body)), **headers}
        status = []
        chunks = application(environ, lambda code, _headers, *_: status.append(code))
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return int(status[0].split()[0]), content

    keys = plan["keys"]
    members = plan["members"]
    run = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))

    def buy(member: str | None = None, api_key: str | None = None):
        n = next(counter)
        key = f"{run}-{n}"
        body = json.dumps({"member": member or members[(n * 7) % len(members)],
                           "amount": "1.00", "order_ref": key}).encode()
        status, content = call("POST", "/api/v1/purchases", body,
                               CONTENT_TYPE="application/json",
                               HTTP_AUTHORIZATION=f"Api-Key {api_key or keys[n % len(keys)]}",
                               HTTP_IDEMPOTENCY_KEY=key)
        assert status == 201, content

    def get_trivial():
        assert call("GET", "/api/v1/")[0] == 200

    def get_wallet():
        status, content = call("GET", "/", HTTP_COOKIE=f"sessionid={plan['session']}")
        # the shopper's wallet, not the visitors' welcome page of a session gone stale
        assert status == 200 and b'id="wallet-total"' in content, status

    # bench/load.py's set-up made every shopper's first purchase at each merchant already;
    # a hundred newcomers' first purchases are measured apart (their wallets opened, the
    # first-purchase reward queued).
    from alliance.models import User

    newcomers = [User.objects.create_user(email=f"cost{i}-{run}@bench.example",
                                          phone=None).member_code for i in range(100)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    web, db = time.process_time(), backend_cpu(pid)
    for member in newcomers:
        buy(member, keys[0])
    first = ((time.process_time() - web) / len(newcomers) * 1000,
             (backend_cpu(pid) - db) / len(newcomers) * 1000)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    results: dict[str, tuple] = {}
    endpoints = (("trivial", get_trivial), ("purchase", buy), ("wallet", get_wallet))
    for _name, request in endpoints:
        for _ in range(20):
            request()
    # Rounds taken in turn, the least costly kept: other processes on the machine only ever
    # add to a round's cost.
    for _round in range(ROUNDS):
        for name, request in endpoints:
            profiler = (cProfile.Profile() if ("--profile" in argv and name == "purchase")
                        else None)
            web, db, wall = time.process_time(), backend_cpu(pid), time.perf_counter()
            if profiler:
                profiler.enable()
            for _ in range(N):
                request()
            if profiler:
                profiler.disable()
            web, db = time.process_time() - web, backend_cpu(pid) - db
            wall = time.perf_counter() - wall
            cost = (web / N * 1000, db / N * 1000, wall / N * 1000)
            if name not in results or sum(cost[:2]) < sum(results[name][:2]):
                results[name] = cost
            if profiler:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    queued = broker.llen("celery")
    print(f"\nCPU per request, in-process WSGI (ms; the least of {ROUNDS} rounds of {N})")
    print(f"{'endpoint':>9} {'web':>6} {'db':>6} {'total':>6} {'wall':>6} {'vs trivial':>10}")
    base = results["trivial"][0] + results["trivial"][1]
    for name, (web, db, wall) in results.items():
        print(f"{name:>9} {web:>6.2f} {db:>6.2f} {web + db:>6.2f} {wall:>6.2f} "
              f"{(web + db) / base:>10.1f}")
    web, db = first
    print(f"{'first':>9} {web:>6.2f} {db:>6.2f} {web + db:>6.2f} {'':>6} "
          f"{(web + db) / base:>10.1f}   (a shopper's first purchase anywhere)")
    print(f"follow-up messages queued on the broker: {queued}")
    if "--drain" in argv and queued:
        drain(broker, pid)


def drain(broker, pid: int) -> None:
    """Run the queued tasks here, as a worker would, and print their CPU per task."""
    import base64

    from celery import current_app

    count, web, db = 0, time.process_time(), backend_cpu(pid)
    while (raw := broker.rpop("celery")) is not None:
        message = json.loads(raw)
        headers = message["headers"]
        body = json.loads(base64.b64decode(message["body"]))
        args, kwargs = body[0], body[1]
        current_app.tasks[headers["task"]].apply(args=args, kwargs=kwargs)
        count += 1
    web, db = time.process_time() - web, backend_cpu(pid) - db
    print(f"worker: {count} tasks, {web / count * 1000:.2f} ms web + {db / count * 1000:.2f} ms "
          f"database CPU each")


if __name__ == "__main__":
    main(sys.argv[1:])
