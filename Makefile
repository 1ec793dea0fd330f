# cityDiplomacy — `make run` serves the site with the seed data; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test install install-test migrate seed check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

# The browser tests drive Debian's Chromium (Playwright cannot fetch a browser of its own here)
# and run the Nu HTML Checker from npm's vnu-jar with the machine's Java.
CHROMIUM := /usr/bin/chromium
VNU_JAR := node_modules/vnu-jar/build/dist/vnu.jar
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

$(CHROMIUM):
	$(APT_GET) update -qq
	$(APT_GET) install -y -qq chromium

# --ignore-scripts: vnu-jar's install script would download a Java runtime.
$(VNU_JAR): package.json package-lock.json
	@command -v java >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq default-jre-headless; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test $(CHROMIUM) $(VNU_JAR)

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py load_seed

run: seed
	$(BIN)/python manage.py ensure_curator
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The seed plus the ~26,000 real twin-town pairs of the shared Wikipedia lists (read from
# ../shared/data, never copied here). A second import changes nothing, so this is safe to repeat.
SHARED_TIES ?= ../shared/data/twin-cities-wikipedia.csv

demo: seed
	$(BIN)/python manage.py import_ties $(SHARED_TIES) --skip-bad-rows
	$(BIN)/python manage.py ensure_curator
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

check: install-test
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
