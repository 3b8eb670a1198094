"""Earning pages: the storefront's member QR, tiers and tasks; the dashboard's till, earning
rule, tiers and tasks (``/dashboard/earning/``). Included before the storefront's catch-all."""

from django.urls import path

from . import earning_views as views

app_name = "earning"

urlpatterns = [
    path("member/qr/", views.member_qr, name="member-qr"),
    path("member/qr/code/", views.member_qr_code, name="member-qr-code"),
    path("member/tiers/", views.member_tiers, name="member-tiers"),
    path("tasks/", views.tasks, name="tasks"),
    path("tasks/<int:pk>/browse/", views.task_browse, name="task-browse"),
    path("tasks/<int:pk>/complete/", views.task_complete, name="task-complete"),
    path("dashboard/earning/", views.earning_home, name="home"),
    path("dashboard/earning/purchase/", views.purchase_new, name="purchase"),
    path("dashboard/earning/rule/", views.rule_edit, name="rule"),
    path("dashboard/earning/rule/preview/", views.rule_preview, name="rule-preview"),
    path("dashboard/earning/tiers/", views.tiers, name="tiers"),
    path("dashboard/earning/tiers/<int:pk>/delete/", views.tier_delete, name="tier-delete"),
    path("dashboard/earning/tasks/", views.task_manage, name="tasks-manage"),
    path("dashboard/earning/tasks/<int:pk>/", views.task_edit, name="task-edit"),
    path("dashboard/earning/tasks/<int:pk>/toggle/", views.task_toggle, name="task-toggle"),
]
