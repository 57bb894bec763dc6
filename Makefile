# Pantau Pangan. The two commands: `make run` (sets up, then runs everything locally) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PANTAU := $(VENV)/bin/pantau

.PHONY: all setup run stop status test check lint bench eval clean-local

all: check test

setup:  ## install system packages, Kafka jars, TimescaleDB, .venv (idempotent)
	@bash deploy/local/setup.sh

run: setup  ## the whole system on the embedded local stack, in the foreground
	@$(PANTAU) stack run

stop:  ## stop a `make run` from another shell
	@$(PANTAU) stack stop

status:  ## processes of a running `make run` and their health
	@$(PANTAU) stack status

test: setup  ## the whole suite: unit, contracts, integration (real Kafka, PostgreSQL, Prometheus), e2e
	@$(VENV)/bin/pytest

check: setup  ## static checks: lint, AsyncAPI, Prometheus config and rules, compose file
	@$(VENV)/bin/ruff check src services tests
	@node contracts/tools/validate.mjs
	@promtool check config deploy/prometheus/prometheus.yml
	@promtool test rules deploy/prometheus/tests/*.yml
	@# placeholder secrets: the file's shape is checked, without a .env (the deploy tests check the secrets' use)
	@POSTGRES_PASSWORD=x DATABASE_READER_PASSWORD=x ADMIN_TOKEN=x WEBHOOK_SECRET_KEY=x GRAFANA_ADMIN_PASSWORD=x \
		docker-compose -f docker-compose.yml config -q

lint:
	@$(VENV)/bin/ruff check src services tests

bench: setup  ## throughput and latency figures (printed, not asserted)
	@$(PY) -m tests.benchmarks

eval: setup  ## detector precision/recall on scenarios and real PIHPS data
	@$(PY) -m services.processor.evaluate

clean-local:  ## forget all local state (topics, database, metrics); the jars stay
	@$(PANTAU) stack stop >/dev/null 2>&1 || true
	@rm -rf .local/kafka/data .local/kafka/server.properties .local/postgres .local/prometheus .local/simulator .local/processor .local/run .local/logs
