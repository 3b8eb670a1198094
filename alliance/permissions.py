"""The one permission layer: which role reaches which section, page and endpoint.

``ACCESS`` is the whole table (role × area → allowed). Pages use ``AccessRequiredMixin`` or
``access_required``; API views use ``HasAccess``; navigation and the permission tests are
generated from the same table, so a rule is written once.

Merchant roles are relative to the merchant the user is working for (``request.merchant``,
resolved by ``current_merchant``): being the owner of one merchant gives nothing at another.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission


class Role(models.TextChoices):
    ANONYMOUS = "anonymous", _("Visitor")
    SHOPPER = "shopper", _("Shopper")
    CASHIER = "cashier", _("Cashier")
    MANAGER = "manager", _("Store manager")
    OWNER = "owner", _("Merchant owner")
    ALLIANCE_STAFF = "alliance_staff", _("Alliance staff")
    SUPERVISOR = "supervisor", _("Supervisor")
    COUNCIL = "council", _("Council member")
    SUPERUSER = "superuser", _("Superuser")


EVERYONE = frozenset(Role)
SIGNED_IN = EVERYONE - {Role.ANONYMOUS}
MERCHANT_STAFF = frozenset({Role.CASHIER, Role.MANAGER, Role.OWNER})

ACCESS: dict[str, frozenset[Role]] = {
    "explorer": EVERYONE,
    "storefront": SIGNED_IN,
    "storefront.catalog": SIGNED_IN,
    "storefront.vouchers": SIGNED_IN,
    "storefront.exchange": SIGNED_IN,
    "storefront.lotteries": SIGNED_IN,
    "dashboard.apply": SIGNED_IN,
    "dashboard": MERCHANT_STAFF,
    "dashboard.purchases": MERCHANT_STAFF,
    "dashboard.vouchers": MERCHANT_STAFF,
    "dashboard.catalog": frozenset({Role.MANAGER, Role.OWNER}),
    "dashboard.lotteries": frozenset({Role.MANAGER, Role.OWNER}),
    "dashboard.exchange": frozenset({Role.OWNER}),
    "dashboard.configure": frozenset({Role.MANAGER, Role.OWNER}),
    "dashboard.reports": frozenset({Role.MANAGER, Role.OWNER}),
    "dashboard.staff": frozenset({Role.OWNER}),
    "dashboard.api_keys": frozenset({Role.OWNER}),
    "dashboard.webhooks": frozenset({Role.OWNER}),
    "dashboard.deposit": frozenset({Role.OWNER}),
    "dashboard.import": frozenset({Role.OWNER}),
    # Accepting a staff invitation: whoever the invited address belongs to, once signed in.
    "dashboard.invitation": SIGNED_IN,
    "console": frozenset({Role.ALLIANCE_STAFF, Role.SUPERVISOR, Role.COUNCIL}),
    "console.applications": frozenset({Role.ALLIANCE_STAFF}),
    "console.governance": frozenset({Role.ALLIANCE_STAFF, Role.COUNCIL}),
    "console.governance.vote": frozenset({Role.COUNCIL}),
    "console.supervision": frozenset({Role.ALLIANCE_STAFF, Role.SUPERVISOR}),
    "console.jobs": frozenset({Role.ALLIANCE_STAFF, Role.SUPERVISOR}),
    "admin": frozenset({Role.SUPERUSER}),
}


def current_merchant(request: HttpRequest):
    """The merchant the signed-in user works for in this request, or None.

    A user on the staff of several merchants picks one in the dashboard; the choice is kept in
    the session. Cached on the request so a page resolves it once.
    """
    if hasattr(request, "_merchant_membership"):
        membership = request._merchant_membership
        return membership.merchant if membership else None
    membership = None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        from merchants.models import StaffMembership

        memberships = StaffMembership.objects.filter(
            user=user, merchant__status__in=["active", "leaving"]
        ).select_related("merchant")
        chosen = request.session.get("merchant_id") if hasattr(request, "session") else None
        if chosen:
            membership = memberships.filter(merchant_id=chosen).first()
        if membership is None:
            membership = memberships.order_by("merchant_id").first()
    request._merchant_membership = membership
    return membership.merchant if membership else None


def roles_of(request: HttpRequest) -> frozenset[Role]:
    """Every role the requester holds now, merchant roles for the current merchant only."""
    cached = getattr(request, "_roles", None)
    if cached is not None:
        return cached
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        roles = frozenset({Role.ANONYMOUS})
    else:
        found = {Role.SHOPPER}
        if user.is_alliance_staff:
            found.add(Role.ALLIANCE_STAFF)
        if user.is_supervisor:
            found.add(Role.SUPERVISOR)
        if user.is_council_member:
            found.add(Role.COUNCIL)
        if user.is_superuser:
            found.add(Role.SUPERUSER)
        if current_merchant(request) is not None:
            found.add(Role(request._merchant_membership.role))
        roles = frozenset(found)
    request._roles = roles
    return roles


def can_access(request: HttpRequest, area: str) -> bool:
    return bool(roles_of(request) & ACCESS[area])


def check_access(request: HttpRequest, area: str) -> None:
    """Raise PermissionDenied unless the requester may use ``area``."""
    if not can_access(request, area):
        raise PermissionDenied


def access_required(area: str) -> Callable:
    """Decorator for function views: anonymous visitors go to the login page, others get 403."""
    if area not in ACCESS:
        raise KeyError(area)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any):
            if not can_access(request, area):
                if not request.user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.access_area = area  # type: ignore[attr-defined]
        return wrapper

    return decorator


class AccessRequiredMixin:
    """Class-based views: set ``access = "console.applications"``."""

    access: str = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any):
        if not can_access(request, self.access):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class HasAccess(BasePermission):
    """DRF: ``permission_classes = [HasAccess.to("dashboard.purchases")]``."""

    area = ""

    @classmethod
    def to(cls, area: str) -> type["HasAccess"]:
        if area not in ACCESS:
            raise KeyError(area)
        return type(f"HasAccess_{area.replace('.', '_')}", (cls,), {"area": area})

    def has_permission(self, request, view) -> bool:
        return can_access(request, self.area)
