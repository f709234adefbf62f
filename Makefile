# Two commands matter: `make demo` and `make test` (README "Quick start").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
PIN    := -c constraints.txt

.PHONY: demo test lint typecheck unit demo-audio lock clean system-test-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install $(PIN) -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt $(VENV)/.installed
	$(PIP) install $(PIN) -e ".[test,openai]"
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/storyboard demo

test: $(VENV)/.installed-test system-test-deps lint typecheck
	$(BIN)/pytest

# Debian's Chromium renders the review page in the tests (root installs it; others are told).
system-test-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null) || \
	  echo "chromium could not be installed: the review page test will be skipped"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/pytest -m "not slow"

# Regenerates storyboards/demo/*.{ogg,mp3,m4a} with espeak-ng (installed here if missing).
demo-audio: $(VENV)/.installed
	@command -v espeak-ng >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng)
	./scripts/make_demo_audio.sh

# Rewrites constraints.txt from the current environment (after changing pyproject.toml).
lock: $(VENV)/.installed-test
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) output .pytest_cache .mypy_cache .ruff_cache
