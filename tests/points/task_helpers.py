"""Helpers for the earning and task tests: a task, a wallet balance."""

from ledger.models import Account
from points import tasks_services
from points.models import Task


def make_task(merchant, **fields) -> Task:
    """A task of ``merchant`` (None: the alliance): a once-a-day check-in unless told."""
    values = {"kind": Task.Kind.CHECK_IN, "name_zh": "每日签到", "name_en": "Daily check-in",
              "reward": 10, "daily_limit": 1, **fields}
    return tasks_services.task_save(merchant=merchant, fields=values)


def balance(code: str, **holder) -> int:
    account = Account.objects.filter(asset__code=code, kind="wallet", **holder).first()
    return account.balance if account else 0
