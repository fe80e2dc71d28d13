#!/usr/bin/env bash
# Installs a systemd unit that keeps one just-in-time runner alive for one GPU set:
# each start registers a fresh ephemeral runner, which takes one job and exits, and
# systemd starts the next. Also creates the shared model-weights cache (HF_HOME)
# outside the runner's work directory and a 0600 environment file for the tokens.
# The cache is read-only for the service and every job it runs (ReadOnlyPaths, offline
# hub): a job cannot plant weights, tokenizers or remote code for the next campaign.
# Fill it with prefetch-model.sh, outside the service.
# Idempotent: unchanged files are left alone and the service is only reloaded when
# the unit changed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat <<'USAGE'
Usage: install-service.sh --name NAME --repo OWNER/REPO --runner-group-id ID
                          --runner-dir DIR [--visible-devices LIST] [--hf-home DIR]
                          [--user USER] [--unit-dir DIR] [--env-dir DIR] [--no-start]
                          [--dry-run]

Writes sota-runner-NAME.service, e.g. NAME=h100-0 for GPU 0 or h100-0-7 for all eight.

  --name NAME             instance name (letters, digits, - and _)
  --repo OWNER/REPO       the SGLang fork the runner serves
  --runner-group-id ID    runner group restricted to the fork
  --runner-dir DIR        runner installed by install-runner.sh for this instance
  --visible-devices LIST  GPU indices the instance owns (CUDA_VISIBLE_DEVICES)
  --hf-home DIR           shared Hugging Face cache (default /data/hf-cache)
  --user USER             account the runner runs as (default sota-runner)
  --unit-dir DIR          systemd unit directory (default /etc/systemd/system)
  --env-dir DIR           environment files (default /etc/sota-runner)
  --no-start              write files but do not enable/start the unit
  --dry-run               print what would change; write nothing
  -h, --help              show this help

The environment file NAME.env is created once with empty GITHUB_TOKEN and HF_TOKEN
lines; fill them in (it is never overwritten, so tokens survive reruns).
USAGE
}

name="" repo="" group="" runner_dir="" visible="" hf_home=/data/hf-cache user=sota-runner
unit_dir=/etc/systemd/system env_dir=/etc/sota-runner start=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) SOTA_DRY_RUN=1 ;;
    --name) need_value "$@"; name="$2"; shift ;;
    --repo) need_value "$@"; repo="$2"; shift ;;
    --runner-group-id) need_value "$@"; group="$2"; shift ;;
    --runner-dir) need_value "$@"; runner_dir="$2"; shift ;;
    --visible-devices) need_value "$@"; visible="$2"; shift ;;
    --hf-home) need_value "$@"; hf_home="$2"; shift ;;
    --user) need_value "$@"; user="$2"; shift ;;
    --unit-dir) need_value "$@"; unit_dir="$2"; shift ;;
    --env-dir) need_value "$@"; env_dir="$2"; shift ;;
    --no-start) start=0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || usage_error "--name must be letters, digits, - and _"
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || usage_error "--repo must be OWNER/REPO"
[[ "$group" =~ ^[0-9]+$ ]] || usage_error "--runner-group-id must be a number"
[[ "$runner_dir" == /* ]] || usage_error "--runner-dir must be an absolute path"
[[ "$hf_home" == /* ]] || usage_error "--hf-home must be an absolute path"
[[ "$user" =~ ^[a-z_][a-z0-9_-]*$ ]] || usage_error "--user is not a valid account name"
check_visible_devices "$visible"
case "$hf_home/" in
  "$runner_dir"/*) usage_error "--hf-home must be outside the runner directory (jobs clean their work dir)" ;;
esac

unit="sota-runner-$name.service"
env_file="$env_dir/$name.env"

if [[ "$SOTA_DRY_RUN" != 1 ]] && ! id -u "$user" >/dev/null 2>&1; then
  run useradd --system --create-home --shell /usr/sbin/nologin "$user"
elif [[ "$SOTA_DRY_RUN" == 1 ]] && ! id -u "$user" >/dev/null 2>&1; then
  echo "dry-run: would create system user $user"
fi
if [[ ! -d "$hf_home" ]]; then
  run mkdir -p "$hf_home"
  run chmod 2775 "$hf_home"
  run chown "$user" "$hf_home"
fi

if [[ -f "$env_file" ]]; then
  echo "unchanged $env_file (kept: it holds tokens)"
else
  write_if_changed "$env_file" 0600 <<ENV
# Tokens for the sota-bot runner $name. Never commit this file.
# GITHUB_TOKEN: fine-grained token or App installation token with Administration write on $repo.
GITHUB_TOKEN=
# HF_TOKEN: read access to gated model weights.
HF_TOKEN=
ENV
fi

devices_line=""
[[ -n "$visible" ]] && devices_line="Environment=CUDA_VISIBLE_DEVICES=$visible"
unit_status="$(write_if_changed "$unit_dir/$unit" 0644 <<UNIT
# Installed by sota-bot runner-setup/install-service.sh; rerun it to change.
[Unit]
Description=sota-bot just-in-time GPU runner $name (${visible:-all GPUs}) for $repo
After=network-online.target docker.service
Wants=network-online.target

[Service]
Type=simple
User=$user
EnvironmentFile=$env_file
# GPU indices mean nvidia-smi's (PCI bus) order for CUDA too.
Environment=CUDA_DEVICE_ORDER=PCI_BUS_ID
$devices_line
Environment=HF_HOME=$hf_home
# Jobs read the shared cache and never write it: models are prefetched (prefetch-model.sh).
ReadOnlyPaths=$hf_home
Environment=HF_HUB_OFFLINE=1
Environment=HF_MODULES_CACHE=%h/.cache/huggingface/modules
ExecStart=$here/register-runner.sh --repo $repo --runner-group-id $group --runner-dir $runner_dir${visible:+ --visible-devices $visible}
Restart=always
RestartSec=15
KillSignal=SIGINT
TimeoutStopSec=300

[Install]
WantedBy=multi-user.target
UNIT
)"
echo "$unit_status"

if [[ "$start" == 1 ]]; then
  if ! command -v systemctl >/dev/null; then
    echo "no systemctl here: start $unit by hand"
  elif [[ "$unit_status" == unchanged* ]]; then
    run systemctl enable --now "$unit"
  else
    run systemctl daemon-reload
    run systemctl enable "$unit"
    run systemctl restart "$unit"
  fi
fi
