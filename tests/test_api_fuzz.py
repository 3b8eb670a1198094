"""Schemathesis against our own OpenAPI schema (``/api/schema/``), in process through WSGI:
every operation, as a merchant system (API key) and as a signed-in shopper. No request may
produce a 500, and every documented response must match its schema."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis import checks

from ledger import note
from merchants import services as merchant_services
from tests.factories import UserFactory
from tests.points.conftest import onboard

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("fuzz")]

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())

CHECKS = [checks.not_a_server_error, checks.response_schema_conformance,
          checks.content_type_conformance]


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """Calls through the WSGI app would close the test's connection after each request
    (Django's test client disconnects the same handlers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _log_key(settings):
    """The alliance's signing key, as production has one (without it the log endpoints
    rightly answer 503)."""
    settings.LOG_SIGNER_KEY, _verifier = note.generate_signer("fuzz.example/points-log")
    settings.LOG_ORIGIN = "fuzz.example/points-log"


@pytest.fixture
def merchant_headers():
    merchant = onboard("fuzz")
    _key, raw = merchant_services.api_key_create(
        merchant=merchant, name="fuzz", scopes=["purchases", "holds", "vouchers"])
    return {"Authorization": f"Api-Key {raw}"}


@pytest.fixture
def shopper_headers(client):
    client.force_login(UserFactory())
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


FUZZ = hypothesis_settings(
    max_examples=8, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@schema.parametrize()
@FUZZ
def test_api_as_merchant_system(case, merchant_headers):
    case.call_and_validate(headers=merchant_headers, checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_api_as_shopper(case, shopper_headers):
    case.call_and_validate(headers=shopper_headers, checks=CHECKS)
