# Alliance Points Portal. `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# The test suite talks to the real services of the machine (see README).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/alliance
TEST_BROKER_URL ?= redis://127.0.0.1:6379/1
TEST_REDIS_URL ?= redis://127.0.0.1:6379/2
PYTEST_WORKERS ?= 2

.PHONY: demo test bench lint messages venv dev-venv browser clean demo-smoke

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -qq -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -qq -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime
dev-venv: $(VENV)/.dev

## demo: SQLite, in-process tasks, demo data, the portal on http://$(HOST):$(PORT)
demo: $(VENV)/.runtime
	env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL $(BIN)/python manage.py migrate --noinput
	env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL $(BIN)/python manage.py seed_demo
	env -u DATABASE_URL -u CELERY_BROKER_URL -u REDIS_URL $(BIN)/python manage.py runserver $(HOST):$(PORT)

## browser: Debian's Chromium for the Playwright tests (Playwright cannot download its own here)
## and a Chinese font for the zh-hans screenshots
browser:
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium"; exit 1; }; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || { echo "installing a Chinese font"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null) \
	  || echo "could not install a Chinese font: zh-hans screenshots will show boxes"; }

## messages: extract and compile the zh-hans and en catalogs
messages: $(VENV)/.dev
	$(BIN)/python manage.py makemessages -l zh_Hans -l en --no-obsolete --ignore='.venv/*' --ignore='staticfiles/*'
	$(BIN)/python manage.py compilemessages --ignore='.venv/*'

## test: the whole suite on PostgreSQL + Redis, then a smoke run of the SQLite demo path
test: $(VENV)/.dev browser
	$(BIN)/python manage.py compilemessages --ignore='.venv/*' -v0
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) REDIS_URL=$(TEST_REDIS_URL) \
	  $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup \
	  --cov --cov-report=term:skip-covered --no-cov-on-fail
	$(MAKE) --no-print-directory demo-smoke

# The pages a newcomer opens first, rendered through Django's test client (no server, no
# port); a demo shopper's wallet too. Any answer but 200 fails the smoke run.
define DEMO_SMOKE_PY
import sys
from django.test import Client
from alliance.models import User
visitor, shopper = Client(), Client()
shopper.force_login(User.objects.get(email="alice@example.com"), backend="django.contrib.auth.backends.ModelBackend")
checks = [(visitor, "/"), (visitor, "/explorer/"), (visitor, "/api/docs/"), (visitor, "/healthz"), (shopper, "/")]
failed = 0
for client, path in checks:
    status = client.get(path).status_code
    print(f"demo smoke: GET {path} -> {status}")
    failed += status != 200
sys.exit(1 if failed else 0)
endef
export DEMO_SMOKE_PY

## demo-smoke: migrate, seed twice, render the main pages and verify the ledger on a throw-away SQLite file
demo-smoke: $(VENV)/.runtime
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	export DATABASE_URL=sqlite:///$$tmp/demo.sqlite3 LOG_SIGNER_KEY_FILE=$$tmp/signer.key; \
	unset CELERY_BROKER_URL REDIS_URL; \
	set -e; \
	$(BIN)/python manage.py migrate --noinput -v0; \
	$(BIN)/python manage.py seed_demo > $$tmp/seed1.txt; \
	$(BIN)/python manage.py seed_demo --json > $$tmp/seed2.json; \
	$(BIN)/python manage.py shell -v0 -c "$$DEMO_SMOKE_PY"; \
	if $(BIN)/python manage.py help verify_ledger >/dev/null 2>&1; then \
	  $(BIN)/python manage.py verify_ledger; \
	else echo "demo smoke: no verify_ledger command yet"; fi; \
	echo "demo smoke: ok"

## bench: the benchmarks of bench/ (figures go in the README); bench/load.py drives its load
## with Debian's wrk, installed here where a fresh machine lacks it
bench: $(VENV)/.dev
	@command -v wrk >/dev/null || { echo "installing Debian's wrk"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	  || echo "could not install wrk: bench/load.py will say so"; }
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) REDIS_URL=$(TEST_REDIS_URL) \
	  $(BIN)/python -m bench

## lint: ruff
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check . || true

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .coverage db.sqlite3*
