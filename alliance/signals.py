"""Signals the alliance app sends for other apps to act on."""

from django.dispatch import Signal

# A user's phone number has just been verified (by SMS code: at sign-up, at sign-in or after
# a change). Sent with ``user`` and ``phone`` (E.164).
phone_verified = Signal()
