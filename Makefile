# AuthPI developer entry points. Every target creates .venv and installs pinned deps on its own.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_DIR := $(VENV)/npm
ANVIL_VERSION := 1.7.1
SOLC_VERSION := 0.8.37
OIDC_PROVIDER_VERSION := 9.13.3
# Named after the versions: changing one installs again.
NPM_STAMP := $(NPM_DIR)/.installed-$(ANVIL_VERSION)-$(SOLC_VERSION)-$(OIDC_PROVIDER_VERSION)

.PHONY: venv chain-tools contracts run run-distributed test test-distributed lint fmt proto proto-check bench fuzz clean

venv: $(STAMP) $(NPM_STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip==24.3.1"
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	PIP_CONSTRAINT=$(CURDIR)/requirements.txt $(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## Node tools from npm into the venv (no lock file): the local chain's Anvil (the package ships the
## binary; the billing service starts it on a free port for tests and, opted in, for `make run`),
## the Solidity compiler used by `make contracts`, and oidc-provider, the independent OpenID
## Provider the organization SSO tests sign in at (authpi/platform/testing/upstream_idp.mjs) and
## the peer `make bench` measures the token endpoint against (tests/bench/peer/).
$(NPM_STAMP):
	mkdir -p $(NPM_DIR)
	cd $(NPM_DIR) && npm install --prefix . --no-save --no-package-lock --no-audit --no-fund \
		--loglevel=error @foundry-rs/anvil@$(ANVIL_VERSION) solc@$(SOLC_VERSION) \
		oidc-provider@$(OIDC_PROVIDER_VERSION)
	touch $(NPM_STAMP)

chain-tools: $(NPM_STAMP)

## make contracts: compile the EIP-3009 test token (services/billing/contracts) into the
## committed ABI + bytecode (services/billing/src/authpi/billing/x402/AuthpiUsd.json)
contracts: $(NPM_STAMP)
	node services/billing/contracts/build.cjs $(CURDIR)/$(NPM_DIR)/node_modules

## make run: the all-in-one platform (embedded PostgreSQL + NATS JetStream unless AUTHPI_*_URL set)
# Development allows webhooks to plain-http and loopback/private receivers, and organization SSO
# to plain-http upstream IdPs (and says so when it starts); production leaves them unset, so only
# https (to public addresses, for webhooks) is allowed.
run: venv
	AUTHPI_WEBHOOKS_ALLOW_INSECURE=$${AUTHPI_WEBHOOKS_ALLOW_INSECURE-1} \
	AUTHPI_WEBHOOKS_ALLOW_PRIVATE=$${AUTHPI_WEBHOOKS_ALLOW_PRIVATE-1} \
	AUTHPI_SSO_ALLOW_INSECURE=$${AUTHPI_SSO_ALLOW_INSECURE-1} \
	$(BIN)/authpi up

## make run-distributed: the distributed topology on this machine (authpi up --distributed): a
## 3-node NATS JetStream cluster, one PostgreSQL with a role per service, every service its own
## process, two token replicas sharing the public ports
run-distributed: venv
	AUTHPI_WEBHOOKS_ALLOW_INSECURE=$${AUTHPI_WEBHOOKS_ALLOW_INSECURE-1} \
	AUTHPI_WEBHOOKS_ALLOW_PRIVATE=$${AUTHPI_WEBHOOKS_ALLOW_PRIVATE-1} \
	AUTHPI_SSO_ALLOW_INSECURE=$${AUTHPI_SSO_ALLOW_INSECURE-1} \
	$(BIN)/authpi up --distributed

## make test: the whole suite against real PostgreSQL and NATS JetStream
test: venv
	$(BIN)/pytest -q $(PYTEST_ARGS)

## make test-distributed: every test against the distributed topology (fault cases under load,
## the SDK suites against the local distributed run); make test runs a representative subset
test-distributed: venv
	$(BIN)/pytest -q -m distributed --distributed-all $(PYTEST_ARGS)

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
## bench_peer (client_credentials of `authpi up` as shipped beside node-oidc-provider and a bare
## endpoint; ratio to the peer, server CPU per token, regression report against the last recorded
## ratio) takes BENCH_PEER_ARGS, e.g. "--rounds 5 --seconds 10", "--no-peer" or "--baseline-tree DIR"
## bench_reads (authenticated Core API reads GET /v1/me, get user, list users, and introspection, of
## `authpi up` as shipped beside bare litestar handlers doing the same authentication; server CPU
## per request) takes BENCH_READS_ARGS, e.g. "--rounds 3" or "--baseline-tree DIR" (an older
## commit unpacked with `git archive <commit> | tar -x -C DIR`, measured in the same run)
## bench_topologies (`authpi up` and `authpi up --distributed` side by side: client_credentials
## tokens/s and Core API reads under wrk, GET /v1/me, get user, list users and create user one at a
## time with the gateway hop's p50/p99, server CPU per request) takes BENCH_TOPOLOGIES_ARGS, e.g.
## "--rounds 1 --requests 500 --seconds 3"
## bench_login (human login: code exchanges, chained refreshes, portal password logins) takes
## BENCH_LOGIN_ARGS, e.g. "--seconds 5 --users 100", or "--profile DIR" for a cProfile of the server
## bench_metering (token endpoint tokens/s with billing metering on vs off) takes BENCH_METERING_ARGS,
## e.g. "--seconds 8 --rounds 3 --connections 16"
## bench_webhooks (deliveries/s, commit to first attempt) takes BENCH_WEBHOOKS_ARGS, e.g. "--hooks 20
## --events 1000"; bench_events (Events API pages at 1M stored events) BENCH_EVENTS_ARGS "--events N"
bench: venv
	$(BIN)/python -m tests.bench.bench $(BENCH_ARGS)
	$(BIN)/python -m tests.bench.bench_core_api
	$(BIN)/python -m tests.bench.bench_topologies $(BENCH_TOPOLOGIES_ARGS)
	$(BIN)/python -m tests.bench.bench_passwords
	$(BIN)/python -m tests.bench.bench_tokens $(BENCH_TOKENS_ARGS)
	$(BIN)/python -m tests.bench.bench_peer $(BENCH_PEER_ARGS)
	$(BIN)/python -m tests.bench.bench_reads $(BENCH_READS_ARGS)
	$(BIN)/python -m tests.bench.bench_login $(BENCH_LOGIN_ARGS)
	$(BIN)/python -m tests.bench.bench_metering $(BENCH_METERING_ARGS)
	$(BIN)/python -m tests.bench.bench_x402 $(BENCH_X402_ARGS)
	$(BIN)/python -m tests.bench.bench_webhooks $(BENCH_WEBHOOKS_ARGS)
	$(BIN)/python -m tests.bench.bench_events $(BENCH_EVENTS_ARGS)

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
