"""The purchase API reads its context with the key (``PurchaseCreateApi.api_key_fetch``): only for
a key that may record purchases, and used only for the very purchase it was read for."""

import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from merchants import services as merchant_services
from merchants.api_auth import KEY_PATTERN, key_hash
from merchants.models import Merchant
from points import purchase_engine, services
from points.models import Purchase
from tests.factories import UserFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="the SQLite demo reads the key alone")


def _keyed(raw_key: str, *, member: str, key: str = "k-1", hashed: str | None = None):
    prefix = KEY_PATTERN.match(raw_key).group(1)
    return purchase_engine.purchase_context_keyed(
        prefix=prefix, hashed=hashed or key_hash(raw_key), member_code=member, key=key,
        store_id=None, amount=Decimal("10.00"), at=timezone.now())


def test_a_good_key_brings_the_purchase_context(api_key, merchant, shopper):
    api_key_row, asked, context = _keyed(api_key, member=shopper.member_code)
    assert api_key_row.merchant == merchant
    assert asked.merchant_id == merchant.pk and asked.member_code == shopper.member_code
    assert context.shopper_id == shopper.pk and context.brand is not None


@pytest.mark.parametrize("spoil", ["wrong_secret", "revoked", "no_scope", "suspended"])
def test_no_context_is_read_for_a_key_that_cannot_record_purchases(merchant, shopper, spoil):
    api_key, raw = merchant_services.api_key_create(
        merchant=merchant, name="till",
        scopes=["holds"] if spoil == "no_scope" else ["purchases"])
    hashed = key_hash(raw.replace(raw[-1], "0" if raw[-1] != "0" else "1")) \
        if spoil == "wrong_secret" else None
    if spoil == "revoked":
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    if spoil == "suspended":
        Merchant.objects.filter(pk=merchant.pk).update(status=Merchant.Status.SUSPENDED)

    found, asked, context = _keyed(raw, member=shopper.member_code, hashed=hashed)

    # the key comes back for the usual checks (and their 401/403), its context does not
    assert found.pk == api_key.pk
    assert asked is None and context is None


def test_the_database_never_calls_the_context_for_a_wrong_key(api_key, shopper):
    # The key's conditions are a one-time filter ahead of the function (OFFSET 0): without
    # it the planner calls points_purchase_context() and filters its row afterwards.
    params = [shopper.member_code, "k-1", None, Decimal("1"), timezone.now(), timezone.now(),
              timezone.now(), timezone.now(), "0" * 64, ["active"],
              KEY_PATTERN.match(api_key).group(1)]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + purchase_engine._KEYED_CONTEXT_SQL,
                       params)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    scans = [n for n in nodes(plan[0]["Plan"]) if n.get("Function Name") ==
             "points_purchase_context"]
    assert scans and all(n["Actual Loops"] == 0 for n in scans)


def test_a_context_read_for_another_purchase_is_not_used(api_key, merchant, shopper):
    # given a context read ahead for another shopper
    other = UserFactory()
    _key, asked, context = _keyed(api_key, member=other.member_code, key="k-2")

    # when the purchase recorded is this shopper's, under that key
    purchase, replayed = services.purchase_record_for_member(
        merchant=merchant, member=shopper.member_code, amount=Decimal("10.00"),
        order_ref="R-1", idempotency_key="k-2", fingerprint="f",
        read_ahead=(asked, context))[:2]

    # then it was read again, for this shopper
    assert not replayed and purchase.shopper_id == shopper.pk
    assert Purchase.objects.get(pk=purchase.pk).shopper_id == shopper.pk


@pytest.mark.django_db(transaction=True)  # no savepoints around the posting to count
def test_the_api_records_with_the_context_read_with_the_key(api, shopper,
                                                            django_assert_max_num_queries):
    body = {"member": shopper.member_code.lower(), "amount": "25.00", "order_ref": "A-1"}
    assert api.post("/api/v1/purchases", {**body, "order_ref": "A-0"}, format="json",
                    HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())).status_code == 201
    with django_assert_max_num_queries(2):
        response = api.post("/api/v1/purchases", body, format="json",
                            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == 201, response.json()
    purchase = Purchase.objects.get(pk=response.json()["id"])
    assert purchase.shopper_id == shopper.pk and purchase.amount == Decimal("25.00")


@pytest.mark.parametrize("body, status", [
    (b'{"member": ', 400),                      # DRF's parse error, as before
    (b'{"member": "NOPE1234", "amount": "1.00", "order_ref": "x"}', 404),
    (b'{"member": "", "amount": "1.00", "order_ref": "x"}', 400),
])
def test_odd_bodies_get_the_answers_they_got_before(api, body, status):
    response = api.generic("POST", "/api/v1/purchases", body,
                           content_type="application/json",
                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == status
    assert "code" in response.json()["error"]


@pytest.mark.parametrize("content_type, encode, status", [
    ("application/json", lambda text: text.encode(), 201),
    ("application/json; charset=utf-16", lambda text: text.encode("utf-16"), 201),
    ("application/json", lambda text: b"\xef\xbb\xbf" + text.encode(), 400),  # a BOM
    ("application/json-patch+json", lambda text: text.encode(), 415),
    ("application/json", lambda text: text.encode("utf-16"), 400),  # not the charset said
])
def test_a_body_read_with_the_key_is_read_as_drf_reads_it(api, shopper, content_type, encode,
                                                           status):
    # The view takes the body as the key check read it, only where DRF's JSON parser would
    # read it the same: an encoding, a byte-order mark or a media type it answers otherwise
    # gets DRF's answer.
    text = json.dumps({"member": shopper.member_code, "amount": "3.00", "order_ref": "b-1"})
    response = api.generic("POST", "/api/v1/purchases", encode(text), content_type=content_type,
                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert response.status_code == status, response.content
    assert Purchase.objects.filter(shopper=shopper).count() == (1 if status == 201 else 0)
