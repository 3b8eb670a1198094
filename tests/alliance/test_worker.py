"""A real Celery worker process consumes a task through the real Redis broker."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from alliance.models import WorkerHeartbeat
from alliance.tasks import worker_heartbeat
from config.celery import app

pytestmark = [pytest.mark.django_db, pytest.mark.worker, pytest.mark.xdist_group("worker")]

# The celery script installed next to the interpreter that runs the tests (the venv's).
CELERY = Path(sys.executable).with_name("celery")
WAIT_SECONDS = 60


def _broker_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def broker_url() -> str:
    url = settings.CELERY_BROKER_URL
    if not _broker_reachable(url):
        # On a developer's machine without Redis the test is skipped; CI must have it.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis broker {url} cannot be reached (CI=true: no skipping)")
        pytest.skip(f"Redis broker {url} cannot be reached")
    return url


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    port = db["PORT"] or "5432"
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{port}/{db['NAME']}"


@pytest.fixture
def worker(broker_url: str, transactional_db, tmp_path: Path):
    """A ``celery worker`` on a queue of its own, against the test database; killed after.

    ``transactional_db``: the test's rows must be committed for the worker to see them, and
    the worker's row for the test.
    """
    queue = f"test-worker-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        # The pytest database, not the one the settings name.
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    # A file, not a pipe: a pipe nobody reads can fill up and stall the worker.
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(CELERY), "-A", "config", "worker", "--pool=solo", "-Q", queue,
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield queue, process, log_path
    finally:
        log.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_a_worker_process_consumes_a_task_sent_through_redis(worker):
    # given a worker process listening on its own queue, and a task name nobody else uses
    queue, process, log_path = worker
    marker = f"pytest-{uuid.uuid4().hex[:8]}"
    assert not WorkerHeartbeat.objects.filter(worker=marker).exists()

    # when the heartbeat task is sent through the broker (not run in this process)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        worker_heartbeat.apply_async(args=[marker], queue=queue)
    finally:
        app.conf.task_always_eager = eager

    # then the worker writes the heartbeat row into the test database
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if WorkerHeartbeat.objects.filter(worker=marker).exists():
            break
        assert process.poll() is None, f"the worker died:\n{log_path.read_text()}"
        time.sleep(0.2)
    else:
        pytest.fail(f"no heartbeat within {WAIT_SECONDS}s; worker log:\n{log_path.read_text()}")
    assert WorkerHeartbeat.objects.get(worker=marker).seen_at is not None
