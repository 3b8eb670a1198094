"""``/dashboard/webhooks/`` (namespace ``webhooks``)."""

from django.urls import path

from . import webhook_views

app_name = "webhooks"

urlpatterns = [
    path("webhooks/", webhook_views.endpoint_list, name="list"),
    path("webhooks/<int:pk>/", webhook_views.delivery_list, name="deliveries"),
    path("webhooks/<int:pk>/deliveries/<int:delivery_id>/replay", webhook_views.delivery_replay,
         name="replay"),
]
