"""Storefront pages for shoppers."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from alliance.permissions import access_required


@access_required("explorer")
def landing_or_home(request: HttpRequest) -> HttpResponse:
    """``/``: the wallet for a signed-in shopper, a welcome page for a visitor."""
    if not request.user.is_authenticated:
        return render(request, "storefront/landing.html")
    return render(request, "storefront/home.html")
