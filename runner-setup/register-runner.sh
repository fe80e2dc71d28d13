#!/usr/bin/env bash
# Registers a just-in-time (ephemeral, single-job) runner for the fork and runs it.
# Each invocation asks GitHub for a fresh JIT configuration:
#   POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig
# with a runner group restricted to the fork, and labels derived from the GPUs.
# The runner takes exactly one job and exits; the systemd unit starts it again.
# Secrets never reach a command line (where `ps` shows them): the token goes to curl on
# stdin, the JIT configuration to the runner in its environment. Every job first passes
# job-started-hook.sh (ACTIONS_RUNNER_HOOK_JOB_STARTED), which refuses anything but a
# workflow_dispatch of the campaign workflows on the fork's own branches.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  cat <<'USAGE'
Usage: register-runner.sh --repo OWNER/REPO --runner-group-id ID --runner-dir DIR
                          [--visible-devices LIST] [--name NAME] [--extra-labels a,b]
                          [--api-url URL] [--dry-run]

The token comes from the environment, never from arguments: GITHUB_TOKEN must be a
fine-grained token or GitHub App installation token with "Administration: write" on
the fork (the systemd unit reads it from its 0600 environment file).

  --repo OWNER/REPO       the SGLang fork
  --runner-group-id ID    runner group restricted to the fork (Settings > Actions >
                          Runner groups; repository-level runners use group 1)
  --runner-dir DIR        directory installed by install-runner.sh
  --visible-devices LIST  GPU indices this runner owns (exported as CUDA_VISIBLE_DEVICES)
  --name NAME             runner name (default <host>-<label>-g<devices>-<time>)
  --extra-labels LIST     labels added after the derived ones
  --work-folder DIR       job work folder, relative to the runner dir (default _work)
  --api-url URL           REST API root (default $GITHUB_API_URL or https://api.github.com)
  --dry-run               print the request and the runner command; call nothing
  -h, --help              show this help
USAGE
}

repo="" group="" runner_dir="" visible="" name="" extra="" work_folder=_work
api_url="${GITHUB_API_URL:-https://api.github.com}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) SOTA_DRY_RUN=1 ;;
    --repo) need_value "$@"; repo="$2"; shift ;;
    --runner-group-id) need_value "$@"; group="$2"; shift ;;
    --runner-dir) need_value "$@"; runner_dir="$2"; shift ;;
    --visible-devices) need_value "$@"; visible="$2"; shift ;;
    --name) need_value "$@"; name="$2"; shift ;;
    --extra-labels) need_value "$@"; extra="$2"; shift ;;
    --work-folder) need_value "$@"; work_folder="$2"; shift ;;
    --api-url) need_value "$@"; api_url="$2"; shift ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
  shift
done
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || usage_error "--repo must be OWNER/REPO"
[[ "$group" =~ ^[0-9]+$ ]] || usage_error "--runner-group-id must be a number"
[[ -n "$runner_dir" ]] || usage_error "--runner-dir is required"
check_visible_devices "$visible"
[[ -z "$extra" || "$extra" =~ ^[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*$ ]] || usage_error "--extra-labels must be comma-separated label names"
[[ "$work_folder" =~ ^[A-Za-z0-9._/-]+$ ]] || usage_error "--work-folder has unexpected characters"

mapfile -t labels < <(derive_labels "$visible")
[[ ${#labels[@]} -eq 2 ]] || die "could not derive runner labels"
if [[ -n "$extra" ]]; then
  IFS=, read -r -a extra_labels <<<"$extra"
  labels+=("${extra_labels[@]}")
fi
if [[ -z "$name" ]]; then
  name="$(hostname -s 2>/dev/null || echo host)-${labels[1]}-g${visible:-all}-$(date +%s)"
  name="${name//,/-}"
fi
[[ "$name" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || usage_error "runner name '$name' must be 1-64 of A-Z a-z 0-9 . _ -"

labels_json="$(printf '"%s",' "${labels[@]}")"
body="{\"name\":\"$name\",\"runner_group_id\":$group,\"labels\":[${labels_json%,}],\"work_folder\":\"$work_folder\"}"
endpoint="$api_url/repos/$repo/actions/runners/generate-jitconfig"

hook="$here/job-started-hook.sh"
if [[ "$SOTA_DRY_RUN" == 1 ]]; then
  echo "dry-run: POST $endpoint"
  echo "dry-run: body $body"
  echo "dry-run: then run CUDA_VISIBLE_DEVICES=${visible:-<unset>} ACTIONS_RUNNER_HOOK_JOB_STARTED=$hook SOTA_RUNNER_REPO=$repo ACTIONS_RUNNER_INPUT_JITCONFIG=<encoded_jit_config> $runner_dir/run.sh"
  exit 0
fi

: "${GITHUB_TOKEN:?GITHUB_TOKEN must hold a token with Administration write on $repo}"
[[ -x "$runner_dir/run.sh" ]] || die "$runner_dir/run.sh missing; run install-runner.sh first"
[[ -f "$hook" ]] || die "$hook is missing: the runner would take jobs unguarded"
if [[ -w "$hook" && "$(id -u)" != 0 ]]; then
  log "warning: $hook is writable by $(id -un), the account jobs run as: a job could weaken it for the next one; make runner-setup/ root-owned"
fi

# The header (with the token) reaches curl on stdin: printf is a shell builtin, so the
# token is on no process's command line.
response="$(printf 'Authorization: Bearer %s\n' "$GITHUB_TOKEN" | curl -fsS --retry 3 -X POST "$endpoint" \
  -H "Accept: application/vnd.github+json" \
  -H "X-GitHub-Api-Version: 2022-11-28" \
  -H "Content-Type: application/json" \
  -H @- \
  -d "$body")" || die "generate-jitconfig failed for $repo (check the token's permission and the runner group id)"

if command -v jq >/dev/null; then
  jit="$(jq -r '.encoded_jit_config // empty' <<<"$response")"
else
  jit="$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("encoded_jit_config",""))' <<<"$response")"
fi
[[ -n "$jit" ]] || die "the response carried no encoded_jit_config"
unset GITHUB_TOKEN

if [[ -n "$visible" ]]; then
  export CUDA_VISIBLE_DEVICES="$visible"
fi
export ACTIONS_RUNNER_HOOK_JOB_STARTED="$hook"
export SOTA_RUNNER_REPO="$repo"
echo "registered JIT runner $name with labels ${labels[*]}; waiting for one job"
cd "$runner_dir"
# The runner reads --jitconfig from ACTIONS_RUNNER_INPUT_JITCONFIG when it is not given.
export ACTIONS_RUNNER_INPUT_JITCONFIG="$jit"
unset jit response
exec ./run.sh
