"""The redemption catalog: redeeming for vouchers, validating them once, cancelling for a
refund, expiry, the storefront's filters, and bad input that changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from alliance.errors import DomainError
from ledger.models import Asset, Transaction
from merchants import services as merchant_services
from points import catalog
from points.models import CatalogItem, Voucher
from points.spending_selectors import catalog_item_list, voucher_qr_svg
from tests.factories import UserFactory

from .conftest import onboard
from .spending_helpers import (
    alliance_assets_restore,
    api_key_client,
    balance,
    brand,
    catalog_item,
    error_code,
    fund,
    shopper_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alliance_assets():
    # a transactional test run earlier flushes the assets a migration made
    alliance_assets_restore()

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


@pytest.fixture
def points(merchant):
    return brand(merchant)


@pytest.fixture
def item(merchant):
    return catalog_item(merchant, price=500, stock=3)


@pytest.fixture
def rich(points):
    shopper = UserFactory()
    fund(points, shopper, 10_000)
    return shopper


def _redeem(client, item_id: int, key: str = "r-1"):
    return client.post(f"/api/v1/catalog/items/{item_id}/redeem", HTTP_IDEMPOTENCY_KEY=key)


def _stock(item) -> int:
    return CatalogItem.objects.get(pk=item.pk).stock


# --- redeeming ---------------------------------------------------------------------------------


def test_redeeming_takes_the_price_and_one_unit_and_issues_a_voucher(rich, item, points):
    # when a shopper redeems an item priced 500 of the merchant's points
    response = _redeem(shopper_client(rich), item.pk)

    # then a voucher with a unique code is issued, the points were retired, the stock fell
    assert response.status_code == 201, response.json()
    voucher = Voucher.objects.get()
    assert response.json()["code"] == voucher.display_code
    assert len(voucher.code) == 12 and voucher.state == Voucher.State.ISSUED
    assert voucher.expires_at - voucher.issued_at == timedelta(days=30)
    assert balance(points, user=rich) == 9_500
    assert _stock(item) == 2
    payment = Transaction.objects.get(pk=voucher.payment_id)
    assert payment.kind == "catalog_redemption"
    assert sorted(p.amount for p in payment.postings.all()) == [-500, 500]
    # and its QR is an inline SVG of the code: no script, no style attribute
    svg = voucher_qr_svg(voucher)
    assert svg.startswith("<svg") and "<script" not in svg and "style=" not in svg


def test_an_item_priced_in_shared_pays_the_merchant(merchant):
    # given an item priced 12.50 SHARED and a shopper with 20 SHARED
    shared = Asset.objects.get(code="SHARED")
    item = catalog_item(merchant, price=1250, asset=shared)
    shopper = UserFactory()
    fund(shared, shopper, 2000)
    before = balance(shared, merchant=merchant)

    # when the shopper redeems it
    voucher = catalog.catalog_redeem(shopper=shopper, item_id=item.pk, idempotency_key="k")

    # then 12.50 SHARED moved from the shopper to the merchant's SHARED wallet
    assert voucher.price == 1250
    assert balance(shared, user=shopper) == 750
    assert balance(shared, merchant=merchant) == before + 1250


def test_the_same_key_gives_the_same_voucher_once(rich, item, points):
    client = shopper_client(rich)
    first = _redeem(client, item.pk, key="same")
    again = _redeem(client, item.pk, key="same")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["code"] == again.json()["code"]
    assert Voucher.objects.count() == 1 and _stock(item) == 2
    assert balance(points, user=rich) == 9_500
    # and the same key for another item is a conflict
    other = catalog_item(item.merchant, price=100)
    conflict = _redeem(client, other.pk, key="same")
    assert conflict.status_code == 409 and error_code(conflict) == "idempotency_conflict"
    assert _stock(other) == 10


def test_redeeming_needs_an_idempotency_key(rich, item, points):
    response = shopper_client(rich).post(f"/api/v1/catalog/items/{item.pk}/redeem")
    assert response.status_code == 400 and error_code(response) == "idempotency_key_required"
    assert _stock(item) == 3 and balance(points, user=rich) == 10_000


def test_out_of_stock_is_refused_and_takes_no_points(rich, merchant, points):
    item = catalog_item(merchant, price=100, stock=1)
    client = shopper_client(rich)
    assert _redeem(client, item.pk, key="a").status_code == 201
    response = _redeem(client, item.pk, key="b")
    assert response.status_code == 409 and error_code(response) == "out_of_stock"
    assert balance(points, user=rich) == 9_900
    assert _stock(item) == 0 and Voucher.objects.count() == 1


def test_a_shopper_who_cannot_afford_it_changes_nothing(item, points):
    poor = UserFactory()
    fund(points, poor, 499)
    response = _redeem(shopper_client(poor), item.pk)
    assert response.status_code == 409 and error_code(response) == "insufficient_balance"
    assert response.json()["error"]["details"]["available"] == "499"
    # the stock taken inside the refused transaction is back
    assert _stock(item) == 3
    assert balance(points, user=poor) == 499 and not Voucher.objects.exists()


def test_the_per_shopper_limit_holds(rich, merchant, points):
    item = catalog_item(merchant, price=100, per_shopper_limit=2)
    client = shopper_client(rich)
    assert _redeem(client, item.pk, key="1").status_code == 201
    assert _redeem(client, item.pk, key="2").status_code == 201
    third = _redeem(client, item.pk, key="3")
    assert third.status_code == 409 and error_code(third) == "redemption_limit_reached"
    assert balance(points, user=rich) == 9_800 and _stock(item) == 8
    # another shopper still can
    other = UserFactory()
    fund(points, other, 100)
    assert _redeem(shopper_client(other), item.pk, key="1").status_code == 201


@pytest.mark.parametrize("change", [
    {"active": False},
    {"available_from": timezone.now() + timedelta(days=1)},
    {"available_until": timezone.now() - timedelta(seconds=1),
     "available_from": timezone.now() - timedelta(days=2)},
])
def test_an_item_outside_its_window_or_unlisted_cannot_be_redeemed(rich, item, points, change):
    CatalogItem.objects.filter(pk=item.pk).update(**change)
    response = _redeem(shopper_client(rich), item.pk)
    assert response.status_code == 409 and error_code(response) == "item_unavailable"
    assert _stock(item) == 3 and balance(points, user=rich) == 10_000


def test_an_unknown_item_is_404(rich):
    response = _redeem(shopper_client(rich), 987654)
    assert response.status_code == 404 and error_code(response) == "item_not_found"
    huge = _redeem(shopper_client(rich), 10**25)
    assert huge.status_code == 404 and error_code(huge) == "not_found"


def test_odd_search_input_is_answered_not_crashed(rich, item):
    client = shopper_client(rich)
    for params in ({"q": "tea\x00"}, {"merchant": "\x00"}, {"offset": str(10**30)},
                   {"limit": "-5"}):
        assert client.get("/api/v1/catalog/items", params).status_code == 200, params


def test_a_visitor_or_a_till_cannot_redeem(item, merchant):
    from rest_framework.test import APIClient

    assert _redeem(APIClient(), item.pk).status_code in (401, 403)
    assert _redeem(api_key_client(merchant), item.pk).status_code in (401, 403)
    assert _stock(item) == 3


# --- validating --------------------------------------------------------------------------------


@pytest.fixture
def voucher(rich, item):
    return catalog.catalog_redeem(shopper=rich, item_id=item.pk, idempotency_key="v")


def test_a_voucher_validates_once_and_the_second_is_refused(merchant, voucher):
    till = api_key_client(merchant, scopes=("vouchers",))

    # when staff validate it twice (the code as printed, with dashes, in lower case)
    first = till.post(f"/api/v1/vouchers/{voucher.display_code.lower()}/redeem")
    second = till.post(f"/api/v1/vouchers/{voucher.code}/redeem")

    # then the first is accepted and the second refused, naming when it was used
    assert first.status_code == 200 and first.json()["state"] == "used"
    assert second.status_code == 409 and error_code(second) == "voucher_already_used"
    voucher.refresh_from_db()
    assert voucher.state == Voucher.State.USED and voucher.used_via == Voucher.Channel.API


def test_another_merchants_voucher_is_not_found_and_stays_usable(voucher):
    other = api_key_client(onboard("tea"), scopes=("vouchers",))
    for response in (other.get(f"/api/v1/vouchers/{voucher.code}"),
                     other.post(f"/api/v1/vouchers/{voucher.code}/redeem")):
        assert response.status_code == 404 and error_code(response) == "voucher_not_found"
    voucher.refresh_from_db()
    assert voucher.state == Voucher.State.ISSUED


@pytest.mark.parametrize("code", ["nonsense", "AAAA-BBBB-CCCC", "x" * 300, "%20"])
def test_unknown_or_malformed_codes_are_404(merchant, voucher, code):
    response = api_key_client(merchant).post(f"/api/v1/vouchers/{code}/redeem")
    assert response.status_code == 404 and error_code(response) == "voucher_not_found"
    voucher.refresh_from_db()
    assert voucher.state == Voucher.State.ISSUED


def test_an_expired_voucher_is_refused(merchant, voucher):
    Voucher.objects.filter(pk=voucher.pk).update(expires_at=timezone.now() - timedelta(1))
    response = api_key_client(merchant).post(f"/api/v1/vouchers/{voucher.code}/redeem")
    assert response.status_code == 409 and error_code(response) == "voucher_expired"
    # the expiry job marks it; running it again changes nothing
    assert catalog.vouchers_expire() == 1
    assert catalog.vouchers_expire() == 0
    assert Voucher.objects.get(pk=voucher.pk).state == Voucher.State.EXPIRED


def test_the_beat_schedule_marks_expired_vouchers(voucher, settings):
    # given the beat schedule, and a voucher past its date
    from celery import current_app

    from points import tasks

    schedule = settings.CELERY_BEAT_SCHEDULE
    Voucher.objects.filter(pk=voucher.pk).update(expires_at=timezone.now() - timedelta(1))

    # then an entry names the voucher expiry, and every entry names a registered task
    assert schedule["expire-vouchers"]["task"] == "points.tasks.expire_vouchers"
    current_app.loader.import_default_modules()  # what a worker does at start
    assert all(entry["task"] in current_app.tasks for entry in schedule.values())

    # when its task runs (in-process in the test settings), twice
    assert tasks.expire_vouchers.delay().get() == 1
    assert tasks.expire_vouchers.delay().get() == 0

    # then the voucher is marked expired
    assert Voucher.objects.get(pk=voucher.pk).state == Voucher.State.EXPIRED


def test_validating_needs_the_vouchers_scope(merchant, voucher):
    till = api_key_client(merchant, scopes=("holds",))
    response = till.post(f"/api/v1/vouchers/{voucher.code}/redeem")
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"


# --- cancelling --------------------------------------------------------------------------------


def test_cancelling_an_unused_voucher_refunds_and_restocks(rich, item, points, voucher):
    assert balance(points, user=rich) == 9_500 and _stock(item) == 2
    response = shopper_client(rich).post(f"/api/v1/me/vouchers/{voucher.code}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert balance(points, user=rich) == 10_000 and _stock(item) == 3
    # cancelling again changes nothing
    again = shopper_client(rich).post(f"/api/v1/me/vouchers/{voucher.code}/cancel")
    assert again.status_code == 200
    assert balance(points, user=rich) == 10_000 and _stock(item) == 3
    # and a cancelled voucher cannot be used
    till = api_key_client(item.merchant)
    used = till.post(f"/api/v1/vouchers/{voucher.code}/redeem")
    assert used.status_code == 409 and error_code(used) == "voucher_cancelled"


def test_someone_elses_voucher_cannot_be_cancelled(rich, points, voucher):
    stranger = UserFactory()
    response = shopper_client(stranger).post(f"/api/v1/me/vouchers/{voucher.code}/cancel")
    assert response.status_code == 404 and error_code(response) == "voucher_not_found"
    voucher.refresh_from_db()
    assert voucher.state == Voucher.State.ISSUED and balance(points, user=rich) == 9_500


def test_used_or_non_refundable_vouchers_are_not_refunded(rich, merchant, points, voucher):
    catalog.voucher_validate(merchant=merchant, code=voucher.code)
    used = shopper_client(rich).post(f"/api/v1/me/vouchers/{voucher.code}/cancel")
    assert used.status_code == 409 and error_code(used) == "voucher_already_used"

    final = catalog_item(merchant, price=100, refundable=False)
    other = catalog.catalog_redeem(shopper=rich, item_id=final.pk, idempotency_key="nr")
    refused = shopper_client(rich).post(f"/api/v1/me/vouchers/{other.code}/cancel")
    assert refused.status_code == 409 and error_code(refused) == "voucher_not_refundable"
    assert balance(points, user=rich) == 9_400


def test_a_refund_restores_the_points_expiry(rich, item, points, voucher):
    from ledger.models import Lot

    wallet_lots = Lot.objects.filter(account__user=rich, account__asset=points, remaining__gt=0)
    before = set(wallet_lots.values_list("expires_at", flat=True))
    catalog.voucher_cancel(shopper=rich, code=voucher.code)
    assert set(wallet_lots.values_list("expires_at", flat=True)) == before


# --- the storefront's list ---------------------------------------------------------------------


def test_the_list_searches_filters_by_merchant_and_by_what_i_can_afford(merchant, points):
    # given two merchants' items and a shopper with 300 of the first's points
    cheap = catalog_item(merchant, price=200, name_en="Green tea")
    dear = catalog_item(merchant, price=5000, name_en="Tea set")
    other = onboard("bakery")
    bread = catalog_item(other, price=10, name_en="Bread")
    catalog_item(merchant, price=1, name_en="Hidden tea", active=False)
    shopper = UserFactory()
    fund(points, shopper, 300)

    def names(**filters):
        return {i.name_en for i in catalog_item_list(shopper=shopper, **filters)}

    # then: search, merchant filter and "I can afford it"
    assert names(q="tea") == {"Green tea", "Tea set"}
    assert names(merchant="bakery") == {"Bread"}
    assert names(affordable=True) == {"Green tea"}
    client = shopper_client(shopper)
    listed = client.get("/api/v1/catalog/items", {"affordable": "true"}).json()["results"]
    assert [(i["id"], i["affordable"]) for i in listed] == [(cheap.pk, True)]
    assert {i["id"] for i in client.get("/api/v1/catalog/items").json()["results"]} == {
        cheap.pk, dear.pk, bread.pk}


# --- managing items ----------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def test_an_item_picture_is_checked_by_its_content(media, merchant):
    item = catalog_item(merchant)
    saved = catalog.catalog_item_save(
        merchant=merchant, item=item, fields={"price_asset": item.price_asset, "price": 700},
        image=SimpleUploadedFile("cup.png", PNG, content_type="image/png"))
    assert saved.image_type == "image/png" and saved.image.name.endswith(".png")
    assert saved.price == 700

    for name, data in (("cup.png", b"<html><script>alert(1)</script></html>"),
                       ("cup.png", b"\xff\xd8\xff\xe0" + b"\x00" * 40),
                       ("cup.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
                       ("empty.png", b"")):
        with pytest.raises(ValidationError):
            catalog.catalog_image_check(SimpleUploadedFile(name, data))


def test_items_are_priced_in_own_points_or_shared_and_positive(merchant):
    foreign = brand(onboard("tea"))
    with pytest.raises(DomainError) as refused:
        catalog_item(merchant, asset=foreign)
    assert refused.value.code == "invalid_amount"
    for bad in (0, -5):
        with pytest.raises(DomainError):
            catalog_item(merchant, price=bad)
    assert not CatalogItem.objects.exists()


def test_another_merchants_item_cannot_be_changed(merchant):
    item = catalog_item(merchant)
    other = onboard("tea")
    with pytest.raises(DomainError) as refused:
        catalog.catalog_item_save(merchant=other, item=item,
                                  fields={"price_asset": brand(other), "price": 1})
    assert refused.value.status == 404
    assert CatalogItem.objects.get(pk=item.pk).price == 500


def test_deposit_is_untouched_by_redemptions(merchant, rich, item):
    # redemption is paid in points only: the merchant's SHARED deposit does not move
    before = merchant_services.deposit_status(merchant).balance
    catalog.catalog_redeem(shopper=rich, item_id=item.pk, idempotency_key="d")
    assert merchant_services.deposit_status(merchant).balance == before
    assert Decimal(before) > 0
