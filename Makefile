# The two commands the README names:
#   make demo   broker, topics, worker, simulated customers, alerts, metrics
#   make test   the whole test suite against the real local broker
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: demo test heavy lint unit tools broker-up broker-down schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/churnstream demo

test: $(STAMP) lint tools
	deploy/local/kafka up
	$(BIN)/python -m pytest --doctest-modules --durations=15; rc=$$?; \
	  [ -n "$$CHURNSTREAM_KEEP_BROKER" ] || deploy/local/kafka down; exit $$rc

heavy: $(STAMP) lint
	deploy/local/kafka up
	$(BIN)/python -m pytest -m heavy tests/integration --durations=5; rc=$$?; \
	  [ -n "$$CHURNSTREAM_KEEP_BROKER" ] || deploy/local/kafka down; exit $$rc

tools:
	deploy/local/install-promtool

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest --doctest-modules tests/unit tests/streams models schemas streams

schemas: $(STAMP)
	$(BIN)/python -m churnstream.schemas.jsonschema

broker-up:
	deploy/local/kafka up

broker-down:
	deploy/local/kafka down

clean:
	deploy/local/kafka reset || true
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
