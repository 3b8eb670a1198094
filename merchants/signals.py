"""Imported members claim their balances when they sign up or sign in (SPEC §4.9).

allauth tells us when a person signs up, signs in (after the phone verification code, when
sign-up asks for one) or confirms an email address; each time, the claims waiting for their
verified phone number or email addresses move into their wallet.
"""

import logging

from allauth.account.signals import email_confirmed, user_logged_in, user_signed_up
from django.dispatch import receiver

from alliance.errors import DomainError

logger = logging.getLogger(__name__)


def _collect(user) -> None:
    from .imports import claims_collect

    if user is None or not getattr(user, "pk", None):
        return
    try:
        claims_collect(user=user)
    except DomainError:
        # Signing in must not fail because a claim could not be settled; it is retried at
        # the next sign-in, and the claim stays pending meanwhile.
        logger.exception("claims not collected", extra={"user": user.pk})


@receiver(user_signed_up, dispatch_uid="merchants.claims.signed_up")
def claims_on_sign_up(sender, request, user, **kwargs) -> None:
    _collect(user)


@receiver(user_logged_in, dispatch_uid="merchants.claims.logged_in")
def claims_on_login(sender, request, user, **kwargs) -> None:
    _collect(user)


@receiver(email_confirmed, dispatch_uid="merchants.claims.email_confirmed")
def claims_on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    _collect(email_address.user)
