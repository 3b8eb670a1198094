"""The dashboard's webhooks: endpoints (the secret shown once), the delivery log, replay.
Owners only, like API keys (both let a merchant's systems talk to the portal)."""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from alliance.permissions import access_required, current_merchant

from . import webhooks
from .webhook_models import WebhookDelivery, WebhookEndpoint

AREA = "dashboard.webhooks"


class EndpointForm(forms.Form):
    url = forms.URLField(label=gettext_lazy("URL"), max_length=500,
                         assume_scheme="https")
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"), required=True, widget=forms.CheckboxSelectMultiple,
        choices=[(e, e) for e in webhooks.EVENTS], initial=list(webhooks.EVENTS))


@require_http_methods(["GET", "POST"])
@access_required(AREA)
def endpoint_list(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    if merchant is None:
        return redirect("dashboard:home")
    form = EndpointForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        _endpoint, secret = webhooks.webhook_endpoint_create(
            merchant=merchant, url=form.cleaned_data["url"], events=form.cleaned_data["events"])
        form = EndpointForm()
    return render(request, "dashboard/webhooks/list.html", {
        "form": form, "secret": secret,
        "endpoints": WebhookEndpoint.objects.filter(merchant=merchant),
    })


def _endpoint(request: HttpRequest, pk: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(merchant=current_merchant(request), pk=pk).first()
    if endpoint is None:
        raise Http404(_("No such endpoint."))
    return endpoint


@require_http_methods(["GET"])
@access_required(AREA)
def delivery_list(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    return render(request, "dashboard/webhooks/deliveries.html", {
        "endpoint": endpoint, "deliveries": endpoint.deliveries.all()[:100],
    })


@require_POST
@access_required(AREA)
def delivery_replay(request: HttpRequest, pk: int, delivery_id: int) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, pk=delivery_id).first()
    if delivery is None:
        raise Http404(_("No such delivery."))
    webhooks.webhook_replay(delivery=delivery)
    messages.success(request, _("The delivery is queued again."))
    return redirect("webhooks:deliveries", pk=endpoint.pk)
