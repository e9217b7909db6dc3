# The two set-up commands:  make demo  (serve a demo city)  and  make test  (run the suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := survey
export TEST_DATABASE_URL

.PHONY: demo test lint bench constraints clean

$(BIN)/.installed: setup.cfg pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $@

demo: $(BIN)/.installed
	@scripts/system-deps.sh demo
	$(BIN)/flask init-db
	$(BIN)/flask seed-demo --if-missing --previous-wave
	$(BIN)/flask analyze
	$(BIN)/flask analyze --questionnaire minor
	@$(BIN)/flask demo-info --port $(PORT)
	$(BIN)/gunicorn --bind 127.0.0.1:$(PORT) --workers 2 --threads 4 --access-logfile - 'survey:create_app()'

test: $(BIN)/.installed
	@scripts/system-deps.sh test
	$(BIN)/python -m pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check analysis forms reports survey tests benchmarks scripts deploy
	$(BIN)/mypy

bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks.analysis_speed

# Move the pinned versions on: the newest releases setup.cfg allows, into constraints.txt (then run make test).
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install -q --disable-pip-version-check -e '.[test]'
	.venv-constraints/bin/pip freeze --exclude-editable --disable-pip-version-check | grep -v '^pip==' > constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
