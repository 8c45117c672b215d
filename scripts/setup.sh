#!/usr/bin/env bash
# Idempotent setup for a fresh Debian/Ubuntu machine: system packages (only those missing), npm
# dependencies (when the lockfile changed), the native addon and the TypeScript build (when their
# sources changed). Safe to run before every command; a no-op when everything is current.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# libtorch and its headers; PyTorch as the reference and benchmark peer; OpenBLAS because libtorch's
# matrix products go through the system BLAS and Debian's reference BLAS is 10x slower;
# fonts-noto-core and dataset-fashion-mnist for the offline datasets; chromium to check that
# reports and the web export render (tests screenshot them; playwright-core drives the export's
# page); libgloo-dev for the headers of the Gloo libtorch links (the addon's multi-process
# training; it depends on exactly the installed libgloo0's version).
APT_PACKAGES=(build-essential python3 libtorch-dev python3-torch python3-torchvision libopenblas0-openmp
  fonts-noto-core dataset-fashion-mnist chromium libgloo-dev)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  # With LIBTORCH pointing at another libtorch, Debian's is not needed.
  [ -n "${LIBTORCH:-}" ] && [ "$p" = libtorch-dev ] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p .stamps
stamp_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-32; }

lock=$(stamp_of package.json package-lock.json)
if [ ! -d node_modules ] || [ "$(cat .stamps/npm 2>/dev/null)" != "$lock" ]; then
  log "npm ci"
  # onnxruntime-node would download CUDA binaries we do not use (and cannot reach offline).
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$lock" > .stamps/npm
fi

native=$(stamp_of native/binding.gyp native/config.js native/build.js native/src/* ; echo "${LIBTORCH:-debian}")
if [ ! -f native/build/Release/adafilter.node ] || [ "$(cat .stamps/native 2>/dev/null)" != "$native" ]; then
  log "building the native addon (libtorch: ${LIBTORCH:-Debian libtorch-dev})"
  # The same build step as `adafilter setup` in an installed package.
  node native/build.js
  echo "$native" > .stamps/native
fi

ts=$(stamp_of tsconfig.json $(find src bench test -name '*.ts' | sort))
if [ ! -f dist/src/index.js ] || [ "$(cat .stamps/tsc 2>/dev/null)" != "$ts" ]; then
  log "compiling TypeScript"
  rm -rf dist
  npx --no-install tsc -p .
  echo "$ts" > .stamps/tsc
fi
