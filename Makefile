# The two quick-start commands (`make run`, `make test`) install what they need first.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# axe-core for the accessibility tests, at the version package-lock.json pins (npm ci).
NODE_STAMP := node_modules/.installed

.PHONY: run test lint system-deps

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# npm ci empties node_modules first, so the stamp is written after it, inside.
$(NODE_STAMP): package-lock.json | system-deps
	@command -v npm >/dev/null 2>&1 || { echo "make test needs Node.js and npm (Debian: apt-get install npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Start the dashboard on its embedded defaults: SQLite in instance/, demo mode, port 5000.
run: $(STAMP)
	DASHBOARD_DEMO=1 $(BIN)/flask --app app db upgrade
	DASHBOARD_DEMO=1 $(BIN)/flask --app app run --host 127.0.0.1 --port 5000

## Debian's xmlsec1 (pysaml2, the test IdP), chromium (browser tests) and npm (axe-core).
system-deps:
	@scripts/install-system-deps

## The whole suite: SQLite, plus PostgreSQL when a server answers (required when CI=true).
test: $(STAMP) system-deps $(NODE_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
