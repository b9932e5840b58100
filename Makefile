# Two entry points for a fresh machine: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := 3.11
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: demo test install dbt-parse lint clean

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

dbt-parse: install
	$(UV) run rto-pipeline parse

# Simulate a company, run the nightly DAGs through Airflow, print where everything is.
demo: install
	$(UV) run rto-pipeline demo $(DEMO_ARGS)

# The whole test suite (unit, dbt, DAG and end-to-end runs), on PYTEST_WORKERS parallel
# workers (pytest-xdist; one test module per worker at a time; 0 runs it in one process).
PYTEST_WORKERS ?= 2
test: install dbt-parse
	mkdir -p var && $(UV) run pytest --basetemp=var/pytest-tmp -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(UV) run ruff check include dags tests

clean:
	rm -rf var
