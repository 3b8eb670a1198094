"""Pages of the staff console and the public explorer, and the health endpoint."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .api_errors import json_error
from .health import health_report
from .permissions import access_required


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every part answers; 503 naming each part that does not."""
    report = health_report()
    down = sorted(name for name, state in report.items() if state != "ok")
    body = {"status": "ok" if not down else "unavailable", "down": down, "checks": report}
    return JsonResponse(body, status=503 if down else 200)


@access_required("console")
def console_home(request: HttpRequest) -> HttpResponse:
    return render(request, "console/home.html")


@access_required("explorer")
def explorer_home(request: HttpRequest) -> HttpResponse:
    return render(request, "explorer/home.html")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def error_400(request: HttpRequest, exception=None) -> HttpResponse:
    if _wants_json(request):
        return json_error("bad_request", "Bad request.", 400)
    return render(request, "400.html", status=400)


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    if _wants_json(request):
        return json_error("permission_denied", "You do not have permission to do this.", 403)
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    if _wants_json(request):
        return json_error("not_found", "Not found.", 404)
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return json_error("server_error", "Internal error; it has been logged.", 500)
    return render(request, "500.html", status=500)
