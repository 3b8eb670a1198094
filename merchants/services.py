"""Everything that writes about merchants: API keys, staff, deposits, departures, imports.

Services take keyword arguments, check the rules they guard, write, and return the model.
They raise ``alliance.errors`` (``DomainError`` and friends); pages show the message, the API
answers it in its error shape. Who may call them (an owner, staff) is checked by the page or
endpoint through ``alliance.permissions``; which merchant a row belongs to is checked here.
"""

import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError

from .api_auth import KEY_PATTERN, KEY_PREFIX, key_hash
from .models import ApiKey, Merchant

# --- API keys ---------------------------------------------------------------------------------


class InvalidApiKeyRequest(DomainError):
    code = "invalid_api_key_request"


def api_key_new_raw() -> str:
    return f"{KEY_PREFIX}{secrets.token_hex(5)}_{secrets.token_hex(24)}"


def api_key_create(
    *, merchant: Merchant, name: str, scopes: list[str], created_by=None,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """Make a key for ``merchant``'s systems and return it with the key itself, which is shown
    this once: only its hash is stored. ``raw_key`` is for the demo seed, whose key is derived
    so a rerun prints the same one."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InvalidApiKeyRequest(_("Give the key a name of at most 80 characters."),
                                   details={"name": name[:80]})
    chosen = sorted(set(scopes or []))
    unknown = [scope for scope in chosen if scope not in ApiKey.Scope.values]
    if not chosen or unknown:
        raise InvalidApiKeyRequest(_("Choose at least one scope of: purchases, holds, vouchers."),
                                   details={"scopes": unknown or chosen})
    if raw_key is not None and not KEY_PATTERN.match(raw_key):
        raise InvalidApiKeyRequest(details={"raw_key": "malformed"})
    for _attempt in range(3):
        raw = raw_key or api_key_new_raw()
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    merchant=merchant, name=name, prefix=KEY_PATTERN.match(raw).group(1),
                    key_hash=key_hash(raw), scopes=chosen, created_by=created_by,
                )
            return api_key, raw
        except IntegrityError:
            # Two random 40-bit prefixes collided: draw again (a given raw key cannot).
            if raw_key is not None:
                raise
    raise RuntimeError("could not draw a unique API key prefix")


def api_key_revoke(*, api_key: ApiKey, revoked_by=None) -> ApiKey:
    """Revoke a key for good; revoking a revoked key changes nothing."""
    updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    if updated:
        api_key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return api_key
