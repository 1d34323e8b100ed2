# Two entry points: `make run` (build the default workspace if missing, then serve the
# workbench) and `make test` (the whole suite, browser tier included).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The install stamp is keyed by the dependency spec, so editing pyproject.toml reinstalls.
DEPS_KEY := $(shell cat pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_KEY)
PORT ?= 8501
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test test-fast install chromium lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	@echo ">> installing the workbench and its pinned dependencies into $(VENV) (first time: a few minutes)"
	$(PY) -m pip install --progress-bar off -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The editable install records this checkout's path; refresh it when the venv is shared
# between clones (CI keeps one venv outside the clone).
install: $(STAMP)
	@cd / && $(abspath $(PY)) -c "import pathlib, sys, workbench; sys.exit(str(pathlib.Path(workbench.__file__).resolve().parents[1]) != '$(CURDIR)')" 2>/dev/null \
		|| $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .

run: install
	$(VENV)/bin/cmkd demo
	$(VENV)/bin/streamlit run streamlit_app.py --server.headless true \
		--server.address 127.0.0.1 --server.port $(PORT) --browser.gatherUsageStats false

# Debian Chromium (and Noto fonts, so Devanagari renders in screenshots) for the browser tier: installed when missing and we are root; otherwise the
# browser tests skip with a message saying how to enable them.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo ">> installing Debian chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-core >/dev/null; \
	else \
		echo ">> /usr/bin/chromium missing and not root: browser tests will be skipped (as root: apt-get install -y chromium chromium-driver)"; \
	fi

test: install chromium
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not browser and not slow"

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
