from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import District, User, WorkerHeartbeat
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
