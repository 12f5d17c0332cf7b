# Two commands do everything: `make run` (or `make demo`) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run demo test bench init-db clean .env

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

# Always run: make_env.py never overwrites, and gives an older .env the SECRET_KEY it lacks.
.env: | $(VENV)/.installed
	$(PY) scripts/make_env.py

init-db: $(VENV)/.installed .env
	$(PY) backend/init_db.py

## run: backend and agent together, watching targets.yaml (made on first run) or TARGET_URL; Ctrl-C stops both
run: init-db
	$(PY) scripts/run.py

## demo: the same, watching a bundled local site that goes down and comes back
demo: $(VENV)/.installed .env
	$(PY) scripts/run.py --demo

## test: the whole test suite
test: $(VENV)/.installed-test
	$(PY) -m pytest

## bench: every benchmark (about ten minutes) and one summary table; installs wrk, nginx, the peers and py-spy when missing
bench: $(VENV)/.installed-test
	sh bench/ensure_tools.sh
	$(PY) -m bench.run_all

## test-postgres: the same suite on a throwaway PostgreSQL cluster (installs PostgreSQL if missing)
test-postgres: $(VENV)/.installed-test
	@dir=$$(mktemp -d /tmp/outage-pg.XXXXXX); chmod 755 $$dir; \
	port=$$($(PY) -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	url=$$(scripts/pg_cluster.sh start $$dir $$port) || exit 1; \
	echo "PostgreSQL test cluster: $$url"; \
	TEST_POSTGRES_URL=$$url $(PY) -m pytest -p no:cacheprovider; status=$$?; \
	scripts/pg_cluster.sh stop $$dir; rm -rf $$dir; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache demo.db demo.db-*
