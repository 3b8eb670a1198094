"""Merchant API keys on the REST API: ``Authorization: Api-Key <key>``.

A request signed with a key is not a person's: ``request.user`` is an ``ApiKeyPrincipal`` (an
anonymous user that knows its key and merchant, so every role check of
``alliance.permissions`` sees a visitor) and ``request.auth`` is the ``ApiKey``. Endpoints for
merchant systems say which scope they need::

    permission_classes = [HasApiKeyScope.to("purchases")]
    merchant = api_key_merchant(request)

Refusals use the API's error shape: no key or an unknown one is 401 (``not_authenticated``,
``invalid_api_key``), a revoked key 401 ``api_key_revoked``, a key of a merchant that is
suspended or gone 403 ``merchant_inactive``, a key without the scope 403 ``insufficient_scope``.
"""

import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from alliance.prepared import fetchone_prepared

from .models import ApiKey, Merchant

logger = logging.getLogger(__name__)
KEYWORD = "Api-Key"
KEY_PREFIX = "apk_"
# apk_<10 hex: public prefix>_<48 hex: 192-bit secret>
KEY_PATTERN = re.compile(r"^apk_([0-9a-f]{10})_([0-9a-f]{48})$")
# Writing last_used_at on every request would make each API call also a write; a minute's
# precision is what the dashboard shows anyway.
LAST_USED_PRECISION = timedelta(minutes=1)
# A merchant that is leaving still trades until staff approve its departure.
TRADING_STATUSES = (Merchant.Status.ACTIVE, Merchant.Status.LEAVING)


def key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKeyPrincipal(AnonymousUser):
    """``request.user`` of a request signed with an API key: nobody's account."""

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.merchant = api_key.merchant

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


_KEY_FIELDS = ApiKey._meta.concrete_fields
_MERCHANT_FIELDS = Merchant._meta.concrete_fields
# Every column of the key and of its merchant, as select_related("merchant") reads them; the
# statement is built from the models' metadata once. ``KEY_COLUMNS`` and ``KEY_TABLES`` (keys
# as ``k``, merchants as ``m``) also serve an endpoint that reads more in the same statement
# (``points.apis.PurchaseKeyAuthentication``); ``api_key_from_row`` makes the instances.
KEY_COLUMNS = ", ".join([f"k.{f.column}" for f in _KEY_FIELDS]
                        + [f"m.{f.column}" for f in _MERCHANT_FIELDS])
KEY_WIDTH = len(_KEY_FIELDS) + len(_MERCHANT_FIELDS)
KEY_TABLES = "merchants_apikey k JOIN merchants_merchant m ON m.id = k.merchant_id"
# (column names from the models' metadata, never from a request)
_KEY_SQL = f"SELECT {KEY_COLUMNS} FROM {KEY_TABLES} WHERE k.prefix = %s"  # noqa: S608


def _instance(model, fields, values, db_connection):
    values = [f.from_db_value(v, None, db_connection) if hasattr(f, "from_db_value") else v
              for f, v in zip(fields, values, strict=True)]
    return model.from_db(db_connection.alias, [f.attname for f in fields], values)


def api_key_from_row(row) -> ApiKey:
    """The key with its merchant from the first ``KEY_WIDTH`` values of ``row``."""
    split = len(_KEY_FIELDS)
    api_key = _instance(ApiKey, _KEY_FIELDS, row[:split], connection)
    api_key.merchant = _instance(Merchant, _MERCHANT_FIELDS, row[split:KEY_WIDTH], connection)
    return api_key


def api_key_get(prefix: str) -> ApiKey | None:
    """The key of ``prefix`` with its merchant: on PostgreSQL one prepared statement, not
    built by the ORM at every request (it was a third of a purchase's Python time)."""
    if connection.vendor != "postgresql":
        return ApiKey.objects.select_related("merchant").filter(prefix=prefix).first()
    row = fetchone_prepared(_KEY_SQL, [prefix])
    return None if row is None else api_key_from_row(row)


def _fetch_by_prefix(prefix: str, _hashed: str) -> ApiKey | None:
    return api_key_get(prefix)


def api_key_authenticate(raw_key: str, fetch=_fetch_by_prefix) -> ApiKey:
    """The live key ``raw_key`` names, its use noted; or the API's 401/403 error. ``fetch``
    (prefix, hash of the key) reads the key with its merchant; whatever else it reads, the
    checks here decide."""
    match = KEY_PATTERN.match(raw_key)
    hashed = key_hash(raw_key)
    api_key = fetch(match.group(1), hashed) if match else None
    # Compared in constant time so that timing tells nothing about a stored hash.
    if api_key is None or not hmac.compare_digest(api_key.key_hash, hashed):
        raise exceptions.AuthenticationFailed(_("This API key is not valid."),
                                              code="invalid_api_key")
    if api_key.revoked_at is not None:
        raise exceptions.AuthenticationFailed(_("This API key has been revoked."),
                                              code="api_key_revoked")
    if api_key.merchant.status not in TRADING_STATUSES:
        raise exceptions.PermissionDenied(
            _("The merchant of this API key is not an active member of the alliance."),
            code="merchant_inactive",
        )
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


class ApiKeyAuthentication(BaseAuthentication):
    """DRF authentication by ``Authorization: Api-Key <key>``; other schemes pass through."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the key as: Authorization: Api-Key <key>."), code="invalid_api_key"
            )
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("This API key is not valid."),
                                                  code="invalid_api_key") from None
        # An endpoint may read what it needs with the key, in the same statement: its view's
        # ``api_key_fetch(request)`` gives a ``fetch`` for api_key_authenticate, or None.
        view = (getattr(request, "parser_context", None) or {}).get("view")
        fetch = view.api_key_fetch(request) if hasattr(view, "api_key_fetch") else None
        api_key = api_key_authenticate(raw_key, fetch) if fetch else api_key_authenticate(raw_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (with this challenge) rather than 403 to a caller without a key.
        return f'{KEYWORD} realm="api"'


class HasApiKeyScope(BasePermission):
    """``permission_classes = [HasApiKeyScope.to("purchases")]``: a live key with the scope.

    ``HasApiKeyScope.to(None)`` admits any live key."""

    scope: str | None = None
    message = _("This API key does not have the scope this endpoint needs.")
    code = "insufficient_scope"

    @classmethod
    def to(cls, scope: str | None) -> type["HasApiKeyScope"]:
        if scope is not None and scope not in ApiKey.Scope.values:
            raise KeyError(scope)
        return type(f"HasApiKeyScope_{scope or 'any'}", (cls,), {"scope": scope})

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            if request.user is not None and request.user.is_authenticated:
                # A person signed in to the site: say what this endpoint wants instead.
                raise exceptions.PermissionDenied(
                    _("This endpoint is for merchant systems: send an API key."),
                    code="api_key_required",
                )
            return False  # DRF answers 401 not_authenticated
        return self.scope is None or self.scope in api_key.scopes


HasApiKey = HasApiKeyScope.to(None)


def api_key_merchant(request) -> Merchant:
    """The merchant whose key signed ``request`` (behind ``HasApiKeyScope`` only)."""
    return request.auth.merchant


# DRF's throttles keep each caller's request times as one pickled list, read and written whole
# on every request: two round trips and a list as long as the limit (6,000 times a minute per
# key), and two web nodes can each read the list before the other writes it. On Redis the same
# sliding log lives in a sorted set, trimmed, counted and appended by one script: one round
# trip, constant traffic, atomic. Same rule as DRF: refused when the calls of the last
# ``duration`` seconds already number the limit; a refused call is not logged.
_SLIDING_LOG = """
local key, now, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, count, oldest[2]}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, math.ceil(window * 1000))
return {1, count + 1, ARGV[1]}
"""


class SlidingLogThrottle(SimpleRateThrottle):
    """DRF's sliding-log throttle, kept in a Redis sorted set when the cache is Redis (one
    round trip per request); on any other cache (the embedded demo's local memory) DRF's own.
    Redis unreachable: the call is let through, as DRF's throttles do when the cache drops
    reads and writes."""

    _wait: float | None = None

    def allow_request(self, request, view):
        backend = caches["default"]
        if self.rate is None or not hasattr(backend, "client") or not hasattr(
                backend.client, "get_client"):
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        try:
            client = backend.client.get_client(write=True)
            allowed, count, oldest = client.register_script(_SLIDING_LOG)(
                keys=[str(backend.make_key(f"{self.key}:log"))],
                args=[repr(now), self.duration, self.num_requests,
                      f"{now!r}:{secrets.token_hex(4)}"])
        except RedisError:  # an unreachable cache must not refuse the API
            logger.warning("rate limit not checked: the cache is unreachable", exc_info=True)
            return True
        if allowed:
            return True
        # As DRF's wait(): the time until the oldest logged call leaves the window, shared
        # among the calls the limit would then allow.
        available = self.num_requests - int(count) + 1
        remaining = self.duration - (now - float(oldest)) if oldest else self.duration
        self._wait = remaining / available if available > 0 else None
        return False

    def wait(self):
        if self._wait is not None or not hasattr(self, "history"):
            return self._wait
        return super().wait()


class ApiKeyRateThrottle(SlidingLogThrottle):
    """Rate limit per API key (``API_THROTTLE_API_KEY``): the tills of one shop share an IP."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}


class AnonymousRateThrottle(SlidingLogThrottle, AnonRateThrottle):
    """DRF's visitor limit per IP, except for requests signed with an API key (limited above)."""

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return None
        return super().get_cache_key(request, view)


class PersonRateThrottle(SlidingLogThrottle, UserRateThrottle):
    """DRF's per-user limit for people; API-key requests have their own limit above."""

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return None
        return super().get_cache_key(request, view)


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the Api-Key header in the OpenAPI schema (``/api/docs/``)."""

    target_class = "merchants.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "Merchant API key: `Authorization: Api-Key apk_…`. Made on the "
                           "dashboard, shown once, scoped to purchases, holds or vouchers.",
        }
