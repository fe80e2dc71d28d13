#!/usr/bin/env bash
# Job-started hook of a sota-bot GPU runner (ACTIONS_RUNNER_HOOK_JOB_STARTED points here;
# register-runner.sh sets it). The Actions runner runs it before every job; a non-zero
# exit fails the job before any of its steps run.
#
# It admits only what sota-bot dispatches: a `workflow_dispatch` run of one of the
# campaign workflows, on a branch of the fork itself. A pull request from anywhere (its own
# `on: pull_request` workflow with `runs-on` set to the GPU labels, `pull_request_target`,
# `issue_comment`, `push`, a workflow the fork does not list) is refused here, on the host,
# whatever the repository's settings say.
#
# Configuration (environment of the runner service):
#   SOTA_RUNNER_REPO            OWNER/REPO of the fork (required: without it every job is refused)
#   SOTA_RUNNER_WORKFLOWS       campaign workflow files (default: sota-baseline.yml sota-round.yml)
#   SOTA_RUNNER_BRANCH_PREFIX   branches the campaigns run on (default: sota/)
# The job's identity comes from the runner: GITHUB_EVENT_NAME, GITHUB_REPOSITORY,
# GITHUB_WORKFLOW_REF, GITHUB_REF and the event payload at GITHUB_EVENT_PATH (a workflow's
# `env:` cannot override GITHUB_* variables).
set -euo pipefail

refuse() {
  # A workflow command: shown as the job's error annotation.
  printf '::error title=sota-bot runner::refused: %s\n' "$*"
  printf 'sota-bot runner: refused: %s\n' "$*" >&2
  exit 1
}

# The value of a top-level-or-nested string field of the event payload ($1: jq path).
payload_field() {
  local path="$1" file="$GITHUB_EVENT_PATH"
  if command -v jq >/dev/null; then
    jq -r "$path // empty" "$file" 2>/dev/null
  elif command -v python3 >/dev/null; then
    python3 - "$path" "$file" <<'PY' 2>/dev/null
import json, sys
value = json.load(open(sys.argv[2]))
for key in sys.argv[1].lstrip(".").split("."):
    value = value.get(key) if isinstance(value, dict) else None
print(value if isinstance(value, str) else "")
PY
  else
    refuse "neither jq nor python3 is installed, so the event payload cannot be checked"
  fi
}

repo="${SOTA_RUNNER_REPO:-}"
workflows="${SOTA_RUNNER_WORKFLOWS:-sota-baseline.yml sota-round.yml}"
prefix="${SOTA_RUNNER_BRANCH_PREFIX-sota/}"
event="${GITHUB_EVENT_NAME:-}"
job_repo="${GITHUB_REPOSITORY:-}"
workflow_ref="${GITHUB_WORKFLOW_REF:-}"
ref="${GITHUB_REF:-}"

[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] ||
  refuse "SOTA_RUNNER_REPO is not set to the fork's OWNER/REPO on this runner (see runner-setup/README.md)"
[[ "$event" == workflow_dispatch ]] ||
  refuse "event '${event:-none}': this runner only takes workflow_dispatch runs of the sota-bot campaign workflows"
[[ "${job_repo,,}" == "${repo,,}" ]] ||
  refuse "repository '${job_repo:-none}' is not $repo"
[[ "$ref" == refs/heads/"$prefix"* ]] ||
  refuse "ref '${ref:-none}' is not a campaign branch (refs/heads/${prefix}...) of $repo"

# owner/repo/.github/workflows/<file>@<ref>: owner and repository names compare without
# case (as GitHub does), the file and the ref exactly.
wf_repo="${workflow_ref%%/.github/workflows/*}"
wf_rest="${workflow_ref#"$wf_repo"/}"
file=""
if [[ "${wf_repo,,}" == "${repo,,}" ]]; then
  for wf in $workflows; do
    if [[ "$wf_rest" == ".github/workflows/$wf@$ref" ]]; then
      file="$wf"
    fi
  done
fi
[[ -n "$file" ]] ||
  refuse "workflow '${workflow_ref:-none}' is not one of the campaign workflows ($workflows) of $repo at $ref"

# The payload must tell the same story (defence in depth against a confused runner).
[[ -n "${GITHUB_EVENT_PATH:-}" && -f "$GITHUB_EVENT_PATH" ]] ||
  refuse "the event payload (GITHUB_EVENT_PATH) is missing"
[[ "$(payload_field .repository.full_name)" == "$job_repo" ]] ||
  refuse "the event payload names another repository"
[[ "$(payload_field .ref)" == "$ref" ]] ||
  refuse "the event payload names another ref"
[[ "$(payload_field .workflow)" == ".github/workflows/$file" ]] ||
  refuse "the event payload names another workflow"

printf 'sota-bot runner: admitted %s on %s (%s)\n' "$file" "${ref#refs/heads/}" "$repo"
