"""``/api/v1/merchant/``: endpoints for merchant systems signed with an API key."""

from django.urls import path

from . import apis

urlpatterns = [
    path("key", apis.ApiKeyInfoApi.as_view(), name="merchant-key"),
    path("deposit", apis.DepositApi.as_view(), name="merchant-deposit"),
]
