# One command surface: run, test, lint, bench, migrate.
# A fresh machine needs only Python 3.11: the first target bootstraps uv into
# .tools/ and syncs the locked environment into .venv/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
UV := .tools/bin/uv
DATA_DIR ?= consentgate-data
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup lint check pytest bench migrate test-data services browser compose clean

run: setup
	.venv/bin/consentgate --data-dir $(DATA_DIR) serve --host $(HOST) --port $(PORT)

test: setup services browser compose lint pytest

setup: .venv/.synced

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# uv.lock pins every package; dlib comes from the dlib-bin wheel (see README).
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

services:
	bash scripts/ensure-services.sh

# The browser tests drive Debian's Chromium through Playwright, which may not
# download a browser of its own here.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(MAKE) tests/web/axe/node_modules/axe-core/axe.min.js

# axe-core for the accessibility checks (tests/web/a11y.py), from the npm registry at the
# version in tests/web/axe/package-lock.json; the tests read the file, never the network.
tests/web/axe/node_modules/axe-core/axe.min.js: tests/web/axe/package-lock.json
	command -v npm >/dev/null || (apt-get update && apt-get install -y npm)
	cd tests/web/axe && npm ci --no-audit --no-fund
	touch $@

# tests/ops/test_compose.py resolves docker-compose.yml with `docker compose config`; with
# no Docker here, Debian's docker-compose makes the same check.
compose:
	command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
		|| (apt-get update && apt-get install -y docker-compose)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports

# The real 5-minute storage outage test runs beside the rest (scripts/pytest.sh).
pytest: setup
	bash scripts/pytest.sh

# The service-path section needs PostgreSQL and Redis too (`make services`); it drops the
# schema of CONSENTGATE_BENCH_DATABASE_URL (default database consentgate_bench).
bench: setup
	.venv/bin/python bench/screen_bench.py
	.venv/bin/python bench/import_bench.py
	.venv/bin/python bench/templates_bench.py
	.venv/bin/python bench/service_bench.py

migrate: setup
	.venv/bin/consentgate --data-dir $(DATA_DIR) migrate

test-data:
	@bash scripts/test-data.sh

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
