"""One error shape for every 4xx of the API (SPEC §7).

``{"error": {"code": "...", "message": "...", "details": {...}}}``. DRF's own exceptions,
Django's ``Http404``/``PermissionDenied`` and our ``DomainError`` all come out this way.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import Http404
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DomainError

logger = logging.getLogger(__name__)


def error_body(code: str, message: Any, details: Any = None) -> dict:
    return {"error": {"code": code, "message": force_str(message), "details": details or {}}}


def _details(detail: Any) -> Any:
    """Flatten DRF's ErrorDetail tree into plain strings, keyed by field."""
    if isinstance(detail, dict):
        return {key: _details(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_details(item) for item in detail]
    return force_str(detail)


# How long a client should wait before retrying after the database dropped its connection.
RETRY_AFTER_SECONDS = 2


def _database_gone(exc: Exception) -> bool:
    """The database connection failed under the request, whatever error the driver chose to
    say it with (a connection cut during COMMIT comes out of psycopg as an InternalError)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if not isinstance(exc, DatabaseError):
        return False
    raw = connection.connection
    return raw is None or bool(getattr(raw, "closed", False)) or bool(getattr(raw, "broken", False))


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if _database_gone(exc):
        # The database went away mid-request (a restart, a failover). The transaction rolled
        # back whole, so the client may safely retry with the same Idempotency-Key.
        logger.warning("database unavailable during an API request", exc_info=exc)
        response = Response(
            error_body("database_unavailable",
                       _("The service is briefly unavailable; retry with the same "
                         "Idempotency-Key."), {"retryable": True}),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", _("The request has invalid fields."), _details(exc.detail))
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        message = exc.detail if isinstance(exc.detail, str) else _details(exc.detail)
        details: dict = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait)}
        body = error_body(code, message, details)
    response.data = body
    return response


def json_error(code: str, message: Any, http_status: int = status.HTTP_400_BAD_REQUEST):
    from django.http import JsonResponse

    return JsonResponse(error_body(code, message), status=http_status)
