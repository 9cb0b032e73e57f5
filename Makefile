# srmos: `make demo` and `make test` do all set-up on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
BIND ?= 127.0.0.1:8000

.PHONY: demo test install install-dev lint format clean-data

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade --quiet pip

# A stamp per requirements file: re-running make installs nothing unless a file changed.
$(VENV)/.installed: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo --bind $(BIND)

# TEST_JOBS=2 runs the files in two isolated pytest processes side by side (.ci/test-split).
TEST_JOBS ?= 1
test: install-dev
ifeq ($(TEST_JOBS),1)
	SRMOS_DATA_DIR=$(CURDIR)/data/test $(PY) -m pytest $(PYTEST_ARGS)
else
	PYTEST_ARGS="$(PYTEST_ARGS)" TEST_JOBS=$(TEST_JOBS) PY=$(PY) .ci/test-split
endif

lint: install-dev
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-data:
	rm -rf data/
