"""The airdrops' public interface (``/api/v1/airdrops``): each day's parameters and the
snapshot the split was computed from, so anyone can recompute it (``manage.py airdrop_verify
--file``). Public, no login; account ids are the ledger's pseudonymous public ids.
"""

import json
from collections.abc import Iterator
from datetime import date

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from alliance.errors import NotFound

from .airdrop import (
    LINE_FORMAT,
    airdrop_get,
    airdrop_snapshot_rows,
    airdrop_transactions,
)
from .models import Airdrop

ROUNDING = ("part = D × sv // total, the units left over one each to the largest remainders "
            "(D × sv mod total), ties to the earlier entry; SV removed = part × sv_per_shared "
            "rounded half up, at most the entry's SV")


class AirdropSerializer(serializers.ModelSerializer):
    amount_minor = serializers.IntegerField(source="amount")
    total_sv_minor = serializers.IntegerField(source="total_sv")
    snapshot = serializers.SerializerMethodField()

    class Meta:
        model = Airdrop
        fields = ["date", "amount_minor", "reference_price", "sv_per_shared", "holders",
                  "total_sv_minor", "snapshot_sha256", "chunks", "snapshot"]

    def get_snapshot(self, airdrop: Airdrop) -> str:
        return reverse("api:airdrop-snapshot", args=[airdrop.date.isoformat()],
                       request=self.context.get("request"))


class AirdropListApi(generics.ListAPIView):
    """Every day's airdrop, newest first."""

    permission_classes = [AllowAny]
    serializer_class = AirdropSerializer
    pagination_class = LimitOffsetPagination
    queryset = Airdrop.objects.order_by("-date")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise NotFound(details={"date": value}) from None


def _snapshot_json(airdrop: Airdrop, header: dict) -> Iterator[bytes]:
    # Streamed: a million holders make tens of megabytes that need not sit in memory.
    head = json.dumps(header, separators=(",", ":"))
    yield (head[:-1] + ',"entries":[').encode()
    batch = []
    for number, row in enumerate(airdrop_snapshot_rows(airdrop)):
        batch.append(("," if number else "") + json.dumps(list(row), separators=(",", ":")))
        if len(batch) == 5000:
            yield "".join(batch).encode()
            batch = []
    yield ("".join(batch) + "]}").encode()


class AirdropSnapshotApi(APIView):
    """The frozen snapshot of one day's airdrop: its parameters, its SHA-256, the ledger
    transactions that paid it, and one entry per holder in snapshot order:
    ``[SV wallet, SHARED wallet, SV, SHARED received, SV removed]`` (minor units). The
    SHA-256 is over ``"<SV wallet> <SHARED wallet> <SV>\\n"`` per entry."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="airdrop_snapshot",
                   responses={200: OpenApiResponse(OpenApiTypes.OBJECT),
                              404: OpenApiResponse(description="No airdrop that day.")})
    def get(self, request: Request, day: str) -> StreamingHttpResponse:
        airdrop = airdrop_get(_day(day))
        if airdrop is None:
            raise NotFound(details={"date": day})
        header = {
            "date": airdrop.date.isoformat(), "asset": "SHARED",
            "amount_minor": airdrop.amount, "reference_price": str(airdrop.reference_price),
            "sv_per_shared": str(airdrop.sv_per_shared), "holders": airdrop.holders,
            "total_sv_minor": airdrop.total_sv, "snapshot_sha256": airdrop.snapshot_sha256,
            "line_format": LINE_FORMAT, "rule": ROUNDING,
            "transactions": airdrop_transactions(airdrop),
        }
        response = StreamingHttpResponse(_snapshot_json(airdrop, header),
                                         content_type="application/json")
        response["Content-Disposition"] = (
            f'inline; filename="airdrop-{airdrop.date.isoformat()}.json"')
        return response
