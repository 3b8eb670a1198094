"""Tasks (任务体系, SPEC §4.4): setting them up and paying their rewards.

A merchant's task pays in its brand points, minted from its issuance account. An alliance
task pays in SHARED from the alliance's task budget: the alliance-held SHARED account of kind
``settlement``, bounded (it can run dry, never negative) and funded by minting SHARED into it
(``task_budget_fund``: the demo seed, or staff following a council decision).

``task_complete`` is the one way a reward is paid. Its guards, in order:

- replay: the same (task, shopper, idempotency key) answers the first completion;
- velocity (storefront only): per account, address and device (``points.abuse``), 429;
- availability: active, within its schedule, its audience, its merchant a member;
- limits per shopper per day and per lifetime: counted under the lock of the pair's
  ``TaskProgress`` row, so parallel completions of one shopper queue and see each other;
- the budget: one conditional ``UPDATE ... WHERE budget_used < budget``, so shoppers racing
  for the last reward cannot both get it;
- the reward: one ledger transaction in the same database transaction as the completion row.

Locks are taken in one order (progress row, task row, ledger accounts), so completions cannot
deadlock one another.
"""

import hashlib
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db import transaction as db_transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict, DomainError
from ledger import services as ledger
from ledger.errors import InsufficientBalance
from ledger.models import Account, Asset
from merchants.models import Merchant

from . import abuse
from .models import Purchase, Task, TaskCompletion, TaskProgress
from .services import brand_asset, merchant_client

logger = logging.getLogger(__name__)

BROWSE_SALT = "points.task-browse"
# A browse started longer ago than this cannot be claimed any more.
BROWSE_TOKEN_MAX_AGE = timedelta(hours=6)
ALLIANCE_TASK_CLIENT = "alliance:tasks"
MAX_REWARD = 10**12


class TaskNotAvailable(Conflict):
    code = "task_not_available"
    default_message = _("This task is not open to you now.")


class TaskLimitReached(Conflict):
    code = "task_limit_reached"
    default_message = _("You have already completed this task as often as it allows.")


class TaskBudgetExhausted(Conflict):
    code = "task_budget_exhausted"
    default_message = _("This task has paid all the rewards it had.")


class TaskNotManual(DomainError):
    code = "task_completed_by_purchase"
    default_message = _("This task is completed by a purchase at the till, not here.")


class BrowseTokenInvalid(DomainError):
    code = "browse_token_invalid"
    default_message = _("Start browsing again: this browse is not valid.")


class BrowseTooSoon(DomainError):
    code = "browse_too_soon"
    default_message = _("Keep browsing a little longer before claiming the reward.")


class InvalidTask(DomainError):
    code = "invalid_task"


def clock() -> datetime:
    """The server's time; the one place tests move it."""
    return timezone.now()


def local_day(at: datetime) -> date:
    return at.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


# --- the alliance's task budget ---------------------------------------------------------------


def task_budget_account() -> Account:
    """The alliance's SHARED account that pays alliance tasks (kind settlement, no holder)."""
    return ledger.account_get_or_create(asset=ledger.alliance_asset("SHARED"),
                                        kind=Account.Kind.SETTLEMENT)


def task_budget_fund(*, amount: int, idempotency_key: str) -> ledger.Posted:
    """Mint ``amount`` SHARED (minor units) into the alliance's task budget."""
    if type(amount) is not int or amount <= 0:
        raise InvalidTask(_("The amount must be a positive whole number of minor units."))
    shared = ledger.alliance_asset("SHARED")
    return ledger.transaction_post(
        kind="task_budget_funding", client=ALLIANCE_TASK_CLIENT, idempotency_key=idempotency_key,
        legs=[ledger.Leg(ledger.issuance_account(shared), -amount),
              ledger.Leg(task_budget_account(), amount)],
        metadata={"purpose": "alliance tasks"},
    )


def reward_asset(task: Task) -> Asset:
    return brand_asset(task.merchant) if task.merchant_id else ledger.alliance_asset("SHARED")


# --- setting tasks up -------------------------------------------------------------------------

TASK_FIELDS = (
    "kind", "name_zh", "name_en", "target", "browse_seconds", "min_amount", "reward",
    "daily_limit", "lifetime_limit", "budget", "starts_at", "ends_at", "audience",
    "audience_days", "active",
)


def _task_validate(task: Task) -> None:
    if task.kind not in Task.Kind.values:
        raise InvalidTask(_("Choose a kind of task."), details={"field": "kind"})
    if not (task.name_zh or "").strip() and not (task.name_en or "").strip():
        raise InvalidTask(_("Give the task a name."), details={"field": "name_en"})
    if type(task.reward) is not int or not 0 < task.reward <= MAX_REWARD:
        raise InvalidTask(_("The reward must be a positive whole number."),
                          details={"field": "reward"})
    if task.kind == Task.Kind.BROWSE and not task.browse_seconds:
        raise InvalidTask(_("A browse task needs the seconds to browse."),
                          details={"field": "browse_seconds"})
    if task.starts_at and task.ends_at and task.ends_at <= task.starts_at:
        raise InvalidTask(_("The task must end after it starts."), details={"field": "ends_at"})
    if task.min_amount is not None and task.min_amount < 0:
        raise InvalidTask(_("The smallest purchase cannot be negative."),
                          details={"field": "min_amount"})
    if task.budget is not None and task.budget < task.budget_used:
        raise InvalidTask(_("The budget cannot be below the rewards already paid (%(used)d).")
                          % {"used": task.budget_used}, details={"field": "budget"})
    if task.kind == Task.Kind.FIRST_PURCHASE:
        # A first purchase happens once.
        task.lifetime_limit = 1


@db_transaction.atomic
def task_save(*, merchant: Merchant | None, fields: dict, task: Task | None = None,
              created_by=None) -> Task:
    """Create a task for ``merchant`` (None: the alliance) or change one of its tasks.
    Rewards already paid stay as they were; a lower budget may not go below them."""
    unknown = set(fields) - set(TASK_FIELDS)
    if unknown:
        raise InvalidTask(details={"fields": sorted(unknown)})
    if task is None:
        task = Task(merchant=merchant, created_by=created_by)
    else:
        task = Task.objects.select_for_update().get(pk=task.pk)
        if task.merchant_id != (merchant.pk if merchant else None):
            raise InvalidTask(_("This task belongs to someone else."))
    for name, value in fields.items():
        setattr(task, name, value)
    _task_validate(task)
    if merchant is not None:
        brand_asset(merchant)  # a merchant without points cannot pay a task
    task.save()
    return task


def task_set_active(*, task: Task, active: bool) -> Task:
    Task.objects.filter(pk=task.pk).update(active=active)
    task.active = active
    return task


# --- availability -----------------------------------------------------------------------------


def unavailable_reason(task: Task, user, at: datetime) -> str | None:
    """Why ``task`` is closed to ``user`` at ``at`` (a short code), or None when it is open."""
    if not task.active:
        return "inactive"
    if task.starts_at and at < task.starts_at:
        return "not_started"
    if task.ends_at and at >= task.ends_at:
        return "ended"
    if task.merchant_id and task.merchant.status != Merchant.Status.ACTIVE:
        return "merchant_inactive"
    if (task.audience == Task.Audience.NEW
            and user.date_joined < at - timedelta(days=task.audience_days)):
        return "audience"
    return None


# --- browse tasks -----------------------------------------------------------------------------


def browse_start(*, task: Task, user) -> str:
    """A signed token saying ``user`` started browsing for ``task`` now (server time).
    Completing the task with it is accepted once ``task.browse_seconds`` have passed."""
    if task.kind != Task.Kind.BROWSE:
        raise InvalidTask(_("Only a browse task is started."))
    reason = unavailable_reason(task, user, clock())
    if reason:
        raise TaskNotAvailable(details={"reason": reason})
    started = clock().timestamp()
    return signing.dumps({"t": task.pk, "u": user.pk, "s": round(started, 3)}, salt=BROWSE_SALT)


def _browse_check(task: Task, user, token: str, now: datetime) -> None:
    try:
        payload = signing.loads(token or "", salt=BROWSE_SALT)
        started = float(payload["s"])
        if payload["t"] != task.pk or payload["u"] != user.pk:
            raise ValueError
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BrowseTokenInvalid() from None
    elapsed = now.timestamp() - started
    if elapsed > BROWSE_TOKEN_MAX_AGE.total_seconds() or elapsed < 0:
        raise BrowseTokenInvalid()
    if elapsed < task.browse_seconds:
        raise BrowseTooSoon(details={"seconds_left": int(task.browse_seconds - elapsed) + 1})


# --- completing -------------------------------------------------------------------------------


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


def task_complete(
    *, task: Task, user, ip: str | None, device: str, idempotency_key: str,
    proof: dict | None = None,
) -> tuple[TaskCompletion, bool]:
    """A shopper completes ``task`` from the storefront; returns (completion, replayed).

    Browse tasks need ``proof={"token": <browse_start's token>}``, and one token pays once
    whatever the idempotency key. Tasks completed by purchases are refused here."""
    if task.by_purchase:
        raise TaskNotManual()
    proof = dict(proof or {})
    if task.kind == Task.Kind.BROWSE:
        idempotency_key = "browse:" + _digest(str(proof.get("token", "")))
    return _complete(task=task, user=user, idempotency_key=idempotency_key, at=clock(),
                     source=TaskCompletion.Source.STOREFRONT, ip=ip, device=device,
                     proof=proof)


def _complete(
    *, task: Task, user, idempotency_key: str, at: datetime, source: str,
    ip: str | None = None, device: str = "", proof: dict | None = None,
    purchase: Purchase | None = None,
) -> tuple[TaskCompletion, bool]:
    if not idempotency_key or len(idempotency_key) > 128:
        raise InvalidTask(details={"idempotency_key": "required, at most 128 characters"})
    existing = TaskCompletion.objects.filter(task=task, user=user,
                                             idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, True  # Idempotent: this request was already paid.
    if source == TaskCompletion.Source.STOREFRONT:
        abuse.task_velocity_check(user=user, ip=ip, device=device, merchant=task.merchant)
    if task.kind == Task.Kind.BROWSE:
        _browse_check(task, user, (proof or {}).get("token", ""), at)
    asset = reward_asset(task)
    wallet = ledger.account_get_or_create(asset=asset, kind=Account.Kind.WALLET, user=user)
    source_account = (ledger.issuance_account(asset) if task.merchant_id
                      else task_budget_account())
    day = local_day(at)
    with db_transaction.atomic(durable=True):
        TaskProgress.objects.bulk_create([TaskProgress(task=task, user=user)],
                                         ignore_conflicts=True)
        progress = TaskProgress.objects.select_for_update().get(task=task, user=user)
        # Under the lock, a parallel request with the same key has committed or never will.
        existing = TaskCompletion.objects.filter(task=task, user=user,
                                                 idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, True
        task = Task.objects.select_related("merchant").get(pk=task.pk)
        reason = unavailable_reason(task, user, at)
        if reason:
            raise TaskNotAvailable(details={"reason": reason})
        today = TaskCompletion.objects.filter(task=task, user=user, day=day).count()
        if task.daily_limit is not None and today >= task.daily_limit:
            raise TaskLimitReached(details={"limit": "daily", "allowed": task.daily_limit})
        if task.lifetime_limit is not None and progress.completions >= task.lifetime_limit:
            raise TaskLimitReached(details={"limit": "lifetime",
                                            "allowed": task.lifetime_limit})
        if task.budget is not None:
            claimed = Task.objects.filter(pk=task.pk, budget_used__lt=F("budget")).update(
                budget_used=F("budget_used") + 1)
            if not claimed:
                raise TaskBudgetExhausted()
        # Rewards have a client of their own, so a till's keys can never collide with them.
        client = (f"{merchant_client(task.merchant)}:tasks" if task.merchant_id
                  else ALLIANCE_TASK_CLIENT)
        try:
            posted = ledger.transaction_post(
                kind="task_reward", client=client,
                idempotency_key=f"task:{task.pk}:{user.pk}:{_digest(idempotency_key)}",
                legs=[ledger.Leg(source_account, -task.reward), ledger.Leg(wallet, task.reward)],
                metadata={"task": task.pk, "task_kind": task.kind, "day": day.isoformat(),
                          "seq": today + 1, "source": source},
                occurred_at=at,
            )
        except InsufficientBalance:
            raise TaskBudgetExhausted(details={"account": "alliance_task_budget"}) from None
        progress.completions += 1
        progress.last_completed_at = at
        progress.save(update_fields=["completions", "last_completed_at"])
        completion = TaskCompletion.objects.create(
            task=task, user=user, day=day, seq=today + 1, source=source, purchase=purchase,
            idempotency_key=idempotency_key, transaction_id=posted.transaction_id,
            reward=task.reward, ip=ip or None, device=(device or "")[:64], proof=proof or {},
        )
    return completion, False


def tasks_on_purchase(purchase: Purchase) -> list[TaskCompletion]:
    """Complete the purchase and first-purchase tasks a recorded purchase qualifies for: the
    merchant's own and the alliance's. Runs after the purchase committed; a task that is full,
    closed or failing never undoes or fails the purchase."""
    # Whether the shopper bought before (at the task's merchant, or anywhere for the
    # alliance's tasks) comes with the tasks: one query, not one more per first-purchase task.
    earlier = Purchase.objects.filter(shopper=purchase.shopper_id, pk__lt=purchase.pk)
    tasks = (Task.objects.select_related("merchant")
             .filter(active=True, kind__in=Task.BY_PURCHASE)
             .filter(Q(merchant=purchase.merchant_id) | Q(merchant__isnull=True))
             .annotate(bought_here=Exists(earlier.filter(merchant=OuterRef("merchant_id"))),
                       bought_anywhere=Exists(earlier)))
    paid = []
    for task in tasks:
        if task.min_amount is not None and purchase.amount < task.min_amount:
            continue
        if task.kind == Task.Kind.FIRST_PURCHASE and (
                task.bought_here if task.merchant_id else task.bought_anywhere):
            continue
        try:
            completion, replayed = _complete(
                task=task, user=purchase.shopper, idempotency_key=f"purchase:{purchase.pk}",
                at=purchase.occurred_at, source=TaskCompletion.Source.PURCHASE,
                purchase=purchase, proof={"purchase": purchase.pk},
            )
        except DomainError as exc:
            logger.info("purchase task not paid", extra={"task": task.pk, "code": exc.code})
            continue
        except Exception:
            logger.exception("purchase task failed", extra={"task": task.pk})
            continue
        if not replayed:
            paid.append(completion)
    return paid


def reward_major(task: Task, asset: Asset | None = None) -> Decimal:
    return (asset or reward_asset(task)).to_major(task.reward)
