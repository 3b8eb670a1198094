"""Who a till means by "member": a member code read aloud, or the storefront's member QR.

The QR carries a short-lived signed token (refreshed every 60 seconds on the shopper's phone)
instead of the bare code, so a screenshot stops working after ``QR_TOKEN_MAX_AGE``.
"""

from django.core import signing
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError, NotFound
from alliance.models import MEMBER_CODE_ALPHABET, MEMBER_CODE_LENGTH, User

QR_PREFIX = "MQ1."
QR_SALT = "points.member-qr"
QR_REFRESH_SECONDS = 60
# One refresh period of grace, for the phone whose screen was drawn just before a refresh.
QR_TOKEN_MAX_AGE = 2 * QR_REFRESH_SECONDS


class MemberNotFound(NotFound):
    code = "member_not_found"
    default_message = _("No member has this code.")


class MemberTokenExpired(DomainError):
    code = "member_token_expired"
    status = 400
    default_message = _("This member QR code has expired; ask the shopper to show it again.")


def member_qr_token(user: User) -> str:
    """A token for the member QR; valid for ``QR_TOKEN_MAX_AGE`` seconds."""
    return QR_PREFIX + signing.dumps({"m": user.member_code}, salt=QR_SALT, compress=True)


def member_code_parse(value: str) -> str:
    """The member code a till sent, as typed or inside a QR token, checked for its form
    only; ``member_resolve`` without the look-up (``points.purchase_engine`` looks the
    shopper up with the rest of a purchase's reads). Raises as ``member_resolve``."""
    value = (value or "").strip()
    if value.startswith(QR_PREFIX):
        try:
            payload = signing.loads(value[len(QR_PREFIX):], salt=QR_SALT,
                                    max_age=QR_TOKEN_MAX_AGE)
        except signing.SignatureExpired:
            raise MemberTokenExpired() from None
        except signing.BadSignature:
            raise MemberNotFound() from None
        code = payload.get("m", "") if isinstance(payload, dict) else ""
    else:
        code = value.upper()
    if len(code) != MEMBER_CODE_LENGTH or any(c not in MEMBER_CODE_ALPHABET for c in code):
        raise MemberNotFound(details={"member": value[:40]})
    return code


def member_resolve(value: str) -> User:
    """The active shopper a till names by member code or QR token.

    Raises ``MemberNotFound`` (404) for an unknown code or a forged token and
    ``MemberTokenExpired`` (400) for a genuine token that is too old."""
    code = member_code_parse(value)
    user = User.objects.filter(member_code=code, is_active=True).first()
    if user is None:
        raise MemberNotFound(details={"member": (value or "").strip()[:40]})
    return user
