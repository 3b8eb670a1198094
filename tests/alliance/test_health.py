"""``/healthz`` answers 200 when the database, the broker and the cache answer, else 503."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

# Port 1 (tcpmux) is closed on every machine we run on: connecting is refused at once.
CLOSED_BROKER = "redis://127.0.0.1:1/0"


def test_healthz_answers_200_on_the_real_services(client: Client, settings):
    # given the suite's PostgreSQL, Redis broker and Redis cache
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

    # when the load balancer probes the portal
    response = client.get("/healthz")

    # then every part is up
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "down": [],
        "checks": {"database": "ok", "broker": "ok", "cache": "ok"},
    }


def test_healthz_answers_503_naming_the_broker_when_it_is_unreachable(client: Client, settings):
    # given a broker URL pointing at a closed port
    settings.CELERY_BROKER_URL = CLOSED_BROKER

    # when the load balancer probes the portal
    response = client.get("/healthz")

    # then it is told the broker, and only the broker, is down, with the reason
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["broker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] != "ok"


def test_healthz_is_never_cached(client: Client):
    # given a cache in front of the portal
    # when it sees the health answer
    response = client.get("/healthz")

    # then it is told not to keep it
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
