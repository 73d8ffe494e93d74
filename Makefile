# Jestha Edge. The two commands a newcomer needs: `make dev` and `make test`.
# Recipes source scripts/env.sh, which is bash (BASH_SOURCE, ${!v}): not sh.
SHELL := /bin/bash
.PHONY: dev test setup build unit integration bench clean

setup:
	@bash scripts/setup.sh

build: setup
	@bash scripts/build.sh

## make dev: install what is missing, then serve the API on http://127.0.0.1:$${PORT:-8787}
dev: setup
	@bash scripts/dev.sh

## make test: native unit tests, then HTTP tests against `wrangler dev`
test: setup
	@bash scripts/test.sh

unit: setup
	@. scripts/env.sh && cargo test --lib && cargo test -p jestha

integration: build
	@. scripts/env.sh && .venv/bin/pytest tests $(PYTEST_ARGS)

## make bench: requests/s, p50/p99 and ratios to the floor, in one run (not part of make test)
bench: setup
	@bash scripts/setup.sh bench
	@. scripts/env.sh && .venv/bin/python scripts/bench.py

clean:
	rm -rf build build-engine build-account target/bench .wrangler/state public/docs/vendor
