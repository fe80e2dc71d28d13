#!/usr/bin/env bash
# Prints the self-hosted runner labels for this host's GPUs, following SGLang CI's
# {count}-gpu-{hardware} convention: [self-hosted, 1-gpu-h100], [self-hosted, 8-gpu-h200].
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat <<'USAGE'
Usage: derive-labels.sh [--visible-devices 0,1] [--format lines|csv|json] [--dry-run]

Reads the GPUs with nvidia-smi and prints the runner labels a sota-bot campaign on
this GPU set is dispatched to: "self-hosted" and "<count>-gpu-<hardware>".

  --visible-devices LIST  GPU indices this runner owns (default: all GPUs)
  --format FORMAT         lines (default), csv (for config.sh --labels) or json
                          (for the App's runner_labels and workflow inputs)
  --dry-run               accepted for symmetry; this script changes nothing
  -h, --help              show this help
USAGE
}

visible=""
format=lines
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) SOTA_DRY_RUN=1 ;;
    --visible-devices) need_value "$@"; visible="$2"; shift ;;
    --format) need_value "$@"; format="$2"; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
check_visible_devices "$visible"

mapfile -t labels < <(derive_labels "$visible")
[[ ${#labels[@]} -eq 2 ]] || die "could not derive labels"
case "$format" in
  lines) printf '%s\n' "${labels[@]}" ;;
  csv) (IFS=,; printf '%s\n' "${labels[*]}") ;;
  json) printf '["%s", "%s"]\n' "${labels[0]}" "${labels[1]}" ;;
  *) usage_error "--format must be lines, csv or json" ;;
esac
