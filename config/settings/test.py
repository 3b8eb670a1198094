"""Settings for the test suite: the real PostgreSQL and Redis of the machine.

``make test`` exports ``DATABASE_URL`` and ``CELERY_BROKER_URL``; the defaults below point at
the services every development and CI machine runs on 127.0.0.1.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/alliance")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/2")

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijklmnop"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "alliance.sms.OutboxSmsBackend"
# Tests run tasks in-process unless a test drives a real worker (it flips this on the app).
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
ACCOUNT_RATE_LIMITS = False
AXES_ENABLED = env.bool("AXES_ENABLED", default=False)
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}  # noqa: F405
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Off for the generated role tests; tests/test_security.py turns it on to prove it holds.
MFA_REQUIRED_FOR_STAFF = False
