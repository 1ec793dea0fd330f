# cityDiplomacy — `make run` builds the atlas on first start and serves it; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve demo test install install-test migrate seed check clean

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

# The first start builds the atlas: the seed, the ~26,000 twin-town pairs of data/ and the
# links to the GeoNames gazetteer; later starts find it built and go straight to serving.
seed: migrate
	$(BIN)/python manage.py build_atlas

run: seed
	$(BIN)/python manage.py ensure_curator
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Production: gunicorn with gunicorn.conf.py (workers, timeouts), DEBUG off; set SECRET_KEY,
# ALLOWED_HOSTS, DATABASE_URL and REDIS_URL as the README says.
serve: install
	DEBUG=false $(BIN)/python manage.py migrate --noinput
	DEBUG=false $(BIN)/python manage.py collectstatic --noinput -v0
	DEBUG=false $(BIN)/gunicorn cityDiplomacy.wsgi -c gunicorn.conf.py

# Kept for old instructions: make run now serves the whole atlas.
demo: run

check: install-test
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
