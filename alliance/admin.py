from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from .models import (
    Alert,
    AllianceParameter,
    District,
    MerchantApplication,
    ParameterChange,
    Proposal,
    ProposalApproval,
    User,
    WorkerHeartbeat,
)
from .views import admin_login


def _superuser_only(request) -> bool:
    # SPEC §7: /admin/ is for superusers only; staff work in the console.
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = _superuser_only
# Sign-in goes through allauth (MFA, rate limits); non-superusers get 403 (alliance.views).
admin.site.login = admin_login
admin.site.site_header = _("Alliance Points administration")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["pk"]
    list_display = ["pk", "email", "phone", "member_code", "is_alliance_staff", "is_supervisor",
                    "is_council_member", "is_superuser"]
    search_fields = ["email", "phone", "member_code"]
    list_filter = ["is_alliance_staff", "is_supervisor", "is_council_member", "is_superuser"]
    fieldsets = (
        (None, {"fields": ("email", "phone", "phone_verified", "display_name", "password")}),
        (_("Roles"), {"fields": ("is_active", "is_alliance_staff", "is_supervisor",
                                 "is_council_member", "is_staff", "is_superuser")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"fields": ("email", "phone", "password1", "password2")}),)


admin.site.register(District)
admin.site.register(WorkerHeartbeat)


# --- issue 5: read-only views of decisions that services and the council make ---------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only a service changes (a decision, a council vote): shown, never edited."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MerchantApplication)
class MerchantApplicationAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ["pk", "name_en", "licence_number", "asset_code", "status", "submitted_at",
                    "decided_at"]
    list_filter = ["status", "category", "district"]
    search_fields = ["name_en", "name_zh", "legal_name", "licence_number"]


class ApprovalInline(admin.TabularInline):
    model = ProposalApproval
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdmin):
    list_display = ["pk", "kind", "status", "threshold", "created_at", "closed_at"]
    list_filter = ["kind", "status"]
    inlines = [ApprovalInline]


@admin.register(AllianceParameter)
class AllianceParameterAdmin(ReadOnlyAdmin):
    list_display = ["key", "value", "updated_at"]


@admin.register(ParameterChange)
class ParameterChangeAdmin(ReadOnlyAdmin):
    list_display = ["key", "old_value", "new_value", "changed_by", "changed_at", "proposal"]
    list_filter = ["key"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["kind", "severity", "merchant", "raised_at", "acknowledged_at"]
    list_filter = ["kind", "severity"]
