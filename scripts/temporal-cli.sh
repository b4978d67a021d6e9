#!/usr/bin/env bash
# Finds or provisions the Temporal CLI and prints its path on stdout (messages go to stderr).
# Order: $TEMPORAL_CLI; `temporal` on PATH of the pinned version; the cached build; a build from
# source with Go; the official release binary; else a clear error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"
say() { echo "[temporal-cli] $*" >&2; }

if [[ -n "${TEMPORAL_CLI:-}" ]]; then
  [[ -x "$TEMPORAL_CLI" ]] || { say "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable file"; exit 1; }
  echo "$TEMPORAL_CLI"; exit 0
fi

if command -v temporal >/dev/null 2>&1 && temporal --version 2>/dev/null | grep -q "$TEMPORAL_CLI_VERSION"; then
  command -v temporal; exit 0
fi

dir="$STL_CACHE_DIR/temporal-cli-$TEMPORAL_CLI_VERSION"
bin="$dir/temporal"
if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"; exit 0
fi
mkdir -p "$dir"

# One provisioning at a time: the run command and the tests may ask together.
exec 9>"$dir/.lock"
flock 9
if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then echo "$bin"; exit 0; fi

if command -v go >/dev/null 2>&1; then
  say "building Temporal CLI v$TEMPORAL_CLI_VERSION from source with $(go version | cut -d' ' -f3) into $dir"
  say "(a one-time step: about 3 minutes on 2 cores; the result is cached)"
  # Later tags carry a `replace` directive that `go install pkg@version` refuses; v1.5.1 does not.
  if GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION" >&2; then
    echo "$bin"; exit 0
  fi
  say "go install failed; trying the official release binary"
fi

os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
url="https://github.com/temporalio/cli/releases/download/v$TEMPORAL_CLI_VERSION/temporal_cli_${TEMPORAL_CLI_VERSION}_${os}_${arch}.tar.gz"
if command -v curl >/dev/null 2>&1; then
  say "downloading $url"
  tmp="$(mktemp -d)"
  if curl -fsSL --retry 2 --connect-timeout 10 "$url" -o "$tmp/cli.tgz" && tar -xzf "$tmp/cli.tgz" -C "$tmp" temporal; then
    mv "$tmp/temporal" "$bin"; chmod +x "$bin"; rm -rf "$tmp"
    echo "$bin"; exit 0
  fi
  rm -rf "$tmp"
fi

say "could not provision the Temporal CLI v$TEMPORAL_CLI_VERSION."
say "Install it one of these ways and run again:"
say "  - install Go (https://go.dev/dl/) and let this script build it, or"
say "  - download it from https://github.com/temporalio/cli/releases/tag/v$TEMPORAL_CLI_VERSION and set TEMPORAL_CLI=/path/to/temporal, or"
say "  - set TEMPORAL_ADDRESS to an existing Temporal server (no local server is started then)."
exit 1
