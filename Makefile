# Shoebox: `make run` starts everything, `make test` runs the tests. Needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= $(or $(SHOEBOX_DATA),./data)
# pytest processes side by side: the tests mostly wait on services, so two beat one on two cores
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

.PHONY: install browser container run test test-fast bench bench-1m replay lint vendor docs clean help

help:
	@echo "make run     start NATS, PostgreSQL and every Shoebox service (web app on http://127.0.0.1:2283/)"
	@echo "make test    run the test suite against real NATS and PostgreSQL"
	@echo "make bench   run the benchmarks under bench/ (prints figures)"
	@echo "make bench-1m  a 1,000,000-file library through every service (takes a while)"
	@echo "make replay  rebuild the read models from the event stream (stop 'make run' first)"
	@echo "make vendor  refresh the pinned front-end files (htmx, Leaflet) from the npm registry"
	@echo "make docs    regenerate docs/events.md and the golden files of new event types"
	@echo "make clean   remove the venv and the data folder"

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	@# The project itself is not built: a .pth puts this checkout on the venv's path.
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'shoebox.pth').write_text('$(CURDIR)\n')"
	touch $@

install: $(VENV)/.installed

run: install
	SHOEBOX_DATA=$(DATA) $(PY) -m deploy.dev

# The browser tests (tests/web) drive Debian's chromium; as root, install it once when missing
# (otherwise they are skipped with a message saying what to install).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium >/dev/null) \
	      || echo "apt-get install chromium failed: the browser tests will be skipped"; \
	  else \
	    echo "chromium is missing: the browser tests will be skipped (as root: apt-get install chromium)"; \
	  fi; \
	fi

# The container test (tests/container) starts its own dockerd and builds local stand-ins for
# the base images with debootstrap; as root, install Debian's docker.io and debootstrap once
# when missing (otherwise it is skipped with a message saying what to install).
container:
	@if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's docker.io and debootstrap for the container test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends docker.io debootstrap >/dev/null) \
	      || echo "apt-get install docker.io debootstrap failed: the container test will be skipped"; \
	  else \
	    echo "dockerd or debootstrap is missing: the container test will be skipped (as root: apt-get install docker.io debootstrap)"; \
	  fi; \
	fi

test: install browser container
	$(PYTEST) -ra; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

test-fast: install
	$(PYTEST) -m "not slow and not e2e and not container"

bench: install
	$(PY) bench/replay.py
	$(PY) bench/scan.py
	$(PY) bench/metadata.py
	$(PY) bench/api.py
	$(PY) bench/watch.py
	$(PY) bench/web.py
	$(PY) bench/faults.py

# A million files through the whole system (the tree is built once under the data folder).
bench-1m: install
	SHOEBOX_DATA=$(DATA) $(PY) bench/million.py --files 1000000

replay: install
	SHOEBOX_DATA=$(DATA) ./shoebox replay

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared services

vendor:
	$(PYTHON) deploy/vendor.py

# docs/events.md is made from shared/events/ (a test checks it is current); new event types
# also get their golden file (tests/golden/events).
docs: install
	$(PY) -m shared.eventdoc > docs/events.md
	$(PY) -m tests.golden_events

clean:
	rm -rf $(VENV) $(DATA)
