"""Merchant API keys: ``Authorization: Api-Key <key>``, scopes, revocation, the error shape."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import path
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from merchants.api_auth import (
    ApiKeyRateThrottle,
    HasApiKey,
    HasApiKeyScope,
    api_key_merchant,
    key_hash,
)
from merchants.models import ApiKey, Merchant
from merchants.services import InvalidApiKeyRequest, api_key_create, api_key_revoke
from tests.factories import MerchantFactory, UserFactory


class PurchasesProbe(APIView):
    permission_classes = [HasApiKeyScope.to("purchases")]

    def get(self, request):
        return Response({
            "merchant": api_key_merchant(request).slug,
            "anonymous_user": isinstance(request.user, AnonymousUser),
            "authenticated": request.user.is_authenticated,
        })


class AnyKeyProbe(APIView):
    permission_classes = [HasApiKey]

    def get(self, request):
        return Response({"prefix": request.auth.prefix})


class TwoPerMinute(ApiKeyRateThrottle):
    rate = "2/min"


class ThrottledProbe(AnyKeyProbe):
    throttle_classes = [TwoPerMinute]


urlpatterns = [
    path("probe/throttled", ThrottledProbe.as_view()),
    path("probe/purchases", PurchasesProbe.as_view()),
    path("probe/any", AnyKeyProbe.as_view()),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def _client(raw_key: str | None = None) -> APIClient:
    client = APIClient()
    if raw_key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_a_key_is_shown_once_and_stored_only_as_its_hash():
    # given a merchant
    merchant = MerchantFactory()

    # when its owner makes a key
    api_key, raw = api_key_create(merchant=merchant, name="Till 1", scopes=["purchases"])

    # then the key itself is nowhere in the database, only its SHA-256 and public prefix
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert raw.startswith("apk_") and len(raw) == 4 + 10 + 1 + 48
    assert stored.key_hash == key_hash(raw) and raw not in stored.key_hash
    assert raw.startswith(f"apk_{stored.prefix}_")
    assert stored.scopes == ["purchases"]


def test_a_key_with_the_scope_reaches_the_endpoint_as_its_merchant_and_nobodys_account():
    # given a key with the purchases scope
    merchant = MerchantFactory(slug="burger")
    api_key, raw = api_key_create(merchant=merchant, name="Till", scopes=["purchases", "holds"])
    assert api_key.last_used_at is None

    # when a till calls an endpoint needing purchases
    response = _client(raw).get("/probe/purchases")

    # then it acts for the merchant, as no person, and the key's last use is noted
    assert response.status_code == 200
    assert response.json() == {"merchant": "burger", "anonymous_user": True,
                               "authenticated": False}
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_a_key_without_the_scope_is_refused_403_insufficient_scope():
    # given a key for vouchers only
    _, raw = api_key_create(merchant=MerchantFactory(), name="Scanner", scopes=["vouchers"])

    # when it calls an endpoint needing purchases
    response = _client(raw).get("/probe/purchases")

    # then 403 in the error shape; any-key endpoints still admit it
    assert response.status_code == 403
    assert _error(response)["code"] == "insufficient_scope"
    assert _client(raw).get("/probe/any").status_code == 200


def test_a_revoked_key_is_refused_401_and_revoking_again_changes_nothing():
    # given a key that worked, then was revoked
    owner = UserFactory()
    api_key, raw = api_key_create(merchant=MerchantFactory(), name="Old", scopes=["purchases"])
    assert _client(raw).get("/probe/purchases").status_code == 200
    api_key_revoke(api_key=api_key, revoked_by=owner)
    revoked_at = ApiKey.objects.get(pk=api_key.pk).revoked_at

    # when it is used again, and revoked a second time
    response = _client(raw).get("/probe/purchases")
    api_key_revoke(api_key=api_key, revoked_by=UserFactory())

    # then 401 api_key_revoked, and the first revocation stands
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Api-Key")
    assert _error(response)["code"] == "api_key_revoked"
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.revoked_at == revoked_at and stored.revoked_by == owner


@pytest.mark.parametrize(
    "header",
    [
        "Api-Key apk_0000000000_" + "0" * 48,  # well formed, unknown
        "Api-Key not-a-key",
        "Api-Key",
        "Api-Key two parts",
    ],
)
def test_a_wrong_or_malformed_key_is_refused_401_invalid_api_key(header):
    # given a real key exists
    api_key_create(merchant=MerchantFactory(), name="Till", scopes=["purchases"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    # when a request carries a wrong key
    response = client.get("/probe/purchases")

    # then 401 invalid_api_key
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"


def test_a_key_whose_secret_half_is_wrong_is_refused():
    # given a real key, and a forgery that keeps its public prefix
    _, raw = api_key_create(merchant=MerchantFactory(), name="Till", scopes=["purchases"])
    forged = raw[:-6] + ("000000" if not raw.endswith("000000") else "111111")

    # then the forgery is refused
    response = _client(forged).get("/probe/purchases")
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"


def test_no_key_is_401_not_authenticated_and_a_signed_in_person_is_told_to_use_a_key():
    # given nobody, and a signed-in shopper
    anonymous = _client()
    person = APIClient()
    person.force_login(UserFactory())

    # then the one is asked to authenticate, the other is told the endpoint takes a key
    response = anonymous.get("/probe/purchases")
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"
    response = person.get("/probe/purchases")
    assert response.status_code == 403
    assert _error(response)["code"] == "api_key_required"


@pytest.mark.parametrize("status", [Merchant.Status.SUSPENDED, Merchant.Status.LEFT])
def test_a_key_of_a_suspended_or_departed_merchant_is_refused_403(status):
    # given a key of a merchant that is no longer trading
    merchant = MerchantFactory()
    _, raw = api_key_create(merchant=merchant, name="Till", scopes=["purchases"])
    Merchant.objects.filter(pk=merchant.pk).update(status=status)

    # then its calls are refused
    response = _client(raw).get("/probe/purchases")
    assert response.status_code == 403
    assert _error(response)["code"] == "merchant_inactive"


@pytest.mark.parametrize(
    ("name", "scopes"),
    [("", ["purchases"]), ("x" * 81, ["purchases"]), ("Till", []), ("Till", ["admin"])],
)
def test_a_key_request_with_no_name_or_bad_scopes_is_refused_and_nothing_is_made(name, scopes):
    merchant = MerchantFactory()
    with pytest.raises(InvalidApiKeyRequest):
        api_key_create(merchant=merchant, name=name, scopes=scopes)
    assert not ApiKey.objects.exists()


def test_each_key_has_its_own_rate_limit():
    from django.core.cache import cache

    # given two keys and a limit of two calls a minute per key
    cache.clear()
    _, first = api_key_create(merchant=MerchantFactory(), name="A", scopes=["purchases"])
    _, second = api_key_create(merchant=MerchantFactory(), name="B", scopes=["purchases"])

    # when the first key calls three times
    codes = [_client(first).get("/probe/throttled").status_code for _ in range(3)]

    # then its third call is throttled, and the other key is unaffected
    assert codes == [200, 200, 429]
    assert _client(second).get("/probe/throttled").status_code == 200
    cache.clear()


def test_a_throttled_key_is_told_when_to_retry_and_refusals_are_not_counted():
    from django.core.cache import cache

    # given a key at its limit of two calls a minute
    cache.clear()
    _, raw = api_key_create(merchant=MerchantFactory(), name="A", scopes=["purchases"])
    assert [_client(raw).get("/probe/throttled").status_code for _ in range(2)] == [200, 200]

    # when it keeps calling
    refused = [_client(raw).get("/probe/throttled") for _ in range(3)]

    # then each call is refused with the time until the oldest call leaves the minute
    assert [r.status_code for r in refused] == [429, 429, 429]
    assert all(0 < int(r["Retry-After"]) <= 60 for r in refused)
    # and the refusals were not logged as calls: the log holds the two that went through
    assert cache.client.get_client().zcard(cache.make_key(
        f"throttle_api_key_{raw.split('_')[1]}:log")) == 2
    cache.clear()


def test_without_redis_the_throttle_is_drfs_own(settings):
    # given the embedded demo's cache (local memory, no Redis)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _, raw = api_key_create(merchant=MerchantFactory(), name="A", scopes=["purchases"])

    # when a key calls three times, then the third is throttled all the same
    codes = [_client(raw).get("/probe/throttled").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
