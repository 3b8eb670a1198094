"""Errors that services raise and that every interface turns into SPEC §7's shape.

A service raises a ``DomainError`` subclass with a stable machine ``code``; the API answers it
as ``{"error": {"code", "message", "details"}}`` with ``status``, and pages show ``message``.
"""

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code = "invalid"
    status = 400
    default_message: Any = _("The request could not be carried out.")

    def __init__(
        self, message: Any = None, *, details: dict | None = None, code: str | None = None
    ):
        self.message = message if message is not None else self.default_message
        self.details = details or {}
        if code:
            self.code = code
        super().__init__(str(self.message))


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class Conflict(DomainError):
    code = "conflict"
    status = 409
    default_message = _("The request conflicts with the current state.")


class PermissionDenied(DomainError):
    code = "permission_denied"
    status = 403
    default_message = _("You do not have permission to do this.")
