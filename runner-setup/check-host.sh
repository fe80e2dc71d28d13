#!/usr/bin/env bash
# Checks that a GPU host can run sota-bot campaign jobs: NVIDIA driver, CUDA, NCCL,
# Nsight Compute, free disk, a container runtime with GPU support, and the tools the
# runner needs. Prints one PASS/WARN/FAIL line per check; exits 1 on any FAIL.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat <<'USAGE'
Usage: check-host.sh [--work-dir DIR] [--hf-home DIR] [--min-disk-gb N]
                     [--visible-devices LIST] [--require-containers] [--dry-run]

Checks (read-only; safe to run any number of times):
  driver      nvidia-smi works and reports a driver version
  cuda        CUDA version from the nvidia-smi banner (nvcc optional)
  gpus        GPU model and count, and the runner labels they give
  gpu-idle    no process already holds the GPUs
  nccl        libnccl is present (system or a framework wheel)
  ncu         Nsight Compute (ncu) for kernel evidence
  disk        free space under the work dir and the model cache
  containers  docker or podman with the NVIDIA container toolkit
  tools       git, curl, jq or python3, tar, systemctl

  --work-dir DIR          runner work directory (default /var/lib/sota-runner)
  --hf-home DIR           shared model-weights cache (default $HF_HOME or /data/hf-cache)
  --min-disk-gb N         free space required at each location (default 200)
  --visible-devices LIST  GPU indices the runner will own (default all)
  --require-containers    make a missing container runtime a FAIL (default WARN)
  --dry-run               list the checks without running them
  -h, --help              show this help
USAGE
}

work_dir=/var/lib/sota-runner
hf_home="${HF_HOME:-/data/hf-cache}"
min_disk_gb=200
visible=""
require_containers=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) SOTA_DRY_RUN=1 ;;
    --work-dir) need_value "$@"; work_dir="$2"; shift ;;
    --hf-home) need_value "$@"; hf_home="$2"; shift ;;
    --min-disk-gb) need_value "$@"; min_disk_gb="$2"; shift ;;
    --visible-devices) need_value "$@"; visible="$2"; shift ;;
    --require-containers) require_containers=1 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
check_visible_devices "$visible"
[[ "$min_disk_gb" =~ ^[0-9]+$ ]] || usage_error "--min-disk-gb must be a number"

if [[ "$SOTA_DRY_RUN" == 1 ]]; then
  echo "dry-run: would check driver, cuda, gpus, gpu-idle, nccl, ncu, disk ($work_dir, $hf_home >= ${min_disk_gb} GB), containers, tools"
  exit 0
fi

failures=0
pass() { printf 'PASS %-10s %s\n' "$1" "$2"; }
warn() { printf 'WARN %-10s %s\n' "$1" "$2"; }
fail() {
  printf 'FAIL %-10s %s\n' "$1" "$2"
  failures=$((failures + 1))
}

# driver
if command -v nvidia-smi >/dev/null && driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)" && [[ -n "$driver" ]]; then
  pass driver "NVIDIA driver ${driver// /}"
else
  fail driver "nvidia-smi is missing or failing; install the NVIDIA datacenter driver"
fi

# cuda
cuda="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -n 1 || true)"
if [[ -n "$cuda" ]]; then
  nvcc_note="no nvcc (fine: frameworks ship their CUDA runtime)"
  if command -v nvcc >/dev/null; then
    nvcc_note="nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  fi
  pass cuda "driver supports CUDA $cuda; $nvcc_note"
else
  fail cuda "could not read the CUDA version from nvidia-smi"
fi

# gpus
if labels="$(derive_labels "$visible" 2>&1)"; then
  pass gpus "labels: $(printf '%s' "$labels" | paste -sd, -)"
else
  fail gpus "$labels"
fi

# gpu-idle
apps="$(nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv,noheader 2>/dev/null || true)"
if [[ -z "${apps//[[:space:]]/}" ]]; then
  pass gpu-idle "no compute processes on the GPUs"
else
  warn gpu-idle "processes already hold GPUs (benchmarks will be skewed): $(printf '%s' "$apps" | paste -sd';' -)"
fi

# nccl
if ldconfig -p 2>/dev/null | grep -q 'libnccl\.so'; then
  pass nccl "system libnccl found"
elif compgen -G "/usr/lib/*/libnccl.so*" >/dev/null || compgen -G "/usr/local/cuda*/lib64/libnccl.so*" >/dev/null; then
  pass nccl "libnccl found under /usr"
else
  warn nccl "no system libnccl; multi-GPU runs rely on the NCCL bundled with each framework's wheel or image"
fi

# ncu
if command -v ncu >/dev/null || [[ -x /usr/local/cuda/bin/ncu ]]; then
  pass ncu "Nsight Compute available"
else
  warn ncu "Nsight Compute (ncu) missing: rounds cannot collect NCU kernel evidence"
fi

# disk
for dir in "$work_dir" "$hf_home"; do
  probe="$dir"
  while [[ ! -d "$probe" && "$probe" != / ]]; do probe="$(dirname "$probe")"; done
  free_kb="$(df -Pk "$probe" | awk 'NR==2 {print $4}')"
  free_gb=$((free_kb / 1024 / 1024))
  if [[ "$free_gb" -ge "$min_disk_gb" ]]; then
    pass disk "$dir: ${free_gb} GB free"
  else
    fail disk "$dir: ${free_gb} GB free, need ${min_disk_gb} GB (model weights, images, traces)"
  fi
done

# containers
runtime=""
for candidate in docker podman; do
  if command -v "$candidate" >/dev/null; then runtime="$candidate"; break; fi
done
report_containers() { if [[ "$require_containers" == 1 ]]; then fail containers "$1"; else warn containers "$1"; fi; }
if [[ -z "$runtime" ]]; then
  report_containers "neither docker nor podman found (needed for framework images; venvs work without)"
elif command -v nvidia-ctk >/dev/null || { [[ "$runtime" == docker ]] && docker info 2>/dev/null | grep -qi 'runtimes:.*nvidia'; }; then
  pass containers "$runtime with the NVIDIA container toolkit"
else
  report_containers "$runtime found but the NVIDIA container toolkit is not (install nvidia-container-toolkit)"
fi

# tools
missing=()
for tool in git curl tar; do command -v "$tool" >/dev/null || missing+=("$tool"); done
command -v jq >/dev/null || command -v python3 >/dev/null || missing+=("jq-or-python3")
if [[ ${#missing[@]} -eq 0 ]]; then
  pass tools "git, curl, tar and a JSON parser present"
else
  fail tools "missing: ${missing[*]}"
fi
command -v systemctl >/dev/null || warn tools "no systemctl: install-service.sh cannot manage the runner unit"
command -v cargo >/dev/null || warn tools "no cargo: workflows need a sota-bot release binary in the runner tool cache"

if [[ "$failures" -gt 0 ]]; then
  echo "check-host: $failures check(s) failed"
  exit 1
fi
echo "check-host: ready"
