# Shoebox: `make run` starts everything, `make test` runs the tests. Needs only python3 (3.11+) and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= $(or $(SHOEBOX_DATA),./data)

.PHONY: install run test test-fast bench replay lint vendor clean help

help:
	@echo "make run     start NATS, PostgreSQL and every Shoebox service (API on http://127.0.0.1:2283/api)"
	@echo "make test    run the test suite against real NATS and PostgreSQL"
	@echo "make bench   run the benchmarks under bench/ (prints figures)"
	@echo "make replay  rebuild the read models from the event stream (stop 'make run' first)"
	@echo "make vendor  refresh the pinned front-end files (htmx, Leaflet) from the npm registry"
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

test: install
	$(PY) -m pytest -q -ra; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

test-fast: install
	$(PY) -m pytest -q -m "not slow and not e2e"

bench: install
	$(PY) bench/replay.py
	$(PY) bench/scan.py
	$(PY) bench/metadata.py
	$(PY) bench/api.py

replay: install
	SHOEBOX_DATA=$(DATA) ./shoebox replay

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared services

vendor:
	$(PYTHON) deploy/vendor.py

clean:
	rm -rf $(VENV) $(DATA)
