# Two commands do all the set-up: `make run` serves the demo, `make test` runs the suite.
# Without DATABASE_URL both use the embedded PostgreSQL in .pgdata/ (started on demand).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: install run test lint format db-stop clean load faults worker citus-up citus-down

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

run: install
	$(BIN)/python manage.py migrate_tenants -v 0
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py seed_demo
	@echo "Serving http://127.0.0.1:$(PORT) and http://acme.localhost:$(PORT), with a job worker (Ctrl-C stops both)"
	@$(BIN)/python manage.py procrastinate worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload

# A job worker alone (more workers: run this on other machines, with the same DATABASE_URL and ARCHIVE_ROOT).
worker: install
	$(BIN)/python manage.py procrastinate worker

CHROMIUM := /usr/bin/chromium

test: install lint
	@test -x $(CHROMIUM) || echo "*** $(CHROMIUM) not found: the browser tests (tests/test_browser.py) will be SKIPPED. Install it with: apt-get install chromium"
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Stop the embedded PostgreSQL (its data stays in .pgdata/).
db-stop: install
	$(BIN)/python -m config.embedded_postgres stop

clean: db-stop
	rm -rf .pgdata $(VENV)

# A local Citus cluster (coordinator on CITUS_PORT, default 9700, two workers on the next ports;
# data in .citus/). Needs PostgreSQL 15 with the Citus extension; prints the DATABASE_URL to use.
citus-up: install
	$(BIN)/python -m config.citus_cluster up

citus-down: install
	$(BIN)/python -m config.citus_cluster down

# Load test: 60 s at 64 connections on a scratch database (LOAD_SECONDS=, LOAD_CONNECTIONS= to change).
LOAD_SECONDS ?= 60
LOAD_CONNECTIONS ?= 64
load: install
	$(BIN)/python bench/load.py --seconds $(LOAD_SECONDS) --connections $(LOAD_CONNECTIONS)

# Stop and restart an embedded PostgreSQL under load: 503s while down, recovery, no lost write.
faults: install
	$(BIN)/python bench/faults.py

# Tenancy benchmark (issue 5): `make bench` or `make bench TENANTS=1000`; needs wrk (apt-get install wrk).
# Works in its own database, bench_tenancy (DATABASE_URL's server, else the embedded one).
TENANTS ?= 200
.PHONY: bench
bench: install
	@command -v wrk >/dev/null || { echo "make bench needs wrk: sudo apt-get install wrk"; exit 2; }
	TENANTS=$(TENANTS) $(BIN)/python bench/run.py --tenants $(TENANTS)
