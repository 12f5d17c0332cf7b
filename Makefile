# Two commands do everything: `make run` (or `make demo`) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run demo test bench init-db clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

.env: | $(VENV)/.installed
	$(PY) scripts/make_env.py

init-db: $(VENV)/.installed .env
	$(PY) backend/init_db.py

## run: backend and agent together, watching TARGET_URL from .env; Ctrl-C stops both
run: init-db
	$(PY) scripts/run.py

## demo: the same, watching a bundled local site that goes down and comes back
demo: $(VENV)/.installed .env
	$(PY) scripts/run.py --demo

## test: the whole test suite
test: $(VENV)/.installed-test
	$(PY) -m pytest

## bench: every benchmark (under ten minutes) and one summary table; installs wrk when missing
bench: $(VENV)/.installed
	sh bench/ensure_wrk.sh
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache demo.db demo.db-*
