#!/usr/bin/env bash
# Installs everything Jestha Edge needs to build, run and test, on a fresh
# machine or an ordinary laptop. Idempotent: a second run takes seconds.
# Every step says what it does; a failure names the step.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

step() { printf '\n==> setup: %s\n' "$*"; }
fail() { printf '\nsetup FAILED at step: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

WORKER_BUILD_VERSION=0.8.7

# 1. The wasm32 target: the ordinary rustup path first, with a timeout (it has
#    hung on some machines), then Debian's rustc-web with a std built from source.
wasm_target_ok() {
  local tc="${RUSTUP_TOOLCHAIN:-}"
  rustc ${tc:++$tc} --print sysroot >/dev/null 2>&1 || return 1
  [ -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib" ]
}
step "wasm32-unknown-unknown target"
if wasm_target_ok; then
  echo "present"
elif have rustup && timeout 120 rustup target add wasm32-unknown-unknown && wasm_target_ok; then
  echo "added with rustup"
else
  echo "rustup could not add the target; building std for wasm32 from Debian's rustc-web"
  (apt-get update -qq && apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-llvm) \
    || fail "apt-get install rustc-web (fallback for the wasm32 target)"
  lld=$(readlink -f /usr/bin/rust-lld 2>/dev/null || true)
  if [ -n "$lld" ] && [ ! -x "$lld" ]; then apt-get install -y -qq "$(basename "$lld")" || fail "install $(basename "$lld")"; fi
  tmp=$(mktemp -d)
  (cd "$tmp" && cargo new -q --lib stdbuild && cd stdbuild \
    && printf '[lib]\ncrate-type = ["cdylib"]\n' >> Cargo.toml \
    && RUSTFLAGS="-C embed-bitcode=yes" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build -q --release \
         --target wasm32-unknown-unknown -Z build-std=std,panic_abort) || fail "build wasm32 std from rust-web-src"
  mkdir -p /usr/lib/rustlib/wasm32-unknown-unknown/lib
  cp "$tmp"/stdbuild/target/wasm32-unknown-unknown/release/deps/lib*.rlib /usr/lib/rustlib/wasm32-unknown-unknown/lib/
  rustup toolchain link web /usr || fail "rustup toolchain link web /usr"
  echo web > .toolchain
  export RUSTUP_TOOLCHAIN=web
  cargo clean -q || true
  wasm_target_ok || fail "wasm32 target still missing after the fallback"
fi

# 1b. The standard library's source, so the release build can compile std for
#     the Worker with panics as plain traps (see scripts/build.sh): about 33 KB
#     less gzipped wasm. Optional: without it the build uses the shipped std.
step "rust-src (size-optimised std for the Worker)"
if [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  echo "present"
elif have rustup && timeout 120 rustup component add rust-src; then
  echo "added with rustup"
else
  echo "not available: the Worker builds with the shipped std (larger wasm)"
fi

# 1c. rustfmt and clippy: `make test` checks formatting and lints first.
step "rustfmt and clippy (make test's hygiene checks)"
if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
  echo "present"
elif have rustup && timeout 120 rustup component add rustfmt clippy; then
  echo "added with rustup"
else
  fail "rustfmt and clippy (rustup component add rustfmt clippy)"
fi

# 2. worker-build, pinned.
step "worker-build $WORKER_BUILD_VERSION"
if have worker-build && worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  echo "present"
else
  cargo install --locked "worker-build@$WORKER_BUILD_VERSION" || fail "cargo install worker-build"
fi

# 3. wasm-bindgen CLI, exactly the version Cargo.lock resolved for the library.
step "wasm-bindgen-cli matching Cargo.lock"
wb=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
[ -n "$wb" ] || fail "read the wasm-bindgen version from Cargo.lock"
if [ -x "$WASM_BINDGEN_BIN" ] && "$WASM_BINDGEN_BIN" --version | grep -q " $wb\$"; then
  echo "present ($wb)"
else
  # Without --locked: the CLI's lock pins a webpki-roots the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$wb" || fail "cargo install wasm-bindgen-cli $wb"
fi

# 4. wrangler and binaryen (wasm-opt), pinned in package-lock.json.
step "npm packages (wrangler, binaryen, playwright-core, swagger-ui-dist, the client generators)"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "present"
else
  npm ci --no-audit --no-fund || fail "npm ci"
fi

# 5. Python test tools in .venv (pytest, requests, the reference clients and client generator the tests use).
step "python test environment (.venv)"
if [ -f .venv/.stamp ] && [ .venv/.stamp -nt tests/requirements.txt ]; then
  echo "present"
else
  python3 -m venv .venv || fail "python3 -m venv .venv"
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt || fail "pip install -r tests/requirements.txt"
  touch .venv/.stamp
fi

# 6. wrk, for `make bench` only (a load generator from Debian's packages).
if [ "${1:-}" = "bench" ]; then
  step "wrk (benchmark load generator)"
  if have wrk; then
    echo "present"
  else
    (apt-get update -qq && apt-get install -y -qq wrk) || fail "apt-get install wrk"
  fi
fi

# 7. Debian's chromium for the browser tests (driven by playwright-core from
#    package-lock.json; Playwright never downloads a browser of its own here).
step "chromium (Debian package, for the browser tests)"
if [ -x /usr/bin/chromium ]; then
  echo "present ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
else
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    || fail "apt-get install chromium (Debian's browser for tests/browser)"
  [ -x /usr/bin/chromium ] || fail "apt-get install chromium left no /usr/bin/chromium"
fi

step "done"
