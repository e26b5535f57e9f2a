# Groundwork: the first-run contract. Nothing here assumes an activated virtualenv.
#   make demo   install, migrate, load demo data, run web + worker + beat (Ctrl-C stops all)
#   make demo-workers   the same with one worker per queue group (Procfile.workers)
#   make test   install, lint, run the whole suite (PYTEST_ARGS="-k tokens -x" to narrow it)

PYTHON ?= python3
PORT ?= 8000
PYTEST_ARGS ?=
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install; reinstall only when pyproject.toml is newer.
STAMP := $(VENV)/.installed

# honcho gives the first Procfile entry (web) this port; seed_demo prints URLs with it.
export PORT

.DEFAULT_GOAL := help
.PHONY: help install demo demo-workers test lint format migrate clean

help:
	@echo "make demo     install, migrate, seed demo data, run web/worker/beat on http://127.0.0.1:$(PORT)/"
	@echo "make demo-workers  the demo with one worker per queue group (Procfile.workers)"
	@echo "make test     install dev extras, ruff check, pytest (PYTEST_ARGS passed through)"
	@echo "make lint     ruff check and format check"
	@echo "make format   ruff fix and format"
	@echo "make migrate  apply database migrations"
	@echo "make clean    remove var/ (database, queues, cache) and tool caches; keeps .venv"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "Starting web, worker and beat on http://127.0.0.1:$(PORT)/ (Ctrl-C stops all three)."
	exec $(BIN)/honcho start -f Procfile

demo-workers: migrate
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "Starting web, one worker per queue group and beat on http://127.0.0.1:$(PORT)/."
	exec $(BIN)/honcho start -f Procfile.workers

test: $(STAMP)
	$(BIN)/ruff check .
	@# Django's checks say what the machine lacks (reports.W001: Pango, for PDF reports).
	$(BIN)/python manage.py check
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf var/ .pytest_cache/ .ruff_cache/ .hypothesis/
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
