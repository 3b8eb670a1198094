"""``/dashboard/`` pages of onboarding: applying, staff, API keys, deposit, member imports."""

from django.urls import path

from . import dashboard_views as views

app_name = "onboarding"

urlpatterns = [
    path("apply/", views.apply_list, name="apply"),
    path("apply/new/", views.apply_new, name="apply-new"),
    path("apply/<int:pk>/", views.apply_detail, name="apply-detail"),
    path("apply/<int:pk>/submit/", views.apply_submit, name="apply-submit"),
    path("apply/<int:pk>/withdraw/", views.apply_withdraw, name="apply-withdraw"),
    path("apply/<int:pk>/licence/", views.apply_licence, name="apply-licence"),
    path("staff/", views.staff_list, name="staff"),
    path("staff/<int:pk>/role/", views.staff_role, name="staff-role"),
    path("staff/<int:pk>/remove/", views.staff_delete, name="staff-remove"),
    path("staff/invitations/<int:pk>/withdraw/", views.invitation_revoke,
         name="invitation-revoke"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("keys/", views.api_keys, name="api-keys"),
    path("keys/<int:pk>/revoke/", views.api_key_delete, name="api-key-revoke"),
    path("deposit/", views.deposit, name="deposit"),
    path("deposit/leave/", views.deposit_leave, name="deposit-leave"),
    path("deposit/leave/cancel/", views.deposit_leave_cancel, name="deposit-leave-cancel"),
    path("members/import/", views.imports, name="imports"),
    path("members/import/<int:pk>/", views.import_detail, name="import-detail"),
    path("members/import/<int:pk>/start/", views.import_start, name="import-start"),
]
