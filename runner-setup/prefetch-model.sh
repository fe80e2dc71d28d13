#!/usr/bin/env bash
# Downloads model weights into the shared Hugging Face cache (HF_HOME) ahead of a
# campaign, so the first benchmark does not pay for the download and every framework
# loads the very same files. Idempotent: the hub client skips files already cached.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat <<'USAGE'
Usage: prefetch-model.sh --model ID [--revision REV] [--hf-home DIR] [--python PYTHON] [--dry-run]

Uses huggingface_hub's snapshot_download; HF_TOKEN is read from the environment for
gated models and never printed.

  --model ID       Hugging Face model id, e.g. meta-llama/Llama-3.1-8B-Instruct
  --revision REV   immutable revision (commit hash) to pin
  --hf-home DIR    cache root (default $HF_HOME or /data/hf-cache)
  --python PYTHON  interpreter with huggingface_hub installed (default python3)
  --dry-run        print what would be downloaded
  -h, --help       show this help
USAGE
}

model="" revision="" hf_home="${HF_HOME:-/data/hf-cache}" python=python3
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) SOTA_DRY_RUN=1 ;;
    --model) need_value "$@"; model="$2"; shift ;;
    --revision) need_value "$@"; revision="$2"; shift ;;
    --hf-home) need_value "$@"; hf_home="$2"; shift ;;
    --python) need_value "$@"; python="$2"; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$model" =~ ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$ ]] || usage_error "--model must be a Hugging Face id like org/name"
[[ -z "$revision" || "$revision" =~ ^[A-Za-z0-9_.-]+$ ]] || usage_error "--revision has unexpected characters"

export HF_HOME="$hf_home"
code='import os, sys
from huggingface_hub import snapshot_download
path = snapshot_download(repo_id=sys.argv[1], revision=sys.argv[2] or None)
print(path)'
run "$python" -c "$code" "$model" "$revision"
