#!/usr/bin/env bash
# Installs the GitHub Actions runner application into a directory, verifying the
# tarball's SHA-256. Idempotent: an installed matching version is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat <<'USAGE'
Usage: install-runner.sh --version V --sha256 HASH --runner-dir DIR [--arch x64|arm64] [--dry-run]

Downloads actions-runner-linux-<arch>-<V>.tar.gz from the actions/runner releases,
checks its SHA-256 (published on the release page) and unpacks it into DIR.
Use one DIR per runner instance (one per GPU set). Needs runner >= 2.327 (node24
actions).

  --version V        runner version, e.g. 2.329.0
  --sha256 HASH      expected SHA-256 of the tarball
  --runner-dir DIR   install directory, e.g. /opt/sota-runner/h100-0
  --arch ARCH        x64 (default) or arm64
  --dry-run          print what would be done
  -h, --help         show this help
USAGE
}

version="" sha="" runner_dir="" arch=x64
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) SOTA_DRY_RUN=1 ;;
    --version) need_value "$@"; version="$2"; shift ;;
    --sha256) need_value "$@"; sha="$2"; shift ;;
    --runner-dir) need_value "$@"; runner_dir="$2"; shift ;;
    --arch) need_value "$@"; arch="$2"; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || usage_error "--version must look like 2.329.0"
[[ "$sha" =~ ^[0-9a-fA-F]{64}$ ]] || usage_error "--sha256 must be 64 hex digits"
[[ -n "$runner_dir" ]] || usage_error "--runner-dir is required"
[[ "$arch" == x64 || "$arch" == arm64 ]] || usage_error "--arch must be x64 or arm64"

marker="$runner_dir/.sota-runner-version"
if [[ -f "$marker" && "$(cat "$marker")" == "$version" && -x "$runner_dir/run.sh" ]]; then
  echo "unchanged $runner_dir (runner $version)"
  exit 0
fi

tarball="actions-runner-linux-$arch-$version.tar.gz"
url="https://github.com/actions/runner/releases/download/v$version/$tarball"
tmp="${TMPDIR:-/tmp}/$tarball"
run mkdir -p "$runner_dir"
run curl -fsSL --retry 3 -o "$tmp" "$url"
if [[ "$SOTA_DRY_RUN" != 1 ]]; then
  actual="$(sha256sum "$tmp" | cut -d' ' -f1)"
  [[ "$actual" == "${sha,,}" ]] || { rm -f "$tmp"; die "SHA-256 mismatch for $tarball: got $actual"; }
fi
run tar -xzf "$tmp" -C "$runner_dir"
run rm -f "$tmp"
if [[ "$SOTA_DRY_RUN" == 1 ]]; then
  echo "dry-run: would record runner $version in $marker"
else
  printf '%s\n' "$version" >"$marker"
  echo "installed runner $version in $runner_dir"
fi
