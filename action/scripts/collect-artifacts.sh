#!/usr/bin/env bash
# Turns the phase's list of large raw files into inputs for actions/upload-artifact.
# The list is the file the phase wrote via --artifacts-list, or else
# <run-dir>/.artifacts-manifest: one path per line (relative to the workspace or
# absolute), '#' comments and blank lines ignored.
# Outputs: artifact-name, has-files, count, paths (newline-separated).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

workspace="${GITHUB_WORKSPACE:-$PWD}"
list="${SOTA_ARTIFACTS_LIST:-}"
if [[ -z "$list" || ! -f "$list" ]]; then
  list="$workspace/${SOTA_RUN_DIR:-.}/.artifacts-manifest"
fi

# Artifact names may not contain " : < > | * ? \ / or line breaks.
sanitize() { printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '-'; }
name="sota-$(sanitize "${SOTA_CAMPAIGN_ID:-campaign}")-$(sanitize "${SOTA_PHASE:-phase}")"
[[ -n "${SOTA_ROUND:-}" && "${SOTA_PHASE:-}" == round ]] && name+="-r$(sanitize "$SOTA_ROUND")"
name+="-${GITHUB_RUN_ID:-0}-${GITHUB_RUN_ATTEMPT:-1}"

paths=()
if [[ -f "$list" ]]; then
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%$'\r'}"
    [[ -z "${line//[[:space:]]/}" || "$line" == \#* ]] && continue
    [[ "$line" == /* ]] && path="$line" || path="$workspace/$line"
    if [[ ! -e "$path" ]]; then
      echo "::warning title=sota-bot::raw artifact listed but missing: $line"
      continue
    fi
    # De-duplicate while keeping the phase's order.
    dup=false
    for seen in "${paths[@]}"; do [[ "$seen" == "$path" ]] && dup=true && break; done
    [[ "$dup" == true ]] || paths+=("$path")
  done <"$list"
else
  echo "no raw-artifact list at $list; nothing to upload"
fi

set_output count "${#paths[@]}"
if [[ "${#paths[@]}" -gt 0 ]]; then
  set_output has-files true
  set_output artifact-name "$name"
  set_output paths "$(printf '%s\n' "${paths[@]}")"
  echo "uploading ${#paths[@]} raw file(s) as $name"
else
  set_output has-files false
  set_output artifact-name ""
fi
