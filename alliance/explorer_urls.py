"""The explorer's ledger pages under ``/explorer/`` (namespace ``explorer-ledger``)."""

from django.urls import path

from . import explorer_views

app_name = "explorer-ledger"

urlpatterns = [
    path("assets/", explorer_views.asset_list, name="assets"),
    path("assets/<str:code>/", explorer_views.asset_detail, name="asset"),
    path("transactions/", explorer_views.transaction_list, name="transactions"),
    path("transactions/<int:transaction_id>/", explorer_views.transaction_detail,
         name="transaction"),
    path("reserves/", explorer_views.reserve_list, name="reserves"),
]
