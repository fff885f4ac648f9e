# AuthPI developer entry points. Every target creates .venv and installs pinned deps on its own.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint fmt proto proto-check bench fuzz clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip==24.3.1"
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	PIP_CONSTRAINT=$(CURDIR)/requirements.txt $(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## make run: the all-in-one platform (embedded PostgreSQL + NATS JetStream unless AUTHPI_*_URL set)
# Development allows webhooks to plain-http and loopback/private receivers (and says so when it
# starts); production leaves both unset, so only https to public addresses is allowed.
run: venv
	AUTHPI_WEBHOOKS_ALLOW_INSECURE=$${AUTHPI_WEBHOOKS_ALLOW_INSECURE-1} \
	AUTHPI_WEBHOOKS_ALLOW_PRIVATE=$${AUTHPI_WEBHOOKS_ALLOW_PRIVATE-1} \
	$(BIN)/authpi up

## make test: the whole suite against real PostgreSQL and NATS JetStream
test: venv
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright -p pyproject.toml

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## make proto: regenerate proto/ (event JSON Schemas, asyncapi, openapi) from the code
proto: venv
	$(BIN)/authpi proto --write

proto-check: venv
	$(BIN)/authpi proto --check

## make bench: throughput and latency figures (printed, and written to bench-results/)
## bench-tokens needs wrk (Debian package `wrk`); BENCH_TOKENS_ARGS="--workers 4" for more IdP processes
## bench_login (human login: code exchanges, chained refreshes, portal password logins) takes
## BENCH_LOGIN_ARGS, e.g. "--seconds 5 --users 100", or "--profile DIR" for a cProfile of the server
bench: venv
	$(BIN)/python -m tests.bench.bench $(BENCH_ARGS)
	$(BIN)/python -m tests.bench.bench_core_api
	$(BIN)/python -m tests.bench.bench_passwords
	$(BIN)/python -m tests.bench.bench_tokens $(BENCH_TOKENS_ARGS)
	$(BIN)/python -m tests.bench.bench_login $(BENCH_LOGIN_ARGS)

## make fuzz: schemathesis over both ports' /openapi.json (no 5xx, documented statuses, content
## types and bodies). It starts nothing: run it beside `make run` on the default ports; it reads
## $(AUTHPI_DATA_DIR)/bootstrap.json (default .authpi/) and creates an issuer named `fuzz` in the
## bootstrap account. Bounded: FUZZ_ARGS="--max-examples 20 --max-time 300" (per API) by default.
FUZZ_STAMP := $(VENV)/.fuzz-installed
$(FUZZ_STAMP): requirements-fuzz.txt $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-fuzz.txt
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	$(BIN)/python -m authpi.testing.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
