"""``/api/v1/``: every app's endpoints under one versioned root."""

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from alliance.apis import MeApi, SystemStatusApi

app_name = "api"


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request: Request, format=None) -> Response:
    """Entry point of the API: links to the schema and the interactive docs."""
    return Response(
        {
            "version": "v1",
            "schema": reverse("schema", request=request),
            "docs": reverse("swagger-ui", request=request),
        }
    )


urlpatterns = [
    path("", api_root, name="root"),
    path("me", MeApi.as_view(), name="me"),
    path("console/status", SystemStatusApi.as_view(), name="console-status"),
    # For merchant systems, signed with an API key (merchants.api_urls).
    path("merchant/", include("merchants.api_urls")),
    # The transparency log and receipts (ledger.api_urls): public paths witnesses rely on.
    path("", include("ledger.api_urls")),
    # Purchases and refunds for merchant systems (points.api_urls).
    path("", include("points.api_urls")),
    # Tasks for signed-in shoppers, by session (points.tasks_api_urls).
    path("", include("points.tasks_api_urls")),
    # Spending: holds, vouchers, catalog, exchange, lotteries (points.spending_api_urls).
    path("", include("points.spending_api_urls")),
    # Each day's airdrop and its snapshot, public (points.job_api_urls).
    path("", include("points.job_api_urls")),
]
