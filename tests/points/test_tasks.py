"""Tasks (SPEC §4.4): rewards, limits per day and lifetime, budgets under concurrency,
schedules and audiences, browse tasks timed on the server, purchase tasks, alliance tasks."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from alliance.errors import DomainError
from ledger.models import Transaction
from points import tasks_services
from points.models import Task, TaskCompletion
from points.services import purchase_record
from tests.factories import UserFactory
from tests.points.conftest import onboard
from tests.points.task_helpers import balance, make_task
from tests.threads import connect_when_a_slot_is_free

pytestmark = pytest.mark.django_db


def complete(task, user, key=None, **kwargs):
    return tasks_services.task_complete(
        task=task, user=user, ip=kwargs.pop("ip", "10.0.0.1"), device=kwargs.pop("device", "d1"),
        idempotency_key=key or uuid.uuid4().hex, **kwargs)


def code_of(call) -> str:
    try:
        call()
    except DomainError as exc:
        return exc.code
    return "ok"


def test_check_in_pays_the_reward_once_a_day(merchant, shopper, frozen_clock):
    # given a once-a-day check-in worth 10 points
    task = make_task(merchant, reward=10)

    # when the shopper checks in twice on one day
    first, replayed = complete(task, shopper)
    again = code_of(lambda: complete(task, shopper))

    # then the first pays 10 points from the merchant's issuance and the second is refused
    assert not replayed and first.reward == 10 and first.seq == 1
    assert again == "task_limit_reached"
    assert balance("BURGER", user=shopper) == 10
    assert first.transaction.kind == "task_reward"
    assert first.transaction.metadata["task"] == task.pk

    # and the next day it pays again
    frozen_clock.advance(24 * 3600)
    complete(task, shopper)
    assert balance("BURGER", user=shopper) == 20


def test_the_same_key_answers_the_same_completion(merchant, shopper):
    task = make_task(merchant, daily_limit=None)
    first, _ = complete(task, shopper, key="k-1")
    again, replayed = complete(task, shopper, key="k-1")
    assert replayed and again.pk == first.pk
    assert balance("BURGER", user=shopper) == 10


def test_lifetime_limit_holds_across_days(merchant, shopper, frozen_clock):
    task = make_task(merchant, kind=Task.Kind.SHARE, daily_limit=None, lifetime_limit=2)
    complete(task, shopper)
    frozen_clock.advance(86400)
    complete(task, shopper)
    frozen_clock.advance(86400)
    assert code_of(lambda: complete(task, shopper)) == "task_limit_reached"
    assert TaskCompletion.objects.filter(task=task).count() == 2


def test_schedule_and_audience(merchant, frozen_clock):
    now = timezone.now()
    later = make_task(merchant, starts_at=now + timedelta(hours=1))
    over = make_task(merchant, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    newcomers = make_task(merchant, audience=Task.Audience.NEW, audience_days=7)
    veteran = UserFactory(date_joined=now - timedelta(days=30))
    newcomer = UserFactory(date_joined=now - timedelta(days=2))

    assert code_of(lambda: complete(later, newcomer)) == "task_not_available"
    assert code_of(lambda: complete(over, newcomer)) == "task_not_available"
    assert code_of(lambda: complete(newcomers, veteran)) == "task_not_available"
    assert code_of(lambda: complete(newcomers, newcomer)) == "ok"

    # once the start time comes, the task opens
    frozen_clock.advance(3601)
    assert code_of(lambda: complete(later, newcomer)) == "ok"


def test_inactive_task_pays_nothing(merchant, shopper):
    task = make_task(merchant)
    tasks_services.task_set_active(task=task, active=False)
    assert code_of(lambda: complete(task, shopper)) == "task_not_available"
    assert Transaction.objects.filter(kind="task_reward").count() == 0


def test_browse_task_is_timed_on_the_server(merchant, shopper, frozen_clock):
    # given a task to browse a page for 30 seconds
    task = make_task(merchant, kind=Task.Kind.BROWSE, browse_seconds=30,
                     target="https://example.com/new-menu")
    token = tasks_services.browse_start(task=task, user=shopper)

    # when the shopper claims after 10 seconds, it is refused, whatever the client says
    frozen_clock.advance(10)
    assert code_of(lambda: complete(task, shopper, proof={"token": token})) == "browse_too_soon"
    assert balance("BURGER", user=shopper) == 0

    # and after 30 seconds it pays, once per token
    frozen_clock.advance(20)
    completion, _ = complete(task, shopper, proof={"token": token})
    again, replayed = complete(task, shopper, proof={"token": token})
    assert replayed and again.pk == completion.pk
    assert balance("BURGER", user=shopper) == 10


def test_browse_tokens_are_bound_to_task_user_and_time(merchant, shopper, frozen_clock):
    task = make_task(merchant, kind=Task.Kind.BROWSE, browse_seconds=5, daily_limit=5)
    other_task = make_task(merchant, kind=Task.Kind.BROWSE, browse_seconds=5)
    other_user = UserFactory()
    token = tasks_services.browse_start(task=task, user=shopper)
    frozen_clock.advance(6)
    assert code_of(lambda: complete(task, shopper, proof={})) == "browse_token_invalid"
    assert code_of(lambda: complete(task, shopper, proof={"token": token + "x"})) \
        == "browse_token_invalid"
    assert code_of(lambda: complete(other_task, shopper, proof={"token": token})) \
        == "browse_token_invalid"
    assert code_of(lambda: complete(task, other_user, proof={"token": token})) \
        == "browse_token_invalid"
    # a token too old to claim
    frozen_clock.advance(7 * 3600)
    assert code_of(lambda: complete(task, shopper, proof={"token": token})) \
        == "browse_token_invalid"
    assert TaskCompletion.objects.count() == 0


def test_purchase_tasks_are_not_completed_from_the_storefront(merchant, shopper):
    task = make_task(merchant, kind=Task.Kind.PURCHASE)
    assert code_of(lambda: complete(task, shopper)) == "task_completed_by_purchase"


def _buy(merchant, shopper, amount="100.00", key=None):
    return purchase_record(merchant=merchant, shopper=shopper, amount=Decimal(amount),
                           order_ref="o", idempotency_key=key or uuid.uuid4().hex,
                           fingerprint=uuid.uuid4().hex)


def test_purchases_complete_first_purchase_and_purchase_tasks(
        merchant, shopper, django_capture_on_commit_callbacks):
    # given a first-purchase task (50 points) and a purchase task for CNY 200 and more
    first = make_task(merchant, kind=Task.Kind.FIRST_PURCHASE, reward=50, daily_limit=None)
    big = make_task(merchant, kind=Task.Kind.PURCHASE, reward=20, daily_limit=None,
                    min_amount=Decimal("200"))

    # when the shopper buys for CNY 100, then for CNY 300
    with django_capture_on_commit_callbacks(execute=True):
        small_purchase, _ = _buy(merchant, shopper, "100.00")
    with django_capture_on_commit_callbacks(execute=True):
        _buy(merchant, shopper, "300.00")

    # then the first purchase paid the first-purchase task, the second the purchase task
    paid = TaskCompletion.objects.order_by("pk")
    assert [(c.task_id, c.source) for c in paid] == [(first.pk, "purchase"), (big.pk, "purchase")]
    assert paid[0].purchase == small_purchase
    # 100 + 300 points from the purchases themselves, 50 + 20 from the tasks
    assert balance("BURGER", user=shopper) == 400 + 70


def test_a_full_purchase_task_never_fails_the_purchase(
        merchant, shopper, django_capture_on_commit_callbacks):
    make_task(merchant, kind=Task.Kind.PURCHASE, reward=5, daily_limit=None, budget=1)
    with django_capture_on_commit_callbacks(execute=True):
        _buy(merchant, shopper)
    with django_capture_on_commit_callbacks(execute=True):
        purchase, replayed = _buy(merchant, shopper)
    assert purchase.pk and not replayed
    assert TaskCompletion.objects.count() == 1


def test_alliance_task_pays_shared_from_the_task_budget(shopper):
    # given an alliance check-in worth 0.50 SHARED and a budget of 1.00 SHARED
    task = make_task(None, reward=50, daily_limit=None)
    tasks_services.task_budget_fund(amount=100, idempotency_key="fund-1")

    # when the shopper completes it three times
    results = [code_of(lambda: complete(task, shopper)) for _ in range(3)]

    # then two are paid from the budget account and the third finds it empty
    assert results == ["ok", "ok", "task_budget_exhausted"]
    assert balance("SHARED", user=shopper) == 100
    assert tasks_services.task_budget_account().balance == 0


@pytest.mark.parametrize("fields", [
    {"reward": 0}, {"reward": -5}, {"kind": "dance"}, {"name_zh": "", "name_en": " "},
    {"kind": "browse", "browse_seconds": 0},
    {"starts_at": timezone.now(), "ends_at": timezone.now() - timedelta(days=1)},
    {"min_amount": Decimal("-1")}, {"colour": "red"},
])
def test_invalid_tasks_are_refused(merchant, fields):
    with pytest.raises(DomainError):
        make_task(merchant, **fields)
    assert Task.objects.count() == 0


def test_a_merchant_cannot_edit_another_merchants_task(merchant):
    other = onboard("coffee")
    task = make_task(other)
    with pytest.raises(DomainError):
        tasks_services.task_save(merchant=merchant, task=task, fields={"reward": 999})
    task.refresh_from_db()
    assert task.reward == 10


# --- under concurrency ------------------------------------------------------------------------


def _in_threads(count: int, work) -> list[str]:
    def one(i: int) -> str:
        try:
            connect_when_a_slot_is_free()
            return code_of(lambda: work(i))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")  # 30-50 connections at once
def test_thirty_parallel_completions_of_a_daily_task_pay_once(settings):
    # given a once-a-day check-in and one shopper (whose velocity limit is out of the way)
    settings.ABUSE_LIMITS = {"task_user": (1000, 600)}
    merchant = onboard("race1", shared=0, deposit=0)
    task = make_task(merchant, reward=10)
    shopper = UserFactory()

    # when 30 requests complete it at once, each from its own connection and key
    results = _in_threads(30, lambda i: complete(task, shopper, key=f"race-{i}",
                                                 ip=f"10.1.0.{i}", device=f"d{i}"))

    # then exactly one is paid and 29 are refused for the daily limit
    assert sorted(results) == ["ok"] + ["task_limit_reached"] * 29
    assert TaskCompletion.objects.filter(task=task).count() == 1
    assert Transaction.objects.filter(kind="task_reward").count() == 1
    assert balance("RACE1", user=shopper) == 10


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")  # 30-50 connections at once
def test_a_budget_of_five_rewards_pays_five_across_fifty_shoppers():
    # given a task with a budget of 5 rewards and 50 shoppers
    merchant = onboard("race2", shared=0, deposit=0)
    task = make_task(merchant, reward=10, budget=5)
    shoppers = [UserFactory() for _ in range(50)]

    # when all 50 complete it at once
    results = _in_threads(50, lambda i: complete(task, shoppers[i], ip=f"10.2.{i}.1",
                                                 device=f"d{i}"))

    # then 5 are paid and 45 find the budget spent
    assert sorted(results) == ["ok"] * 5 + ["task_budget_exhausted"] * 45
    task.refresh_from_db()
    assert task.budget_used == 5
    assert TaskCompletion.objects.filter(task=task).count() == 5
    assert sum(balance("RACE2", user=s) for s in shoppers) == 50
