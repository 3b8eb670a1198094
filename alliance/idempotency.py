"""The ``Idempotency-Key`` header that every API POST moving value must carry (SPEC §7)."""

import hashlib
import json
import re

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter

from .errors import DomainError

HEADER = "Idempotency-Key"
# Printable ASCII without spaces, as clients generate them (UUIDs, ULIDs, order numbers).
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER, location=OpenApiParameter.HEADER, required=True, type=str,
    description="A key unique to this request (1-128 printable characters). Sending the same "
                "request again with the same key returns the original result; the same key "
                "with a different body is refused with idempotency_conflict.",
)


class IdempotencyKeyRequired(DomainError):
    code = "idempotency_key_required"
    default_message = _("Send an Idempotency-Key header (1 to 128 printable characters).")


def idempotency_key(request) -> str:
    key = request.headers.get(HEADER, "")
    if not KEY_PATTERN.match(key):
        raise IdempotencyKeyRequired()
    return key


def request_fingerprint(path: str, data) -> str:
    """SHA-256 of what the client asked for: a replay must ask for exactly the same."""
    raw = json.dumps({"path": path, "body": data}, sort_keys=True, separators=(",", ":"),
                     default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
