#!/usr/bin/env bash
# Finds (or installs) the Chromium the browser tests drive through playwright-core.
#
#   bash scripts/install-chromium.sh        → prints the executable's path on stdout, exit 0
#
# Idempotent: when $CHROMIUM_PATH (if set) or /usr/bin/chromium is already there, it only prints the
# path. Otherwise, as root on a Debian-like system, it installs Debian's `chromium` package with
# apt-get (refreshing the package lists only when apt does not know the package, or when the lists
# are stale). Everything but the path goes to stderr, so callers can capture stdout as the path.
set -euo pipefail

DEFAULT_PATH=/usr/bin/chromium

say() { echo "install-chromium: $*" >&2; }

how_to_install() {
  cat >&2 <<EOF
install-chromium: Chromium is not installed and cannot be installed automatically here.
  On Debian/Ubuntu, as root:   apt-get update && apt-get install -y chromium
  (or: sudo bash scripts/install-chromium.sh)
  Or point CHROMIUM_PATH at an existing Chromium/Chrome executable, e.g.
      CHROMIUM_PATH=/opt/google/chrome/chrome npx jest tests/dashboard.browser.test.ts
EOF
}

if [ -n "${CHROMIUM_PATH:-}" ]; then
  if [ -x "$CHROMIUM_PATH" ] && [ ! -d "$CHROMIUM_PATH" ]; then
    echo "$CHROMIUM_PATH"
    exit 0
  fi
  say "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file; unset it to use (or install) $DEFAULT_PATH."
  exit 1
fi

if [ -x "$DEFAULT_PATH" ]; then
  echo "$DEFAULT_PATH"
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  how_to_install
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
install_pkg() { apt-get install -y -qq chromium >&2; }

# `apt-cache show` fails when the lists are missing (slim images delete them) or lack the package.
if ! apt-cache show chromium >/dev/null 2>&1; then
  say "package lists lack chromium: apt-get update"
  apt-get update -qq >&2
fi
say "installing Debian's chromium package (this takes a minute the first time)"
if ! install_pkg; then
  # Stale lists point at versions the mirror no longer has: refresh once and retry.
  say "install failed; refreshing the package lists and retrying"
  apt-get update -qq >&2
  install_pkg
fi

if [ ! -x "$DEFAULT_PATH" ]; then
  say "apt-get installed chromium but $DEFAULT_PATH is missing"
  how_to_install
  exit 1
fi
say "installed: $("$DEFAULT_PATH" --version 2>/dev/null || echo chromium)"
echo "$DEFAULT_PATH"
