#!/usr/bin/env bash
# Prepares a machine for the integration tests; safe to run any number of times.
# 1. Installs the Debian packages the integration tests need (librdkafka's mock cluster, kcat, a
#    C toolchain, openssl for test certificates) when missing: as root it installs them,
#    otherwise it names them and fails.
# 2. Builds infra/kafka-mock/build/mock-cluster when it is missing or older than its source.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { printf 'test-setup: %s\n' "$*"; }
fail() { printf 'test-setup: error: %s\n' "$*" >&2; exit 1; }

# Packages are checked with dpkg rather than by command name because librdkafka-dev and
# libc6-dev provide headers, not commands; libc6-dev is listed because gcc only recommends it.
required=(librdkafka-dev kcat gcc libc6-dev make openssl)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${required[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
  done
else
  # Not Debian: trust whatever provides the tools and the header.
  for cmd in kcat cc make openssl; do command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd"); done
  [[ -f /usr/include/librdkafka/rdkafka_mock.h || -f /usr/local/include/librdkafka/rdkafka_mock.h ]] ||
    missing+=("librdkafka-dev(>=1.4)")
fi

if ((${#missing[@]} > 0)); then
  if ! command -v apt-get >/dev/null 2>&1; then
    fail "missing ${missing[*]}; install them with your system's package manager"
  fi
  if [[ "$(id -u)" != 0 ]]; then
    fail "missing Debian packages; run as root: apt-get update && apt-get install -y ${missing[*]}"
  fi
  say "installing ${missing[*]}"
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "apt-get could not install ${missing[*]}"
  fi
fi

mock_dir="$root/infra/kafka-mock"
binary="$mock_dir/build/mock-cluster"
if [[ ! -x "$binary" || "$mock_dir/mock-cluster.c" -nt "$binary" || "$mock_dir/Makefile" -nt "$binary" ]]; then
  if ! out="$(make -s -C "$mock_dir" -B build/mock-cluster 2>&1)"; then
    printf '%s\n' "$out" >&2
    fail "could not build $binary"
  fi
  say "built infra/kafka-mock/build/mock-cluster"
fi
