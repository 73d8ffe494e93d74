# Sourced by the scripts: where the local toolchain lives. No downloads:
# worker-build is pointed at the wasm-bindgen and wasm-opt that setup.sh installed.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$HOME/.cargo/bin/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$root/node_modules/.bin/esbuild}"
export WRANGLER_SEND_METRICS=false
export WRANGLER_LOG_PATH="$root/.wrangler/logs"
if [ -f "$root/.toolchain" ]; then export RUSTUP_TOOLCHAIN="$(cat "$root/.toolchain")"; fi
