"""Two-factor authentication is required of the people who govern and supervise.

Alliance staff, supervisors, council members and superusers reach the console, the admin and
the console API only with a TOTP authenticator activated; until then they are sent to set
one up (pages) or refused with ``mfa_required`` (API). Shoppers and merchant staff are not
forced (allauth still offers them TOTP). Switched by ``MFA_REQUIRED_FOR_STAFF``: on in
production, off by default in the local demo so its printed logins work at once.
"""

from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from .api_errors import json_error
from .permissions import Role, roles_of

PRIVILEGED = frozenset({Role.ALLIANCE_STAFF, Role.SUPERVISOR, Role.COUNCIL, Role.SUPERUSER})
GUARDED_PREFIXES = ("/console/", "/admin/", "/api/v1/console/")


def mfa_missing(request) -> bool:
    """True when the requester holds a privileged role but has no TOTP authenticator."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if not roles_of(request) & PRIVILEGED:
        return False
    return not is_mfa_enabled(user, ["totp"])


class MfaRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (getattr(settings, "MFA_REQUIRED_FOR_STAFF", True)
                and request.path.startswith(GUARDED_PREFIXES) and mfa_missing(request)):
            if request.path.startswith("/api/"):
                return json_error("mfa_required",
                                  _("Activate two-factor authentication to use this."), 403)
            messages.warning(request, _("Your role needs two-factor authentication. Set up "
                                        "an authenticator app to continue."))
            target = reverse("mfa_activate_totp")
            return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
