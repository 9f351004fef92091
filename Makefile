# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
VENV_BIN := .venv/bin
PYTEST_ARGS ?=

.PHONY: demo test lint format bench dev clean

demo:
	@scripts/venv.sh
	$(VENV_BIN)/bandit-pipeline demo

test:
	@scripts/venv.sh test
	@scripts/ensure_test_services.sh
	$(VENV_BIN)/python -m pytest $(PYTEST_ARGS)

lint:
	@scripts/venv.sh test
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .

format:
	@scripts/venv.sh test
	$(VENV_BIN)/ruff check --fix .
	$(VENV_BIN)/ruff format .

BENCHMARKS := ingest_throughput ingest_memory posterior_update serving_latency loopback_costs http_load replica_scaling quality_checks ope_coverage

bench:
	@scripts/venv.sh test
	@scripts/ensure_test_services.sh
	@for name in $(BENCHMARKS); do echo "== benchmarks/$$name.py"; $(VENV_BIN)/python benchmarks/$$name.py || exit 1; done

clean:
	rm -rf .venv .bandit .pytest_cache .ruff_cache .hypothesis
