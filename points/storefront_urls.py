"""The shopper's wallet pages (namespace ``wallet``), included before ``points.urls`` so the
wallet answers ``/`` for a signed-in shopper."""

from django.urls import path

from . import storefront_views

app_name = "wallet"

urlpatterns = [
    path("", storefront_views.wallet_home, name="home"),
    path("history/", storefront_views.history, name="history"),
    path("history/<int:transaction_id>/receipt.json", storefront_views.receipt_download,
         name="receipt"),
    path("notifications/", storefront_views.notifications, name="notifications"),
    path("nearby/", storefront_views.nearby, name="nearby"),
]
