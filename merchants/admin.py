"""The admin's view of merchants, staff, keys, departures and imports (superusers only).

Read-only where a service guards the rules (keys, departures, imports, claims): those change
through the dashboard and the console, never by editing rows here.
"""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import (
    ApiKey,
    LeaveRequest,
    MemberImport,
    Merchant,
    StaffInvitation,
    StaffMembership,
    Store,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class StoreInline(admin.TabularInline):
    model = Store
    extra = 0


class StaffInline(admin.TabularInline):
    model = StaffMembership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["pk", "name_en", "name_zh", "slug", "status", "district", "rebate_rate"]
    list_filter = ["status", "district"]
    search_fields = ["name_en", "name_zh", "slug", "licence_number"]
    # Suspension and readmission are council decisions, departures staff decisions.
    readonly_fields = ["status"]
    inlines = [StoreInline, StaffInline]


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "name", "merchant", "scopes", "created_at", "last_used_at",
                    "revoked_at"]
    list_filter = ["merchant"]
    exclude = ["key_hash"]


@admin.register(StaffInvitation)
class StaffInvitationAdmin(ReadOnlyAdmin):
    list_display = ["email", "merchant", "role", "created_at", "expires_at", "accepted_at",
                    "revoked_at"]
    exclude = ["token_hash"]


@admin.register(LeaveRequest)
class LeaveRequestAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ["merchant", "status", "requested_at", "decided_at", "refunded"]
    list_filter = ["status"]


@admin.register(MemberImport)
class MemberImportAdmin(ReadOnlyAdmin):
    list_display = ["pk", "merchant", "filename", "status", "row_count", "rows_done",
                    "created_at", "committed_at"]
    list_filter = ["status"]
