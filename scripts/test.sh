#!/usr/bin/env bash
# `make test`: every test. First the fast hygiene checks (rustfmt, clippy on
# the Workers together and on each alone, so no one-sided build hides dead
# code; the jestha CLI is linted with them), then native unit tests of the pure
# modules and of the CLI, then the HTTP tests in tests/ against freshly started
# `wrangler dev` instances (the CLI's binary among their clients), then the web UI's
# browser tests (Debian's chromium via playwright-core, screenshots in
# tests/artifacts/ui/).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

echo "==> cargo fmt --check"
cargo fmt --check

echo "==> cargo clippy (all Workers, then the api, the account and the engine alone)"
cargo clippy --quiet --all-targets --all-features -- -D warnings
for worker in api account engine; do
  cargo clippy --quiet --lib --no-default-features --features "$worker" -- -D warnings
done
# The shared core with neither Worker, as the jestha CLI depends on it.
cargo clippy --quiet -p jestha-edge --lib --no-default-features -- -D warnings

echo "==> unit tests (cargo test --lib)"
cargo test --lib --quiet

echo "==> jestha CLI unit tests (cargo test -p jestha)"
cargo test -p jestha --quiet

echo "==> release build"
bash scripts/build.sh

echo "==> jestha CLI binary (tests/test_cli.py runs target/debug/jestha)"
cargo build --bin jestha --quiet

echo "==> HTTP tests (pytest against wrangler dev)"
.venv/bin/pytest tests -q ${PYTEST_ARGS:-}

echo "==> browser tests (node --test tests/browser, Debian's chromium)"
node --test --test-concurrency=1 tests/browser/*.test.mjs
