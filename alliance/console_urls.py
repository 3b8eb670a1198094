"""``/console/`` pages of issue 5: applications, departures, governance, supervision."""

from django.urls import path

from . import console_views as views

app_name = "governance"

urlpatterns = [
    path("applications/", views.application_queue, name="applications"),
    path("applications/<int:pk>/", views.application_review, name="application"),
    path("applications/<int:pk>/licence/", views.application_licence,
         name="application-licence"),
    path("applications/<int:pk>/request-changes/", views.application_request_changes_view,
         name="application-request-changes"),
    path("applications/<int:pk>/approve/", views.application_approve_view,
         name="application-approve"),
    path("applications/<int:pk>/reject/", views.application_reject_view,
         name="application-reject"),
    path("leaving/", views.leaving_queue, name="leaving"),
    path("leaving/<int:pk>/approve/", views.leaving_approve, name="leaving-approve"),
    path("leaving/<int:pk>/reject/", views.leaving_reject, name="leaving-reject"),
    path("governance/", views.governance_home, name="home"),
    path("governance/proposals/new/", views.proposal_new, name="proposal-new"),
    path("governance/proposals/<int:pk>/", views.proposal_detail, name="proposal"),
    path("governance/proposals/<int:pk>/approve/", views.proposal_approve_view,
         name="proposal-approve"),
    path("governance/proposals/<int:pk>/cancel/", views.proposal_cancel_view,
         name="proposal-cancel"),
    path("governance/parameters/<slug:key>/", views.parameter_history, name="parameter"),
    path("supervision/", views.supervision_home, name="supervision"),
    path("supervision/merchants/<int:pk>/", views.supervision_merchant,
         name="supervision-merchant"),
    path("supervision/alerts/", views.alerts, name="alerts"),
    path("supervision/alerts/<int:pk>/acknowledge/", views.alert_ack, name="alert-ack"),
]
