"""Reads of merchants and their staff for pages and endpoints."""

from django.db.models import QuerySet

from alliance.models import User

from .models import Merchant, StaffMembership

# Merchants whose staff still work in the dashboard; the same rule as
# ``alliance.permissions.current_merchant``.
WORKING_STATUSES = (Merchant.Status.ACTIVE, Merchant.Status.LEAVING)


def staff_membership_list(*, user: User) -> QuerySet[StaffMembership]:
    """The merchants ``user`` works for, with the role at each, in a stable order."""
    return (
        StaffMembership.objects.filter(user=user, merchant__status__in=WORKING_STATUSES)
        .select_related("merchant")
        .order_by("merchant_id")
    )


def merchant_public_list() -> QuerySet[Merchant]:
    """The alliance's members as the public may see them: no customer or staff data."""
    return (
        Merchant.objects.filter(status__in=WORKING_STATUSES)
        .select_related("district")
        .only("slug", "name_zh", "name_en", "category", "district__name_zh", "district__name_en")
        .order_by("pk")
    )
