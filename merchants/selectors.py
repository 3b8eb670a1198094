"""Reads of merchants and their staff for pages and endpoints."""

from django.db.models import Count, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from alliance.models import MerchantApplication, User
from ledger.models import Account, Posting

from .models import (
    ApiKey,
    LeaveRequest,
    MemberImport,
    Merchant,
    PendingClaim,
    StaffInvitation,
    StaffMembership,
)

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


# --- onboarding, staff, keys, deposit, imports (issue 5) ---------------------------------------
# Every read below is scoped to one merchant (or one applicant): a page passes the merchant it
# resolved with ``current_merchant``, so an id of another merchant's row is simply not found.


def application_list_for(*, applicant: User):
    return (MerchantApplication.objects.filter(applicant=applicant)
            .select_related("district", "merchant").order_by("-created_at", "-pk"))


def application_get_for(*, applicant: User, pk: int):
    return get_object_or_404(application_list_for(applicant=applicant), pk=pk)


def staff_list(*, merchant: Merchant) -> QuerySet[StaffMembership]:
    return (StaffMembership.objects.filter(merchant=merchant).select_related("user")
            .order_by("role", "user__email", "pk"))


def staff_get(*, merchant: Merchant, pk: int) -> StaffMembership:
    return get_object_or_404(staff_list(merchant=merchant), pk=pk)


def invitation_open_list(*, merchant: Merchant):
    return StaffInvitation.objects.filter(
        merchant=merchant, accepted_at__isnull=True, revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).order_by("-created_at")


def invitation_get(*, merchant: Merchant, pk: int):
    return get_object_or_404(StaffInvitation, merchant=merchant, pk=pk)


def api_key_list(*, merchant: Merchant):
    return ApiKey.objects.filter(merchant=merchant).order_by("revoked_at", "-created_at", "-pk")


def api_key_get(*, merchant: Merchant, pk: int):
    return get_object_or_404(api_key_list(merchant=merchant), pk=pk)


def deposit_history(*, merchant: Merchant, limit: int = 50) -> list[dict]:
    """The latest movements of the merchant's SHARED deposit, newest first (minor units)."""
    return list(
        Posting.objects.filter(account__merchant=merchant, account__kind=Account.Kind.DEPOSIT,
                               account__asset__code="SHARED")
        .select_related("transaction").order_by("-transaction_id", "-leg")
        .values("transaction_id", "transaction__kind", "transaction__created_at", "amount")[:limit]
    )


def leave_request_open(*, merchant: Merchant):
    return LeaveRequest.objects.filter(merchant=merchant,
                                       status=LeaveRequest.Status.PENDING).first()


def leave_request_list(*, merchant: Merchant):
    return LeaveRequest.objects.filter(merchant=merchant).order_by("-requested_at", "-pk")


def member_import_list(*, merchant: Merchant):
    return (MemberImport.objects.filter(merchant=merchant).select_related("asset")
            .order_by("-created_at", "-pk"))


def member_import_get(*, merchant: Merchant, pk: int):
    return get_object_or_404(member_import_list(merchant=merchant), pk=pk)


def member_import_claims_summary(*, member_import) -> dict:
    """How many of an import's members have claimed their points, and how many wait."""
    rows = (PendingClaim.objects.filter(member_import=member_import).values("status")
            .annotate(count=Count("pk"), total=Sum("amount")))
    found = {row["status"]: row for row in rows}
    return {status: found.get(status, {"count": 0, "total": 0})
            for status in PendingClaim.Status.values}
