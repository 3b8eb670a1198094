"""A worker knows every task the web tier queues: ``celery -A config worker`` imports the apps'
``tasks`` modules only, so task modules of other names must be imported by their app."""

import subprocess
import sys

from django.conf import settings

QUEUED_FROM_REQUESTS = [
    "merchants.webhook_tasks.webhook_deliver",
    "points.purchase_tasks.purchase_followups_task",
]


def test_a_fresh_worker_process_registers_the_tasks_requests_queue():
    # given a process that starts as a worker does: Django set up, the default modules
    script = (
        "import django; django.setup()\n"
        "from config.celery import app\n"
        "app.loader.import_default_modules()\n"
        "print('\\n'.join(sorted(app.tasks)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True, cwd=settings.BASE_DIR,
                         env={"DJANGO_SETTINGS_MODULE": "config.settings.test",
                              "PATH": "/usr/bin:/bin"}).stdout.split()
    # then every task that requests queue is registered
    assert set(QUEUED_FROM_REQUESTS) <= set(out)
