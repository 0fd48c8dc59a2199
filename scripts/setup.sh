#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing. Safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libcurl4-openssl-dev libsqlitecpp-dev libsqlite3-dev libsodium-dev libjemalloc-dev
  libpq-dev
  libgtest-dev libgmock-dev
  curl binutils python3
)
# --nodes (demo.sh --nodes N): a throwaway PostgreSQL server and nginx in front of the hosts (the
# light build has the proxy and upstream modules, nothing more).
if [[ " $* " == *" --nodes "* || " $* " == *" --tests "* ]]; then
  packages+=(postgresql nginx-light)
fi
if [[ " $* " == *" --tests "* ]]; then
  packages+=(clang libclang-rt-14-dev)
  # CI checks the formatting (scripts/check_format.sh).
  packages+=(clang-format)
  # The inbox page's browser tests (tests/browser) drive a real headless Chromium.
  packages+=(chromium)
  # The PostgreSQL stores' tests start a throwaway server (initdb, postgres) of their own, and a
  # test runs demo.sh --nodes 3 (postgresql and nginx-light above).
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
