"""The Celery app.

With ``CELERY_BROKER_URL`` unset (the embedded demo) tasks run in-process and eagerly; in
production they go through Redis to ``celery worker`` processes, and ``celery beat`` drives the
schedule in ``settings.CELERY_BEAT_SCHEDULE``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("alliance_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
