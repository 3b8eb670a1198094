"""``/dashboard/reports/`` (namespace ``reports``)."""

from django.urls import path

from . import report_views

app_name = "reports"

urlpatterns = [
    path("reports/", report_views.reports_home, name="home"),
    path("reports/transactions.csv", report_views.transactions_csv, name="transactions-csv"),
]
