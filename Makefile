# CollabX developer commands. `make run` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-fast lint format typecheck pytest schema check-migrations clean bench bench-quick

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install CollabX with its dev tools

run: install ## serve on the embedded SQLite default (or COLLABX_DATABASE_URL) with demo data
	mkdir -p var
	$(BIN)/collabx migrate
	$(BIN)/collabx seed --demo
	COLLABX_DEMO=1 COLLABX_DEBUG=1 $(BIN)/collabx serve

test: install lint typecheck pytest ## the whole suite: lint, type check, tests (both backends when configured)

test-fast: install lint typecheck ## the suite without the tests marked slow (fault injection, fuzzing)
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy --strict api schema db analytics tests bench

pytest: install
	$(BIN)/pytest

bench: install ## full benchmark vs the raw-SQL floor (scale 1; COLLABX_BENCH_POSTGRES_URL)
	$(BIN)/python -m bench

bench-quick: install ## the benchmark in under 3 minutes (scale 0.05, fewer requests)
	$(BIN)/python -m bench --quick

schema: install ## regenerate the committed SDL
	$(BIN)/collabx export-schema --output schema/schema.graphql

clean:
	rm -rf $(VENV) var/*.db .mypy_cache .pytest_cache .ruff_cache
