# The two commands of README.md: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install migrate seed docs messages bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# Install, migrate, seed, then web + jobs (+ simulator and POS demo client).
run: seed
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py run_stack

# The whole test suite; PostgreSQL when reachable (DATABASE_URL or the local
# default), else SQLite with the PostgreSQL-only tests listed as skipped.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Regenerate docs/state-machines.md, docs/status-mapping.md and the machine of
# docs/after-sales.md from the code.
docs: install
	$(PY) manage.py order_docs
	$(PY) manage.py aftersales_docs

# Compile translations (needs GNU gettext; the .mo files are committed).
messages: install
	$(PY) manage.py makemessages -l zh_Hans -l en --ignore=.venv --ignore=staticfiles
	$(PY) manage.py compilemessages --ignore=.venv

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) staticfiles db.sqlite3*
