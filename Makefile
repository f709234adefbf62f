# Two commands matter: `make demo` and `make test` (README "Quick start").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
PIN    := -c constraints.txt

.PHONY: demo test lint typecheck unit demo-audio lock check-lock clean system-test-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv installs the locked environment in a third of pip's time (41 s against 127 s on this 2-core
# machine, bytecode compiled as pip does). It reads no pip.conf, so pip's find-links (where the
# CPU build of torch lies) is passed on; pip installs instead wherever uv cannot.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
UV_INSTALL  = $(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode $(PIN) \
	$(foreach links,$(FIND_LINKS),--find-links $(links))

$(BIN)/uv: | $(BIN)/python
	$(PIP) install $(PIN) uv

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/uv
	$(UV_INSTALL) -e . || $(PIP) install $(PIN) -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt $(VENV)/.installed
	$(UV_INSTALL) -e ".[test,openai,local]" || $(PIP) install $(PIN) -e ".[test,openai,local]"
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/storyboard demo

# Two workers, a test file each at a time: many tests wait on servers and subprocesses, so
# two files side by side keep both cores busy (one at a time left half the CPU idle). Three
# were faster on this 2-core machine (1090-1134 s of pytest against 1238 s) but once made the
# session's Prefect server answer 503 (SQLite busy) to a test that does not ask again.
test: $(VENV)/.installed-test check-lock system-test-deps lint typecheck
	$(BIN)/pytest -n 2 --dist loadfile --durations=20

# Debian's Chromium renders the review page and, driven by Selenium through Debian's
# chromedriver, the studio in the tests; Debian's PostgreSQL backs a Prefect
# server in the scheduled-run test; espeak-ng speaks the tests' recordings; poppler-utils reads
# and renders storyboard.pdf, drawn in DejaVu (root installs them; others are told, and those
# tests skip or fail saying which package is missing).
SYSTEM_TEST_PACKAGES := chromium chromium-driver postgresql espeak-ng poppler-utils fonts-dejavu-core
system-test-deps:
	@(command -v chromium >/dev/null && command -v chromedriver >/dev/null && \
	  command -v espeak-ng >/dev/null && \
	  command -v pdftoppm >/dev/null && test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf && \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1) || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	    $(SYSTEM_TEST_PACKAGES) >/dev/null) || \
	  echo "$(SYSTEM_TEST_PACKAGES) could not be installed: the tests that need them will skip"

# The test environment must hold exactly the locked versions (make lock after changing them).
check-lock: $(VENV)/.installed-test
	$(BIN)/python scripts/check_locked.py constraints.txt

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_sizes.py cli studio flows tasks clients configs domain benchmarks scripts

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
