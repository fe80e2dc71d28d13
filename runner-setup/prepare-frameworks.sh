#!/usr/bin/env bash
# Prepares the serving frameworks a campaign compares: SGLang, vLLM, TensorRT-LLM
# (PyTorch backend) and TokenSpeed, either as container images or as one Python
# virtual environment per framework (their dependencies conflict). Idempotent: an
# image already present or a venv built from the same spec is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat <<'USAGE'
Usage: prepare-frameworks.sh [--mode venvs|images] [--frameworks LIST]
                             [--venv-root DIR] [--python PYTHON]
                             [--pin FRAMEWORK=SPEC]... [--image FRAMEWORK=REF]...
                             [--dry-run]

  --mode MODE            venvs (default) or images
  --frameworks LIST      comma-separated subset of sglang,vllm,tensorrt_llm,tokenspeed
                         (default: all four)
  --venv-root DIR        where venvs go (default /opt/sota/venvs); the runner finds
                         each framework at DIR/<framework>/bin
  --python PYTHON        interpreter for the venvs (default python3)
  --pin FW=SPEC          pip requirement for FW, e.g. --pin vllm==0.11.0 (default:
                         the latest release; pin versions for reproducible campaigns)
  --image FW=REF         image for FW in images mode; pin by digest for reproducibility.
                         Defaults: sglang=lmsysorg/sglang:latest,
                         vllm=vllm/vllm-openai:latest,
                         tensorrt_llm=nvcr.io/nvidia/tensorrt-llm/release:latest;
                         tokenspeed has no default image (give one or use venvs)
  --dry-run              print what would be done
  -h, --help             show this help
USAGE
}

mode=venvs
frameworks="sglang,vllm,tensorrt_llm,tokenspeed"
venv_root=/opt/sota/venvs
python=python3
declare -A pins=(
  [sglang]="sglang"
  [vllm]="vllm"
  [tensorrt_llm]="tensorrt-llm"
  [tokenspeed]="tokenspeed"
)
declare -A images=(
  [sglang]="lmsysorg/sglang:latest"
  [vllm]="vllm/vllm-openai:latest"
  [tensorrt_llm]="nvcr.io/nvidia/tensorrt-llm/release:latest"
)
known_framework() { [[ "$1" =~ ^(sglang|vllm|tensorrt_llm|tokenspeed)$ ]]; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) SOTA_DRY_RUN=1 ;;
    --mode) need_value "$@"; mode="$2"; shift ;;
    --frameworks) need_value "$@"; frameworks="$2"; shift ;;
    --venv-root) need_value "$@"; venv_root="$2"; shift ;;
    --python) need_value "$@"; python="$2"; shift ;;
    --pin | --image)
      need_value "$@"
      fw="${2%%=*}" value="${2#*=}"
      [[ "$2" == *=* && -n "$value" ]] || usage_error "$1 takes FRAMEWORK=VALUE"
      known_framework "$fw" || usage_error "$1: unknown framework '$fw'"
      if [[ "$1" == --pin ]]; then pins[$fw]="$value"; else images[$fw]="$value"; fi
      shift
      ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$mode" == venvs || "$mode" == images ]] || usage_error "--mode must be venvs or images"
IFS=, read -r -a selected <<<"$frameworks"
[[ ${#selected[@]} -gt 0 ]] || usage_error "--frameworks is empty"
for fw in "${selected[@]}"; do
  known_framework "$fw" || usage_error "unknown framework '$fw' (use sglang, vllm, tensorrt_llm, tokenspeed)"
done

prepare_image() {
  local fw="$1" ref="${images[$1]:-}" runtime=""
  [[ -n "$ref" ]] || die "no image for $fw: pass --image $fw=REF or use --mode venvs"
  for candidate in docker podman; do
    command -v "$candidate" >/dev/null && { runtime="$candidate"; break; }
  done
  if [[ -z "$runtime" ]]; then
    [[ "$SOTA_DRY_RUN" == 1 ]] || die "images mode needs docker or podman"
    runtime=docker
  fi
  if [[ "$SOTA_DRY_RUN" != 1 ]] && "$runtime" image inspect "$ref" >/dev/null 2>&1 && [[ "$ref" != *:latest ]]; then
    echo "unchanged $fw image $ref"
    return
  fi
  run "$runtime" pull "$ref"
  echo "ready $fw image $ref"
}

prepare_venv() {
  local fw="$1" spec="${pins[$1]}" dir="$venv_root/$1"
  local marker="$dir/.sota-spec"
  if [[ -f "$marker" && "$(cat "$marker")" == "$spec" && -x "$dir/bin/python" ]]; then
    echo "unchanged $fw venv $dir ($spec)"
    return
  fi
  run "$python" -m venv "$dir"
  run "$dir/bin/python" -m pip install --upgrade pip
  run "$dir/bin/python" -m pip install "$spec"
  if [[ "$SOTA_DRY_RUN" == 1 ]]; then
    echo "dry-run: would record $spec in $marker"
  else
    printf '%s\n' "$spec" >"$marker"
    echo "ready $fw venv $dir ($spec)"
  fi
}

for fw in "${selected[@]}"; do
  if [[ "$mode" == images ]]; then prepare_image "$fw"; else prepare_venv "$fw"; fi
done
if [[ " ${selected[*]} " == *" tensorrt_llm "* ]]; then
  echo "note: sota-bot serves TensorRT-LLM only as 'trtllm-serve serve <model> --backend pytorch'"
fi
