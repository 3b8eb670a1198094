"""The admin shows issue 5's rows to superusers and lets no one edit a decision there."""

import pytest
from django.test import Client

from alliance.models import Proposal
from alliance.services import proposal_create
from merchants.models import ApiKey
from merchants.services import api_key_create
from tests.factories import UserFactory
from tests.merchants.helpers import _private_media, active_merchant, council, submitted_application

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


def test_superusers_see_the_changelists_and_cannot_change_decisions_or_see_key_hashes():
    merchant = active_merchant()
    api_key, _ = api_key_create(merchant=merchant, name="Till", scopes=["purchases"])
    submitted_application()
    members = council(2)
    proposal = proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=members[0],
                               data={"key": "inflation_rate", "value": "0.03"})
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(is_superuser=True, is_staff=True),
                       backend="django.contrib.auth.backends.ModelBackend")
    for path in ["merchants/merchant", "merchants/apikey", "merchants/staffinvitation",
                 "merchants/leaverequest", "merchants/memberimport",
                 "alliance/merchantapplication", "alliance/proposal",
                 "alliance/allianceparameter", "alliance/parameterchange", "alliance/alert"]:
        assert client.get(f"/admin/{path}/").status_code == 200, path
    page = client.get(f"/admin/merchants/apikey/{api_key.pk}/change/")
    assert page.status_code == 200
    assert ApiKey.objects.get().key_hash not in page.content.decode()
    response = client.post(f"/admin/alliance/proposal/{proposal.pk}/change/",
                           {"status": "executed"})
    assert response.status_code == 403
    proposal.refresh_from_db()
    assert proposal.status == Proposal.Status.OPEN
