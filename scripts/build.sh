#!/usr/bin/env bash
# Builds the release Worker (build/index.js + wasm) with local wasm-bindgen and
# wasm-opt, never a download. Skips when build/ is newer than every input, so
# `wrangler dev` starts fast in tests. Prints the wasm size, raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

stamp=build/index.js
if [ -f "$stamp" ] && [ -z "${FORCE_BUILD:-}" ] \
   && [ -z "$(find src Cargo.toml Cargo.lock -newer "$stamp" -print -quit 2>/dev/null)" ]; then
  echo "build: up to date ($stamp)"
  exit 0
fi
echo "build: worker-build --release"
worker-build --release
wasm=$(ls build/*.wasm 2>/dev/null | head -n1 || true)
if [ -n "$wasm" ]; then
  cp "$wasm" target/worker-with-names.wasm  # for size analysis: twiggy top target/worker-with-names.wasm
  # worker-build keeps the names section (--debuginfo) for readable panics;
  # we ship without it: a third of the module, and stack traces are not worth it at the edge.
  wasm-opt "$wasm" --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling --strip-debug --strip-producers -o "$wasm.stripped" && mv "$wasm.stripped" "$wasm"
  raw=$(stat -c %s "$wasm")
  gz=$(gzip -9 -c "$wasm" | wc -c)
  echo "build: $wasm is $raw bytes ($gz gzipped)"
fi
touch "$stamp"
