#!/usr/bin/env bash
# Finds a pinned sota-bot release binary in the runner's tool cache
# ($RUNNER_TOOL_CACHE/sota-bot/<version>/[<arch>/]sota-bot). When none is there it
# prepares what the cargo cache and source build need instead. A cached binary is used
# only when its SHA-256 matches sota-bot-sha256 (the tool cache is writable by jobs, so an
# unpinned binary could be another job's): without a pin the action builds from source;
# `skip` uses the cached binary unchecked.
# Outputs: found, bin, version, source-dir, target-dir, cache-key, cache-restore-prefix.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

action_dir="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}"
source_dir="$(cd "$action_dir/.." && pwd)"
manifest="$source_dir/Cargo.toml"

version="${SOTA_BOT_VERSION:-}"
if [[ -z "$version" && -f "$manifest" ]]; then
  version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$manifest" | head -n 1)"
fi
[[ -n "$version" ]] || die "cannot tell which sota-bot version to use: set sota-bot-version or run the action from a sota-bot checkout"
[[ "$version" =~ ^[0-9A-Za-z._+-]+$ ]] || die "sota-bot-version '$version' has unexpected characters"
set_output version "$version"

arch="${RUNNER_ARCH:-$(uname -m)}"
case "$arch" in
  X64 | x86_64 | amd64) arch=x64 ;;
  ARM64 | aarch64 | arm64) arch=arm64 ;;
esac

pin="${SOTA_BOT_SHA256:-}"
[[ -z "$pin" || "${pin,,}" == skip || "$pin" =~ ^[0-9A-Fa-f]{64}$ ]] || die "sota-bot-sha256 must be 64 hex digits or 'skip', got '$pin'"

found=false
if [[ -n "${RUNNER_TOOL_CACHE:-}" ]]; then
  for candidate in "$RUNNER_TOOL_CACHE/sota-bot/$version/$arch/sota-bot" "$RUNNER_TOOL_CACHE/sota-bot/$version/sota-bot"; do
    [[ -x "$candidate" ]] || continue
    if [[ -z "$pin" ]]; then
      echo "::warning title=sota-bot::$candidate is not used: set sota-bot-sha256 to its SHA-256 to use it (or 'skip' to trust it unchecked); building from source"
      continue
    elif [[ "${pin,,}" == skip ]]; then
      echo "::warning title=sota-bot::using $candidate without checking its SHA-256 (sota-bot-sha256: skip)"
    else
      actual="$(sha256sum "$candidate" | cut -d' ' -f1)"
      [[ "$actual" == "${pin,,}" ]] || die "tool-cache binary $candidate has sha256 $actual, expected $pin"
    fi
    reported="$("$candidate" --version 2>/dev/null || true)"
    if [[ "$reported" != *" $version"* ]]; then
      echo "::warning title=sota-bot::$candidate reports '$reported', not version $version; ignoring it"
      continue
    fi
    found=true
    set_output bin "$candidate"
    echo "using pinned sota-bot $version from the tool cache: $candidate"
    break
  done
fi
set_output found "$found"

if [[ "$found" != true ]]; then
  [[ -f "$manifest" ]] || die "no sota-bot $version in the tool cache and no source at $source_dir to build from"
  [[ -f "$source_dir/Cargo.lock" ]] || die "$source_dir/Cargo.lock is missing; a --locked build needs it"
  lock_hash="$(sha256sum "$source_dir/Cargo.lock" | cut -c1-16)"
  rustc_version="$(rustc --version 2>/dev/null | tr -c 'A-Za-z0-9.\n' '-' || echo unknown)"
  prefix="sota-bot-cargo-${RUNNER_OS:-$(uname -s)}-$arch-$rustc_version-"
  set_output source-dir "$source_dir"
  set_output target-dir "$(scratch_dir)/target"
  set_output cache-key "$prefix$lock_hash"
  set_output cache-restore-prefix "$prefix"
  echo "no pinned sota-bot $version in the tool cache; building from $source_dir"
fi
