"""Reads about tasks for the storefront, its API and the merchant dashboard."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from ledger.models import Asset
from ledger.services import alliance_asset
from merchants.models import Merchant

from .models import Task, TaskCompletion, TaskProgress
from .tasks_services import local_day, unavailable_reason


@dataclass(frozen=True)
class TaskState:
    """A task as one shopper sees it now."""

    task: Task
    asset: Asset
    done_today: int
    done_total: int
    # "open", "done_today", "done" (lifetime limit), "budget_spent", "by_purchase"
    status: str

    @property
    def reward(self) -> Decimal:
        return self.asset.to_major(self.task.reward)

    @property
    def can_complete(self) -> bool:
        return self.status == "open"


def _reward_assets(tasks: list[Task]) -> dict[int | None, Asset]:
    merchants = {t.merchant_id for t in tasks if t.merchant_id}
    assets: dict[int | None, Asset] = {
        a.issuer_id: a for a in Asset.objects.filter(issuer__in=merchants,
                                                     family=Asset.Family.BRAND)
    }
    assets[None] = alliance_asset("SHARED")
    return assets


def open_tasks(*, at: datetime) -> QuerySet[Task]:
    """Tasks active at ``at`` of active merchants and of the alliance (audience not applied)."""
    return (Task.objects.select_related("merchant")
            .filter(active=True)
            .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=at))
            .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
            .filter(Q(merchant__isnull=True) | Q(merchant__status=Merchant.Status.ACTIVE))
            .order_by("merchant_id", "kind", "pk"))


def task_board(*, user, at: datetime) -> list[TaskState]:
    """The tasks open to ``user`` at ``at`` with their progress, alliance tasks first."""
    tasks = [t for t in open_tasks(at=at) if unavailable_reason(t, user, at) is None]
    tasks.sort(key=lambda t: (t.merchant_id is not None, t.merchant_id or 0, t.pk))
    assets = _reward_assets(tasks)
    totals = dict(TaskProgress.objects.filter(user=user, task__in=tasks)
                  .values_list("task_id", "completions"))
    today = dict(TaskCompletion.objects.filter(user=user, task__in=tasks, day=local_day(at))
                 .values("task_id").annotate(n=Count("pk")).values_list("task_id", "n"))
    board = []
    for task in tasks:
        if task.merchant_id and task.merchant_id not in assets:
            continue  # a merchant without points yet cannot pay
        done_today, done_total = today.get(task.pk, 0), totals.get(task.pk, 0)
        if task.lifetime_limit is not None and done_total >= task.lifetime_limit:
            status = "done"
        elif task.daily_limit is not None and done_today >= task.daily_limit:
            status = "done_today"
        elif task.budget is not None and task.budget_used >= task.budget:
            status = "budget_spent"
        elif task.by_purchase:
            status = "by_purchase"
        else:
            status = "open"
        board.append(TaskState(task, assets[task.merchant_id], done_today, done_total, status))
    return board


def task_state(*, user, task: Task, at: datetime) -> TaskState | None:
    for state in task_board(user=user, at=at):
        if state.task.pk == task.pk:
            return state
    return None


def merchant_task_list(*, merchant: Merchant) -> QuerySet[Task]:
    """A merchant's tasks with how many rewards each paid and to how many shoppers."""
    return (Task.objects.filter(merchant=merchant)
            .annotate(paid=Count("completions"),
                      shoppers=Count("completions__user", distinct=True),
                      paid_total=Sum("completions__reward"))
            .order_by("-active", "-pk"))
