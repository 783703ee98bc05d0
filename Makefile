# The two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,tryton]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mestwin demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Workers of the test run (pytest-xdist): the tests wait on servers, subprocesses and
# sockets much of the time, so two workers nearly halve the wall time on two cores.
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup

test: lint typecheck pytest

# The benchmarks' MES runs on PostgreSQL (production); this server unless one is named.
MESTWIN_BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench: $(STAMP)
	MESTWIN_BENCH_POSTGRES_URL=$(MESTWIN_BENCH_POSTGRES_URL) $(BIN)/mestwin bench all --write docs/BENCHMARKS.md

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
