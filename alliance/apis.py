"""API endpoints of the alliance app: who am I, and the console's view of the system."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .health import health_report
from .permissions import HasAccess, Role, current_merchant, roles_of
from .selectors import worker_heartbeat_list


class MerchantRefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()


class MeSerializer(serializers.Serializer):
    member_code = serializers.CharField(help_text="Code shown at tills to identify the shopper.")
    display_name = serializers.CharField()
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=Role.choices),
        help_text="Every role held now; merchant roles are for `merchant` only.",
    )
    merchant = MerchantRefSerializer(
        allow_null=True, help_text="The merchant the user works for in this session."
    )


class MeApi(APIView):
    """``GET /api/v1/me``: the signed-in user's member code and roles."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer, summary="The current user's roles and member code")
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "member_code": user.member_code,
            "display_name": str(user),
            # Sorted so clients and tests see a stable order.
            "roles": sorted(role.value for role in roles_of(request)),
            "merchant": current_merchant(request),
        }
        return Response(MeSerializer(data).data)


class WorkerSerializer(serializers.Serializer):
    worker = serializers.CharField()
    seen_at = serializers.DateTimeField()


class SystemStatusSerializer(serializers.Serializer):
    checks = serializers.DictField(
        child=serializers.CharField(), help_text='Each part: "ok" or why it is down.'
    )
    workers = WorkerSerializer(many=True, help_text="Celery workers by their last heartbeat.")


class SystemStatusApi(APIView):
    """``GET /api/v1/console/status``: the parts the portal depends on and the live workers.

    For the staff console (alliance staff, supervisors, council); ``/healthz`` says only up or
    down to the load balancer, this says which worker was last seen when.
    """

    permission_classes = [HasAccess.to("console")]

    @extend_schema(responses=SystemStatusSerializer, summary="System status for the console")
    def get(self, request: Request) -> Response:
        data = {"checks": health_report(), "workers": worker_heartbeat_list()[:50]}
        return Response(SystemStatusSerializer(data).data)
