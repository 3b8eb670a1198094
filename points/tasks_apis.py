"""The storefront's task API (SPEC §4.4): signed-in shoppers list tasks, start a browse and
complete a task. Session authentication with CSRF, like the storefront's own pages; merchant
API keys have no business here."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from alliance.idempotency import IDEMPOTENCY_PARAMETER, idempotency_key
from alliance.permissions import HasAccess
from alliance.templatetags.portal import local_name

from . import abuse, tasks_services
from .models import Task, TaskCompletion
from .tasks_selectors import TaskState, task_board


class ProofField(serializers.DictField):
    child = serializers.CharField(max_length=300, allow_blank=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > 10:
            raise serializers.ValidationError("At most 10 entries.")
        return value


class CompleteInSerializer(serializers.Serializer):
    token = serializers.CharField(
        required=False, max_length=500, help_text="Browse tasks: the token of browse-start.")
    proof = ProofField(required=False, help_text="What the shopper did, e.g. {\"url\": ...}.")


class TaskOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    merchant = serializers.CharField(allow_null=True, help_text="Slug; null for the alliance.")
    target = serializers.CharField()
    browse_seconds = serializers.IntegerField()
    reward = inline_serializer("TaskReward", {"asset": serializers.CharField(),
                                              "amount": serializers.CharField()})
    daily_limit = serializers.IntegerField(allow_null=True)
    lifetime_limit = serializers.IntegerField(allow_null=True)
    done_today = serializers.IntegerField()
    done_total = serializers.IntegerField()
    status = serializers.CharField(
        help_text="open, done_today, done, budget_spent or by_purchase")
    ends_at = serializers.DateTimeField(allow_null=True)


def task_body(state: TaskState) -> dict:
    task = state.task
    return {
        "id": task.pk, "kind": task.kind,
        "name": local_name(task),
        "merchant": task.merchant.slug if task.merchant_id else None,
        "target": task.target, "browse_seconds": task.browse_seconds,
        "reward": {"asset": state.asset.code, "amount": str(state.reward)},
        "daily_limit": task.daily_limit, "lifetime_limit": task.lifetime_limit,
        "done_today": state.done_today, "done_total": state.done_total,
        "status": state.status, "ends_at": task.ends_at,
    }


def completion_body(request, completion: TaskCompletion) -> dict:
    asset = tasks_services.reward_asset(completion.task)
    return {
        "id": completion.pk, "task": completion.task_id, "day": completion.day.isoformat(),
        "transaction": completion.transaction_id,
        "reward": {"asset": asset.code, "amount": str(asset.to_major(completion.reward))},
        "receipt": request.build_absolute_uri(
            f"/api/v1/transactions/{completion.transaction_id}/receipt"),
    }


class _ShopperApi(APIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [HasAccess.to("storefront")]


class TaskListApi(_ShopperApi):
    @extend_schema(operation_id="tasks_list", responses={200: inline_serializer("TaskList", {
                       "results": TaskOutSerializer(many=True)})},
                   description="The tasks open to the signed-in shopper, with progress.")
    def get(self, request):
        board = task_board(user=request.user, at=tasks_services.clock())
        return Response({"results": [task_body(state) for state in board]})


def _open_task(pk: int) -> Task:
    return get_object_or_404(Task.objects.select_related("merchant"), pk=pk, active=True)


class TaskBrowseStartApi(_ShopperApi):
    @extend_schema(
        operation_id="tasks_browse_start", request=None,
        responses={200: inline_serializer("BrowseStart", {
            "token": serializers.CharField(), "seconds": serializers.IntegerField()}),
            404: OpenApiResponse(description="No such open task"),
            409: OpenApiResponse(description="task_not_available")},
        description="Start browsing for a browse task; complete it with the token once the "
                    "seconds have passed on the server.",
    )
    def post(self, request, task_id: int):
        task = _open_task(task_id)
        token = tasks_services.browse_start(task=task, user=request.user)
        return Response({"token": token, "seconds": task.browse_seconds})


class TaskCompleteApi(_ShopperApi):
    @extend_schema(
        operation_id="tasks_complete", request=CompleteInSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: inline_serializer("TaskCompletion", {
                "id": serializers.IntegerField(), "task": serializers.IntegerField(),
                "day": serializers.DateField(), "transaction": serializers.IntegerField(),
                "reward": inline_serializer("CompletionReward", {
                    "asset": serializers.CharField(), "amount": serializers.CharField()}),
                "receipt": serializers.CharField()}),
            400: OpenApiResponse(description="invalid / browse_too_soon / "
                                             "browse_token_invalid / task_completed_by_purchase"),
            404: OpenApiResponse(description="No such open task"),
            409: OpenApiResponse(description="task_not_available / task_limit_reached / "
                                             "task_budget_exhausted"),
            429: OpenApiResponse(description="rate_limited"),
        },
        description="Complete a task and receive its reward. A repeat with the same "
                    "Idempotency-Key answers 200 with the first completion.",
    )
    def post(self, request, task_id: int):
        key = idempotency_key(request)
        task = _open_task(task_id)
        payload = CompleteInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        proof = dict(payload.validated_data.get("proof", {}))
        if "token" in payload.validated_data:
            proof["token"] = payload.validated_data["token"]
        completion, replayed = tasks_services.task_complete(
            task=task, user=request.user, ip=abuse.client_ip(request),
            device=abuse.device_id(request), idempotency_key=key, proof=proof)
        return Response(completion_body(request, completion),
                        status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
