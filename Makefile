# Everything a new machine needs: `make run` opens orders-tui against a broker,
# `make test` runs lint and the whole test suite against a real broker.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BOOTSTRAP ?= localhost:9092

.PHONY: install broker broker-stop browser run test lint format bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

# Docker when an engine answers (the official apache/kafka image), else the same Kafka
# version run with the machine's Java by scripts/kafka-local.
broker:
	@if docker info >/dev/null 2>&1; then docker compose up -d --wait; \
	else scripts/kafka-local start; fi

broker-stop:
	@if docker info >/dev/null 2>&1; then docker compose down; \
	else scripts/kafka-local stop; fi

run: install broker
	$(BIN)/orders-tui -b $(BOOTSTRAP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Debian's Chromium for the browser tests (tests/test_serve.py), installed when missing
# and this user may (root, apt); elsewhere those tests are skipped, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) || \
	  echo "make: could not install chromium: the browser tests will be skipped"

# The tests start their own broker on free ports (tests/conftest.py), one per worker:
# two workers, since most of a Kafka test is waiting (8.6 minutes in one, 4.8 in two).
# Then the tests marked `alone` (the three-node cluster's, a fleet of workers), by
# themselves: beside the suite's they starved its timing-sensitive tests on two cores.
test: lint browser
	$(BIN)/python -m pytest -n 2 -m "not alone and not slow"
	$(BIN)/python -m pytest -m "alone and not slow"

bench: install broker
	$(BIN)/python benchmarks/produce.py -b $(BOOTSTRAP)
	$(BIN)/python benchmarks/consume.py -b $(BOOTSTRAP)
	$(BIN)/python benchmarks/app.py -b $(BOOTSTRAP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
