"""The embedded demo and local development: SQLite unless DATABASE_URL says otherwise."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
INTERNAL_IPS = ["127.0.0.1"]
