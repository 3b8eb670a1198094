"""``/api/v1/airdrops``: the published airdrops (points.job_apis), public."""

from django.urls import path

from . import job_apis

urlpatterns = [
    path("airdrops", job_apis.AirdropListApi.as_view(), name="airdrops"),
    path("airdrops/<str:day>/snapshot", job_apis.AirdropSnapshotApi.as_view(),
         name="airdrop-snapshot"),
]
