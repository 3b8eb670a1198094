"""The sign-up bonus and sign-up velocity, hooked to allauth's signals.

The bonus (SV, an alliance parameter) is paid once per verified phone number: when someone
signs up, signs in (allauth verifies a new number before the sign-in completes) or verifies a
changed number (``alliance.signals.phone_verified``). ``signup_bonus_pay`` keys the payment by
the number, so the second account to verify a number gets nothing.
"""

import logging

from allauth.account.signals import user_logged_in, user_signed_up
from django.dispatch import receiver

from alliance.errors import DomainError
from alliance.signals import phone_verified

from . import abuse

logger = logging.getLogger(__name__)


def _bonus(user) -> None:
    from .services import signup_bonus_pay

    if user is None or not getattr(user, "pk", None) or not user.phone_verified:
        return
    try:
        signup_bonus_pay(user=user)
    except DomainError:
        # Signing in must not fail because of the bonus; the next sign-in pays it.
        logger.exception("sign-up bonus not paid", extra={"user": user.pk})


@receiver(user_signed_up, dispatch_uid="points.signup.signed_up")
def on_sign_up(sender, request, user, **kwargs) -> None:
    if request is not None:
        abuse.signup_count(request, user)
    _bonus(user)


@receiver(user_logged_in, dispatch_uid="points.signup_bonus.logged_in")
def bonus_on_login(sender, request, user, **kwargs) -> None:
    _bonus(user)


@receiver(phone_verified, dispatch_uid="points.signup_bonus.phone_verified")
def bonus_on_phone_verified(sender, user, phone, **kwargs) -> None:
    _bonus(user)
