"""Pluggable SMS sending for phone verification and login codes.

``settings.SMS_BACKEND`` names a class with ``send(phone, message)``. The demo prints to the
console; tests collect messages in ``outbox``; production plugs in the operator's SMS gateway
by subclassing ``SmsBackend``.
"""

import logging
import sys

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

outbox: list[tuple[str, str]] = []


class SmsBackend:
    def send(self, phone: str, message: str) -> None:
        raise NotImplementedError


class ConsoleSmsBackend(SmsBackend):
    def send(self, phone: str, message: str) -> None:
        sys.stdout.write(f"[SMS to {phone}] {message}\n")
        sys.stdout.flush()


class OutboxSmsBackend(SmsBackend):
    def send(self, phone: str, message: str) -> None:
        outbox.append((phone, message))


def send_sms(phone: str, message: str) -> None:
    backend = import_string(settings.SMS_BACKEND)()
    logger.info("sms sent", extra={"phone_suffix": phone[-4:]})
    backend.send(phone, message)
