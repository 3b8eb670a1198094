"""Mail to people about decisions: templates in ``templates/emails/``, sent after commit.

A decision rolled back must not have been announced, so every mail waits for the database
transaction that made the decision (``transaction.on_commit``).
"""

import logging
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def _send(to: list[str], subject: str, body: str) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except OSError:
        # The decision stands whether or not the mail server answers; the page shows it too.
        logger.exception("mail not sent", extra={"template_subject": subject})


def email_after_commit(*, to: str | list[str], template: str, context: dict) -> None:
    """Render ``emails/<template>_subject.txt`` and ``emails/<template>.txt`` now, in the
    active language, and send them once the current transaction commits."""
    recipients: list[str] = []
    for address in [to] if isinstance(to, str) else to:
        if address and address.lower() not in {r.lower() for r in recipients}:
            recipients.append(address)
    if not recipients:
        return
    context = {"site_name": "Alliance Points", **context}
    subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
    body = render_to_string(f"emails/{template}.txt", context)
    transaction.on_commit(partial(_send, recipients, subject, body))
