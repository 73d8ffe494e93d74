#!/usr/bin/env bash
# Builds the three release Workers from this crate with local wasm-bindgen and
# wasm-opt, never a download: the API (feature `api`, build/), the account
# Worker (feature `account`: sign-in and key management; build-account/) and
# the engine (feature `engine`: Gate Durable Object, queue consumer, cron
# sweeps; build-engine/).
# Skips when all three are newer than every input, so `wrangler dev` starts fast in
# tests. Prints each wasm's size, raw and gzipped. Also puts the API
# reference's renderer in public/docs/vendor/ (below).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

# The API reference at /docs (public/docs/) renders /openapi.json with Swagger UI:
# its bundle and stylesheet are copied from node_modules/swagger-ui-dist (pinned
# by package-lock.json), not committed, so an upgrade is one line in package.json.
# Copied only when they differ, before the wasm's freshness check: `wrangler
# deploy` runs this script, so every deploy publishes them with the rest of public/.
vendor=node_modules/swagger-ui-dist
[ -f "$vendor/swagger-ui-bundle.js" ] || { echo "build: $vendor is missing: run make setup (npm ci)" >&2; exit 1; }
mkdir -p public/docs/vendor
for f in swagger-ui-bundle.js swagger-ui.css swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE; do
  cmp -s "$vendor/$f" "public/docs/vendor/$f" || cp "$vendor/$f" "public/docs/vendor/$f"
done

fresh() { [ -f "$1" ] && [ -z "$(find src Cargo.toml Cargo.lock -newer "$1" -print -quit 2>/dev/null)" ]; }
# Each Worker's entry (index.js) is the subrequest meter's (scripts/meter/)
# around the module worker-build made, moved to worker.js beside it. Inert
# unless the Worker's METER variable is "true" (tests only). Copied only when
# they differ: parallel test servers run this script at their start.
entries() {
  local out entry
  for out in build build-account build-engine; do
    [ -f "$out/index.js" ] || continue
    grep -q "jestha meter" "$out/index.js" || mv "$out/index.js" "$out/worker.js"
    entry=scripts/meter/http.js
    [ "$out" = build-engine ] && entry=scripts/meter/engine.js
    cmp -s "$entry" "$out/index.js" || cp "$entry" "$out/index.js"
    cmp -s scripts/meter/meter.js "$out/meter.js" || cp scripts/meter/meter.js "$out/meter.js"
  done
}
if [ -z "${FORCE_BUILD:-}" ] && fresh build/index.js && fresh build-engine/index.js && fresh build-account/index.js; then
  entries
  echo "build: up to date (build/, build-account/, build-engine/)"
  exit 0
fi
# Size: when the standard library's source is installed, std is compiled with
# the Worker (`-Z build-std`, enabled on stable by RUSTC_BOOTSTRAP, as Firefox
# and the Linux kernel do for their own unstable needs) with
# `-Cpanic=immediate-abort`: a panic traps at once, so no panic messages,
# locations or formatting machinery are linked in (about 33 KB of gzipped
# wasm). Panics already abort the isolate (`panic = "abort"`); only the message
# in the log is lost. With no panic message there is nothing to print a
# location in either, so `-Zlocation-detail=none` drops those too (0.7 KB).
# PLAIN_STD=1 builds with the shipped std instead.
if [ -z "${PLAIN_STD:-}" ] && [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  export RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none"
  echo "build: worker-build --release (std built with panic=immediate-abort)"
else
  echo "build: worker-build --release (shipped std)"
fi
# one OUT_DIR FEATURE: builds one Worker, with the others' entry points compiled out.
one() {
  local out=$1 feature=$2
  worker-build --release --out-dir "$out" -- --no-default-features --features "$feature"
  local wasm
  wasm=$(ls "$out"/*.wasm 2>/dev/null | head -n1 || true)
  [ -n "$wasm" ] || { echo "build: no wasm in $out" >&2; exit 1; }
  cp "$wasm" "target/$feature-with-names.wasm"  # for size analysis: twiggy top target/api-with-names.wasm
  # worker-build keeps the names section (--debuginfo) for readable panics;
  # we ship without it: a third of the module, and stack traces are not worth it at the edge.
  # A second -Oz on worker-build's output finds more (-3.8 KB gzipped measured;
  # a third pass or --converge found nothing more).
  wasm-opt "$wasm" --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling --strip-debug --strip-producers -Oz -o "$wasm.stripped" && mv "$wasm.stripped" "$wasm"
  echo "build: $wasm is $(stat -c %s "$wasm") bytes ($(gzip -9 -c "$wasm" | wc -c) gzipped)"
  touch "$out/index.js"
}
one build-engine engine
one build-account account
one build api
entries
