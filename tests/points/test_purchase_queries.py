"""The purchase API's cost per request (issue 10's load goal): a bounded number of SQL queries
and one Redis round trip for the rate limit, whatever the merchant has set up: a rule with
tier multipliers, tiers, a first-purchase task, a webhook endpoint, a deposit being watched."""

import uuid
from decimal import Decimal

import pytest

from merchants.webhooks import webhook_endpoint_create
from points.models import Purchase, Task
from points.services import earning_rule_publish, member_tier_set
from points.tasks_services import task_save
from tests.factories import UserFactory

# A real commit, so that the after-commit work (deposit watch, tasks, webhooks) is counted.
pytestmark = pytest.mark.django_db(transaction=True)

# A returning shopper, in the request: the key with its merchant and, in the same statement,
# points_purchase_context() (member, key, store, assets, parameters, rule, tier, day's
# earnings, the seven accounts, whether anything follows); then points_purchase_post() (the
# posting, the budget, the purchase row and the deposit's level, committed in the same
# statement). Before: 3 (the key read apart), 18, and 41 before that.
IN_THE_REQUEST = 2
# With the follow-ups, which the worker runs in production and the tests run in-process: the
# purchase, the tasks (with the first-purchase check), the webhook endpoints and the delivery
# row. Before: 18 in all.
RETURNING_SHOPPER = IN_THE_REQUEST + 4
# A shopper's first purchase anywhere also opens its brand and SV wallets, with one
# statement (before: a get_or_create of four statements each, 10 in the request), ...
FIRST_IN_THE_REQUEST = IN_THE_REQUEST + 1
# ... and pays the first-purchase task (its own ledger transaction, in the follow-ups).
# 24 in all; before: 32, and 43 before that.
NEW_SHOPPER = 24


@pytest.fixture
def set_up(merchant, monkeypatch):
    # Deliveries go to the worker in production; here they would run in-process at commit.
    from merchants import webhook_tasks

    monkeypatch.setattr(webhook_tasks.webhook_deliver, "delay", lambda *args: None)
    for code, threshold in (("silver", Decimal("500")), ("gold", Decimal("2000"))):
        member_tier_set(merchant=merchant, code=code, name_zh=code, name_en=code,
                        threshold=threshold)
    earning_rule_publish(merchant=merchant, base_rate=Decimal("1"), multipliers={
        "time_windows": [{"weekdays": [0, 1, 2, 3, 4], "start": "11:30", "end": "13:30",
                          "multiplier": "2"}],
        "tiers": {"gold": "1.5"}})
    task_save(merchant=merchant, fields={
        "kind": Task.Kind.FIRST_PURCHASE, "name_zh": "首次消费", "name_en": "First purchase",
        "reward": 200, "daily_limit": None})
    webhook_endpoint_create(merchant=merchant, url="https://till.example/hook",
                            events=["purchase.recorded"])
    return merchant


def _buy(api, shopper, amount="10.00"):
    return api.post("/api/v1/purchases",
                    {"member": shopper.member_code, "amount": amount, "order_ref": "Q-1"},
                    format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))


def test_a_purchase_runs_a_bounded_number_of_queries(set_up, api,
                                                      django_assert_max_num_queries):
    # (the alliance's first purchase opens its burn account and the merchant's SV wallet)
    assert _buy(api, UserFactory()).status_code == 201
    shopper = UserFactory()
    with django_assert_max_num_queries(NEW_SHOPPER):
        assert _buy(api, shopper).status_code == 201
    with django_assert_max_num_queries(RETURNING_SHOPPER):
        response = _buy(api, shopper)
    assert response.status_code == 201
    assert Purchase.objects.filter(shopper=shopper).count() == 2


@pytest.mark.xdist_group("broker")
def test_the_request_itself_runs_two_queries(set_up, api, real_broker,
                                               django_assert_max_num_queries,
                                               django_capture_on_commit_callbacks):
    # given a returning shopper at a merchant whose every purchase is announced by webhook
    shopper = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert _buy(api, shopper).status_code == 201

    # when the till records another purchase, with the follow-ups queued for the worker
    with django_assert_max_num_queries(IN_THE_REQUEST), \
            django_capture_on_commit_callbacks(execute=True):
        response = _buy(api, shopper)

    # then the request ran two statements, and left one message for the worker
    assert response.status_code == 201
    assert real_broker()[-1] == response.json()["id"]


@pytest.mark.xdist_group("broker")
def test_a_new_shoppers_first_purchase_opens_both_wallets_in_one_statement(
        set_up, api, real_broker, django_assert_max_num_queries,
        django_capture_on_commit_callbacks):
    # given the merchant's first purchase made (it opens the merchant's own accounts)
    with django_capture_on_commit_callbacks(execute=True):
        assert _buy(api, UserFactory()).status_code == 201

    # when a shopper who has never bought anywhere buys, the follow-ups queued for the worker
    newcomer = UserFactory()
    with django_assert_max_num_queries(FIRST_IN_THE_REQUEST), \
            django_capture_on_commit_callbacks(execute=True):
        response = _buy(api, newcomer)

    # then the request opened the shopper's brand and SV wallets with one statement
    assert response.status_code == 201
    assert real_broker()[-1] == response.json()["id"]


def test_a_replay_answers_from_the_purchase_in_a_few_queries(set_up, api,
                                                             django_assert_max_num_queries):
    shopper, key = UserFactory(), str(uuid.uuid4())
    body = {"member": shopper.member_code, "amount": "10.00", "order_ref": "Q-2"}
    assert api.post("/api/v1/purchases", body, format="json",
                    HTTP_IDEMPOTENCY_KEY=key).status_code == 201
    # the key with the context (which finds the purchase under the key); before: 2, and 4
    with django_assert_max_num_queries(1):
        again = api.post("/api/v1/purchases", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 200


def test_the_rate_limit_costs_one_redis_round_trip(set_up, api, settings, monkeypatch):
    import redis.client
    from rest_framework.views import APIView

    from merchants.api_auth import (
        AnonymousRateThrottle,
        ApiKeyRateThrottle,
        PersonRateThrottle,
    )

    # given the API's throttles on (the test settings turn them off)
    monkeypatch.setattr(APIView, "throttle_classes",
                        [AnonymousRateThrottle, ApiKeyRateThrottle, PersonRateThrottle])
    calls = []
    execute = redis.client.Redis.execute_command

    def counted(self, *args, **options):
        calls.append(args[0])
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.client.Redis, "execute_command", counted)
    shopper = UserFactory()
    assert _buy(api, shopper).status_code == 201
    calls.clear()

    # when a till records a purchase
    assert _buy(api, shopper).status_code == 201

    # then the rate limit took one round trip to Redis (and the purchase none of its own)
    assert calls == ["EVALSHA"]
