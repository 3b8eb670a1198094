"""The explorer's log pages, under ``/explorer/`` (included before the explorer's home)."""

from django.urls import path

from . import views

app_name = "ledger"

urlpatterns = [
    path("checkpoints/", views.checkpoint_list, name="checkpoints"),
    path("verify/", views.receipt_verify, name="verify"),
    path("receipt/", views.receipt_download, name="receipt-download"),
]
