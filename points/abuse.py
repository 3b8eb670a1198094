"""Abuse defences (薅羊毛, SPEC §4.4): velocity limits and suspicious-pattern flags.

Counters live in the cache (Redis in production and tests), one key per (what, who, window):
``cache.add`` opens a window with its TTL, ``cache.incr`` counts in it atomically, so every web
node sees the same count. Limits are fixed windows; ``ABUSE_LIMITS`` in the settings overrides
any of ``DEFAULT_LIMITS`` as ``{"name": (count, seconds)}``.

Going over a limit refuses the request (``RateLimited``, 429 ``rate_limited``) and raises one
supervisor alert per window; patterns that are only suspicious (many accounts completing tasks
from one address, many sign-ups from one device) raise an alert and refuse nothing.

A device is what the client says it is (``X-Device-Id`` from an app, or the ``device_id``
cookie the storefront sets), else a hash of its user agent and languages: cheap to change, so
the per-address and per-account limits carry the weight.
"""

import hashlib
import logging
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError

logger = logging.getLogger(__name__)

DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    # Task completions (refused above the count).
    "task_user": (20, 600),
    "task_ip": (120, 3600),
    "task_device": (40, 3600),
    # Sign-ups (refused at the count).
    "signup_ip": (10, 3600),
    "signup_device": (5, 3600),
    # Flags for supervisors (alerted above the count, nothing refused).
    "task_ip_accounts": (5, 3600),
    "signup_ip_flag": (3, 3600),
    "signup_device_flag": (2, 3600),
}

DEVICE_COOKIE = "device_id"
DEVICE_COOKIE_AGE = 2 * 365 * 24 * 3600


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429
    default_message = _("Too many attempts in a short time. Please try again later.")


def limit(name: str) -> tuple[int, int]:
    return {**DEFAULT_LIMITS, **getattr(settings, "ABUSE_LIMITS", {})}[name]


def _prefix() -> str:
    return getattr(settings, "ABUSE_CACHE_PREFIX", "abuse")


def _key(name: str, ident: str, window: int, now: float) -> tuple[str, int]:
    bucket = int(now // window)
    digest = hashlib.sha256(ident.encode()).hexdigest()[:24]
    # Seconds until this window closes: the Retry-After a refused client is told.
    return f"{_prefix()}:{name}:{digest}:{bucket}", window - int(now % window)


def hit(name: str, ident: str, *, now: float | None = None) -> int:
    """Count one event for ``ident`` in the current window of limit ``name``; the count so
    far. A cache outage counts nothing (0): the ledger's limits and budgets still hold."""
    _count, window = limit(name)
    key, _left = _key(name, ident, window, now if now is not None else time.time())
    try:
        cache.add(key, 0, timeout=window + 60)
        try:
            return cache.incr(key)
        except ValueError:  # the key expired between add and incr
            cache.add(key, 1, timeout=window + 60)
            return 1
    except Exception:  # the defence must not take the storefront down with the cache
        logger.warning("abuse counter unavailable", exc_info=True)
        return 0


def peek(name: str, ident: str, *, now: float | None = None) -> int:
    _count, window = limit(name)
    key, _left = _key(name, ident, window, now if now is not None else time.time())
    try:
        return int(cache.get(key) or 0)
    except Exception:
        logger.warning("abuse counter unavailable", exc_info=True)
        return 0


def first_time(name: str, ident: str, *, now: float | None = None) -> bool:
    """True the first time ``ident`` is seen in the current window of limit ``name``."""
    _count, window = limit(name)
    key, _left = _key(f"{name}.seen", ident, window, now if now is not None else time.time())
    try:
        return bool(cache.add(key, 1, timeout=window + 60))
    except Exception:
        logger.warning("abuse counter unavailable", exc_info=True)
        return False


def retry_after(name: str, *, now: float | None = None) -> int:
    _count, window = limit(name)
    return _key(name, "", window, now if now is not None else time.time())[1]


def flag(*, pattern: str, ident: str, details: dict, merchant=None, now: float | None = None,
         severity: str = "warning") -> None:
    """Raise one abuse alert for supervisors per pattern, subject and window."""
    from alliance.models import Alert
    from alliance.services import alert_raise

    now = now if now is not None else time.time()
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    window = limit(pattern)[1] if pattern in DEFAULT_LIMITS else 3600
    key = f"abuse:{pattern}:{digest}:{int(now // window)}"
    try:
        alert_raise(kind=Alert.Kind.ABUSE, severity=severity, key=key, merchant=merchant,
                    details={"pattern": pattern, **details})
    except Exception:
        # An alert that cannot be written must not turn a refusal into a 500.
        logger.exception("abuse alert not raised", extra={"pattern": pattern})


# --- who is asking ----------------------------------------------------------------------------


def client_ip(request) -> str | None:
    """The client's address as allauth reads it (honouring the trusted proxy settings)."""
    from allauth.account.adapter import get_adapter

    try:
        return get_adapter(request).get_client_ip(request)
    except Exception:
        return request.META.get("REMOTE_ADDR") or None


def device_id(request) -> str:
    claimed = request.headers.get("X-Device-Id") or request.COOKIES.get(DEVICE_COOKIE) or ""
    claimed = "".join(c for c in claimed if c.isalnum() or c in "-_")[:64]
    if claimed:
        return claimed
    raw = "|".join((request.headers.get("User-Agent", ""),
                    request.headers.get("Accept-Language", "")))
    return "ua-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def device_cookie_set(request, response) -> None:
    """Give a browser a device id of its own (the storefront pages call this)."""
    if DEVICE_COOKIE not in request.COOKIES:
        response.set_cookie(DEVICE_COOKIE, uuid.uuid4().hex, max_age=DEVICE_COOKIE_AGE,
                            httponly=True, samesite="Lax",
                            secure=getattr(settings, "SESSION_COOKIE_SECURE", False))


# --- task completions -------------------------------------------------------------------------


def task_velocity_check(*, user, ip: str | None, device: str, merchant=None) -> None:
    """Count a completion attempt by this account, address and device; refuse it (and alert)
    over any limit. Alert, without refusing, when one address serves many accounts."""
    now = time.time()
    checks = [("task_user", f"u:{user.pk}")]
    if ip:
        checks.append(("task_ip", f"ip:{ip}"))
    if device:
        checks.append(("task_device", f"d:{device}"))
    over = None
    for name, ident in checks:
        count = hit(name, ident, now=now)
        if over is None and count > limit(name)[0]:
            over = (name, ident, count)
    if ip and first_time("task_ip_accounts", f"{ip}|{user.pk}", now=now):
        accounts = hit("task_ip_accounts", f"ip:{ip}", now=now)
        if accounts > limit("task_ip_accounts")[0]:
            flag(pattern="task_ip_accounts", ident=ip, now=now, merchant=merchant,
                 details={"ip": ip, "accounts": accounts, "user": user.pk})
    if over is not None:
        name, ident, count = over
        flag(pattern=name, ident=ident, now=now, merchant=merchant,
             details={"ip": ip, "device": device, "user": user.pk, "count": count,
                      "limit": limit(name)[0], "window_seconds": limit(name)[1]})
        raise RateLimited(details={"limit": name.removeprefix("task_"),
                                   "retry_after_seconds": retry_after(name, now=now)})


# --- sign-ups ---------------------------------------------------------------------------------


def signup_allowed(request) -> bool:
    """Whether this address and device are still under their sign-up limits (the form asks
    before creating anyone; ``signup_count`` counts those created)."""
    ip, device = client_ip(request), device_id(request)
    if ip and peek("signup_ip", f"ip:{ip}") >= limit("signup_ip")[0]:
        return False
    return peek("signup_device", f"d:{device}") < limit("signup_device")[0]


def signup_count(request, user) -> None:
    """Count a sign-up against its address and device; flag many from one of them."""
    now = time.time()
    ip, device = client_ip(request), device_id(request)
    if ip:
        hit("signup_ip", f"ip:{ip}", now=now)
        count = hit("signup_ip_flag", f"ip:{ip}", now=now)
        if count > limit("signup_ip_flag")[0]:
            flag(pattern="signup_ip_flag", ident=ip, now=now,
                 details={"ip": ip, "signups": count, "user": user.pk})
    hit("signup_device", f"d:{device}", now=now)
    count = hit("signup_device_flag", f"d:{device}", now=now)
    if count > limit("signup_device_flag")[0]:
        flag(pattern="signup_device_flag", ident=device, now=now,
             details={"device": device, "signups": count, "user": user.pk, "ip": ip})
