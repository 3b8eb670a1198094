"""Merchant dashboard pages."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from alliance.permissions import access_required


@access_required("dashboard")
def dashboard_home(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/home.html")
