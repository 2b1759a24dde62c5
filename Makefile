# errloop — the commands the README gives. Everything is installed into .venv by `make venv`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test quick lint stack-up stack-down

$(BIN)/errloop: pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/errloop

# Build the TICK stack on first use (cached by version), start it, run the quick-start scenario.
demo: venv
	$(BIN)/errloop demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPY=$(BIN)/mypy .ci/typecheck

# Everything: lint, types, then every test (the stack ones build and start a real TICK stack).
test: lint
	$(BIN)/pytest

# The quick tests only (no TICK stack, no Go builds): seconds.
quick: venv
	$(BIN)/pytest -m "not stack and not slow"

stack-up: venv
	$(BIN)/errloop stack up

stack-down: venv
	$(BIN)/errloop stack down
