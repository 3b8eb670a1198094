"""What the benchmarks share: a scratch PostgreSQL database per benchmark, Django set up on it."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/alliance")


def scratch_database(name: str) -> str:
    """Drop and recreate database ``name`` on the server of DATABASE_URL, migrate it, and
    point this process's DATABASE_URL at it. Returns the URL."""
    parts = urlsplit(BASE_URL)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin = urlunsplit(parts._replace(path="/postgres"))
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", admin, "-q", "-c", sql], check=True)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.local",
           "DEBUG": "false"}
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True,
                   env=env, cwd=ROOT)
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.local",
                       "DEBUG": "false"})
    os.environ.pop("CELERY_BROKER_URL", None)
    return url


def django_setup() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def pgbench_tps(clients: int, seconds: int, database: str, scale: int) -> float:
    """TPC-B-like throughput of pgbench against ``database`` (initialised at ``scale``)."""
    parts = urlsplit(BASE_URL)
    host, port, user = parts.hostname or "127.0.0.1", str(parts.port or 5432), parts.username
    common = ["-h", host, "-p", port, "-U", user or "postgres"]
    out = subprocess.run(
        ["pgbench", *common, "-n", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
         "-T", str(seconds), database],
        check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    raise RuntimeError(f"pgbench printed no tps:\n{out}")


def pgbench_init(database: str, scale: int) -> None:
    parts = urlsplit(BASE_URL)
    admin = urlunsplit(parts._replace(path="/postgres"))
    for sql in (f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                f'CREATE DATABASE "{database}"'):
        subprocess.run(["psql", admin, "-q", "-c", sql], check=True)
    subprocess.run(["pgbench", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
                    "-U", parts.username or "postgres", "-i", "-q", "-s", str(scale), database],
                   check=True, capture_output=True)
