"""The transparency log's HTTP interface (``/api/v1/log/...``) and transaction receipts.

The log endpoints are public and need no login: outside witnesses and auditors depend on
them, so their paths and formats are stable (docs/log-format.md). Notes and keys are served
as ``text/plain``; every error, on every endpoint, is the JSON error shape of SPEC §7.
"""

import base64

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alliance.errors import NotFound, PermissionDenied
from alliance.permissions import Role, current_merchant, roles_of
from merchants.api_auth import HasApiKey
from merchants.models import ApiKey

from . import log_selectors, log_services
from .models import Checkpoint, WitnessKey

INT64_MAX = 2**63 - 1
TEXT = "text/plain; charset=utf-8"


def _b64(value: bytes) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


# --- shapes, for parsing and for the schema -------------------------------------------------


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.DictField()


class LogErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


ERRORS = {
    400: OpenApiResponse(LogErrorSerializer, description="Bad input."),
    404: OpenApiResponse(LogErrorSerializer, description="Nothing of that size or id."),
}


class InclusionQuerySerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, max_value=INT64_MAX,
                                     help_text="0-based log index of the leaf.")
    size = serializers.IntegerField(min_value=1, max_value=INT64_MAX,
                                    help_text="Tree size (a checkpoint's) to prove against.")


class InclusionProofSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField(help_text="Base64 SHA-256(0x00 || leaf).")
    proof = serializers.ListField(child=serializers.CharField(),
                                  help_text="RFC 9162 audit path, leaf side first, base64.")


class ConsistencyQuerySerializer(serializers.Serializer):
    first = serializers.IntegerField(min_value=1, max_value=INT64_MAX)
    second = serializers.IntegerField(min_value=1, max_value=INT64_MAX)


class ConsistencyProofSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(),
                                  help_text="RFC 9162 consistency proof, base64.")


class CosignatureInSerializer(serializers.Serializer):
    checkpoint_size = serializers.IntegerField(min_value=1, max_value=INT64_MAX)
    cosignature = serializers.CharField(
        max_length=1000, trim_whitespace=False,
        help_text="One tlog-cosignature/v1 signature line: '— <name> <base64>'.",
    )


class CosignatureOutSerializer(serializers.Serializer):
    checkpoint_size = serializers.IntegerField()
    witness = serializers.CharField(help_text="name+keyid of the witness key.")
    timestamp = serializers.IntegerField(help_text="When the witness cosigned (Unix seconds).")
    created = serializers.BooleanField(help_text="False when this witness had already cosigned.")


class WitnessSerializer(serializers.Serializer):
    name = serializers.CharField()
    key_id = serializers.CharField()
    timestamp = serializers.IntegerField()


class CheckpointSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    root_hash = serializers.SerializerMethodField()
    previous_hash = serializers.SerializerMethodField()
    signed_by = serializers.SerializerMethodField()
    supply = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    created_at = serializers.DateTimeField()
    witnesses = serializers.SerializerMethodField()

    def get_root_hash(self, checkpoint: Checkpoint) -> str:
        return _b64(checkpoint.root_hash)

    def get_previous_hash(self, checkpoint: Checkpoint) -> str | None:
        return _b64(checkpoint.previous_hash) if checkpoint.previous_hash else None

    def get_signed_by(self, checkpoint: Checkpoint) -> str:
        return log_selectors.checkpoint_signature(checkpoint)

    @extend_schema_field(WitnessSerializer(many=True))
    def get_witnesses(self, checkpoint: Checkpoint) -> list[dict]:
        return [
            {"name": c.witness.name, "key_id": f"{c.witness.key_id:08x}", "timestamp": c.timestamp}
            for c in log_selectors.cosignatures_of(checkpoint)
        ]


class ReceiptSerializer(serializers.Serializer):
    format = serializers.CharField(help_text="alliance-receipt/v1")
    origin = serializers.CharField()
    index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf = serializers.CharField(help_text="Base64 of the leaf bytes (RFC 8785 JSON).")
    inclusion_proof = serializers.ListField(child=serializers.CharField())
    checkpoint = serializers.CharField(help_text="The signed checkpoint note, with cosignatures.")


class ReceiptQuerySerializer(serializers.Serializer):
    size = serializers.IntegerField(
        min_value=1, max_value=INT64_MAX, required=False,
        help_text="Prove against this checkpoint (default: the newest one witnesses cosigned, "
                  "else the newest).",
    )
    download = serializers.BooleanField(
        required=False, default=False, help_text="Serve as a file attachment."
    )


class WitnessKeyInSerializer(serializers.Serializer):
    vkey = serializers.CharField(max_length=255, help_text="Ed25519 verifier key (note format).")
    holder = serializers.ChoiceField(
        choices=["user", "merchant"], default="user",
        help_text="Register for yourself, or for the merchant you own (current merchant).",
    )


class WitnessKeySerializer(serializers.ModelSerializer):
    key_id = serializers.SerializerMethodField()
    holder = serializers.SerializerMethodField()

    class Meta:
        model = WitnessKey
        fields = ["id", "name", "key_id", "vkey", "status", "holder", "created_at", "decided_at"]

    def get_key_id(self, key: WitnessKey) -> str:
        return f"{key.key_id:08x}"

    def get_holder(self, key: WitnessKey) -> str:
        # Public: a merchant by its slug; a user stays anonymous.
        return f"merchant:{key.merchant.slug}" if key.merchant_id else "member"


# --- views ----------------------------------------------------------------------------------


def _query_int(request: Request, name: str, minimum: int) -> int:
    """A required integer query parameter. The proof endpoints are the log's hot path, so
    they skip the serializer machinery (the serializers above still document them)."""
    raw = request.query_params.get(name)
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise serializers.ValidationError({name: [f"an integer from {minimum} is required"]})
    value = int(raw)
    if not minimum <= value <= INT64_MAX:
        raise serializers.ValidationError({name: [f"must be from {minimum} to {INT64_MAX}"]})
    return value


class PlainTextRenderer(BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data.encode("utf-8") if isinstance(data, str) else b""


class _PublicLogApi(APIView):
    """Public: no login, no session (so no CSRF), the anonymous rate limit."""

    authentication_classes = []
    permission_classes = [AllowAny]


class _TextApi(_PublicLogApi):
    """Answers ``text/plain`` (a client asking for it is served); errors stay JSON."""

    renderer_classes = [PlainTextRenderer, JSONRenderer]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @staticmethod
    def text(body: str, *, immutable: bool = False) -> HttpResponse:
        response = HttpResponse(body, content_type=TEXT)
        # A checkpoint of a given size never changes; the newest one does, every minute.
        response["Cache-Control"] = "public, max-age=86400, immutable" if immutable else "no-cache"
        return response


_NOTE = OpenApiResponse(OpenApiTypes.STR, description="A C2SP signed note.")


class LogKeyApi(_TextApi):
    """``GET /api/v1/log/key``: the log's verifier key (signed-note format)."""

    @extend_schema(
        summary="The log's verifier key", tags=["log"],
        responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR),
                   503: OpenApiResponse(LogErrorSerializer)},
    )
    def get(self, request: Request) -> HttpResponse:
        return self.text(log_services.log_verifier().to_key() + "\n")


class CheckpointLatestApi(_TextApi):
    """``GET /api/v1/log/checkpoint``: the newest checkpoint, with witness cosignatures."""

    @extend_schema(
        summary="The newest signed checkpoint", tags=["log"],
        description="C2SP tlog-checkpoint signed by the log key, followed by the cosignature "
                    "lines (tlog-cosignature v1) of the approved witnesses that cosigned it.",
        responses={(200, "text/plain"): _NOTE, 404: OpenApiResponse(LogErrorSerializer)},
    )
    def get(self, request: Request) -> HttpResponse:
        checkpoint = log_selectors.checkpoint_latest_get()
        return self.text(log_selectors.checkpoint_served_note(checkpoint))


class CheckpointApi(_TextApi):
    """``GET /api/v1/log/checkpoints/<size>``: the checkpoint of one tree size."""

    @extend_schema(
        summary="The signed checkpoint of one tree size", tags=["log"],
        responses={(200, "text/plain"): _NOTE, 404: OpenApiResponse(LogErrorSerializer)},
    )
    def get(self, request: Request, size: int) -> HttpResponse:
        checkpoint = log_selectors.checkpoint_get(size=size)
        # Cosignatures may still arrive for it: only the bytes the log signed are immutable.
        return self.text(log_selectors.checkpoint_served_note(checkpoint))


class CheckpointListApi(_PublicLogApi, generics.ListAPIView):
    """``GET /api/v1/log/checkpoints``: checkpoints, newest first, as JSON."""

    serializer_class = CheckpointSerializer
    pagination_class = LimitOffsetPagination
    filter_backends = []

    def get_queryset(self):
        return log_selectors.checkpoint_list()

    @extend_schema(summary="Checkpoints, newest first", tags=["log"])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class InclusionProofApi(_PublicLogApi):
    """``GET /api/v1/log/proof/inclusion?index=I&size=N``."""

    @extend_schema(summary="Inclusion proof of a leaf", tags=["log"],
                   parameters=[InclusionQuerySerializer],
                   responses={200: InclusionProofSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        index = _query_int(request, "index", 0)
        size = _query_int(request, "size", 1)
        leaf_hash, proof = log_selectors.inclusion_proof_get(index=index, size=size)
        return Response({"index": index, "tree_size": size, "leaf_hash": _b64(leaf_hash),
                         "proof": [_b64(item) for item in proof]})


class ConsistencyProofApi(_PublicLogApi):
    """``GET /api/v1/log/proof/consistency?first=M&second=N``."""

    @extend_schema(summary="Consistency proof between two tree sizes", tags=["log"],
                   parameters=[ConsistencyQuerySerializer],
                   responses={200: ConsistencyProofSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        first = _query_int(request, "first", 1)
        second = _query_int(request, "second", 1)
        proof = log_selectors.consistency_proof_get(first=first, second=second)
        return Response({"first": first, "second": second,
                         "proof": [_b64(item) for item in proof]})


class CosignatureApi(_PublicLogApi):
    """``POST /api/v1/log/cosignatures``: a witness hands in its cosignature. The signature
    is the credential, so no login; only approved witness keys are accepted."""

    @extend_schema(
        summary="Hand in a witness cosignature", tags=["log"],
        request=CosignatureInSerializer,
        responses={201: CosignatureOutSerializer, 200: CosignatureOutSerializer,
                   403: OpenApiResponse(LogErrorSerializer, description="Not an approved key."),
                   422: OpenApiResponse(LogErrorSerializer, description="Does not verify."),
                   **ERRORS},
        examples=[OpenApiExample("cosignature", request_only=True, value={
            "checkpoint_size": 1024,
            "cosignature": "\u2014 witness.example/w1 AAAAAAAAAAA...",
        })],
    )
    def post(self, request: Request) -> Response:
        body = CosignatureInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        cosignature, created = log_services.cosignature_add(
            checkpoint_size=body.validated_data["checkpoint_size"],
            line=body.validated_data["cosignature"],
        )
        data = {"checkpoint_size": body.validated_data["checkpoint_size"],
                "witness": str(cosignature.witness), "timestamp": cosignature.timestamp,
                "created": created}
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class WitnessKeyListApi(APIView):
    """``GET /api/v1/log/witnesses``: the approved witness keys (public).
    ``POST``: a signed-in member registers a key, pending staff approval."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else [IsAuthenticated()]

    @extend_schema(summary="Approved witness keys", tags=["log"],
                   responses=WitnessKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(WitnessKeySerializer(log_selectors.witness_key_list(), many=True).data)

    @extend_schema(summary="Register a witness key", tags=["log"],
                   request=WitnessKeyInSerializer,
                   responses={201: WitnessKeySerializer, 409: LogErrorSerializer,
                              422: LogErrorSerializer, **ERRORS})
    def post(self, request: Request) -> Response:
        body = WitnessKeyInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        holder: dict = {"user": request.user}
        if body.validated_data["holder"] == "merchant":
            if Role.OWNER not in roles_of(request):
                raise PermissionDenied(details={"holder": "only a merchant's owner"})
            holder = {"merchant": current_merchant(request)}
        key = log_services.witness_key_register(
            vkey=body.validated_data["vkey"], registered_by=request.user, **holder
        )
        return Response(WitnessKeySerializer(key).data, status=status.HTTP_201_CREATED)


class IsAllianceStaff(BasePermission):
    def has_permission(self, request, view) -> bool:
        return Role.ALLIANCE_STAFF in roles_of(request)


class WitnessKeyDecisionApi(APIView):
    """``POST /api/v1/log/witnesses/<id>/approve`` and ``.../revoke``: alliance staff."""

    permission_classes = [IsAllianceStaff]
    decision = ""

    @extend_schema(summary="Approve or revoke a witness key", tags=["log"], request=None,
                   responses={200: WitnessKeySerializer, 409: LogErrorSerializer, **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        key = WitnessKey.objects.filter(pk=pk).first() if pk <= INT64_MAX else None
        if key is None:
            raise NotFound(details={"witness_key": pk})
        service = (log_services.witness_key_approve if self.decision == "approve"
                   else log_services.witness_key_revoke)
        return Response(WitnessKeySerializer(service(witness_key=key, by=request.user)).data)


class ReceiptApi(APIView):
    """``GET /api/v1/transactions/<id>/receipt``: the verifiable receipt of a transaction,
    for its parties (``python -m ledger.verify`` checks it offline): a signed-in party, or
    the system of a merchant that is one, with any of its API keys."""

    permission_classes = [IsAuthenticated | HasApiKey]

    @extend_schema(
        summary="Verifiable receipt of a transaction", tags=["log"],
        parameters=[ReceiptQuerySerializer],
        responses={200: ReceiptSerializer,
                   403: OpenApiResponse(LogErrorSerializer, description="Not a party."),
                   409: OpenApiResponse(LogErrorSerializer,
                                        description="not_anchored_yet: no checkpoint yet."),
                   **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        query = ReceiptQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        transaction = log_selectors.transaction_get(transaction_id=pk)
        merchant = request.auth.merchant if isinstance(request.auth, ApiKey) else None
        if not log_selectors.transaction_party_check(transaction=transaction, user=request.user,
                                                     merchant=merchant):
            raise PermissionDenied(details={"transaction": pk})
        receipt = log_selectors.receipt_get(
            transaction=transaction, size=query.validated_data.get("size")
        )
        response = Response(receipt)
        if query.validated_data["download"]:
            response["Content-Disposition"] = (
                f'attachment; filename="receipt-{transaction.pk}.json"'
            )
        return response
