# Shared setup for scripts/run and scripts/test. Every step checks before it
# acts, so a second run only verifies. Installs go to the system (apt), to
# ~/.cargo/bin (trunk, wasm-bindgen) and to .tools/ in this checkout (npm).
# shellcheck shell=bash

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
TRUNK_VERSION="0.22.1"
# Must equal the `wasm-bindgen = "=…"` pin in Cargo.toml and Trunk.toml.
WASM_BINDGEN_VERSION="0.2.130"
BINARYEN_VERSION="132"
PLAYWRIGHT_CORE_VERSION="1.64.0"

export PATH="$HOME/.cargo/bin:$TOOLS/npm/node_modules/.bin:$PATH"
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
# ensure_apt PKG… installs the Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_cmd CMD PKG… installs PKGs unless CMD is already on PATH (keeps a
# Node.js that did not come from Debian, for example).
ensure_cmd() {
  local cmd="$1"; shift
  command -v "$cmd" >/dev/null 2>&1 || ensure_apt "$@"
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    log "installing the Rust toolchain (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  fi
  for component in rustfmt clippy; do
    if ! rustup component list --installed | grep -q "^$component"; then
      rustup component add "$component"
    fi
  done
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_build_tools() {
  ensure_apt build-essential pkg-config ca-certificates curl git
  # samael (SAML) links libxml2 and libxmlsec1 (OpenSSL backend); bindgen needs libclang.
  ensure_apt libclang-dev libxml2-dev libxmlsec1-dev libxmlsec1-openssl libssl-dev
  ensure_cmd node nodejs
  ensure_cmd npm npm
  ensure_rust
  if ! trunk --version 2>/dev/null | grep -q "trunk $TRUNK_VERSION"; then
    log "installing trunk $TRUNK_VERSION (one-off, several minutes)"
    cargo install "trunk@$TRUNK_VERSION" --locked --ignore-rust-version
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q "wasm-bindgen $WASM_BINDGEN_VERSION"; then
    log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (one-off)"
    cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
  fi
  # npm's binaryen, not Debian's (too old: breaks hydration).
  if ! "$TOOLS/npm/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
    log "installing wasm-opt (npm binaryen@$BINARYEN_VERSION) into .tools/npm"
    mkdir -p "$TOOLS/npm"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" "binaryen@$BINARYEN_VERSION" >/dev/null
  fi
}

# build_site compiles the wasm bundle and CSS into target/site/pkg.
build_site() {
  cd "$ROOT"
  # Trunk builds offline; make sure every crate is in the local cache first.
  cargo fetch --quiet
  log "building the browser bundle (trunk build --release)"
  trunk build --release
}
