"""Storefront pages for shoppers."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from alliance.permissions import access_required, can_access


# ``/`` is public (the explorer's audience is everyone): visitors get the welcome page, and
# whoever may use the storefront gets the wallet in its place.
@access_required("explorer")
def landing_or_home(request: HttpRequest) -> HttpResponse:
    """``/``: the wallet for a signed-in shopper, a welcome page for a visitor."""
    if can_access(request, "storefront"):
        return render(request, "storefront/home.html")
    return render(request, "storefront/landing.html")
