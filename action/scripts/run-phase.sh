#!/usr/bin/env bash
# Runs one campaign phase: GPU preflight, then `sota-bot runner baseline|round`.
# The phase commits text artifacts and pushes them itself, writes commit-sha and
# decision-file to $GITHUB_OUTPUT, a markdown summary this script appends to the job
# summary (also on failure), and a list of large raw files for the upload step.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

bin="${SOTA_BOT_BIN:-sota-bot}"
phase="${SOTA_PHASE:-}"
campaign="${SOTA_CAMPAIGN_ID:-}"
run_dir="${SOTA_RUN_DIR:-}"
branch="${SOTA_BRANCH:-}"
round="${SOTA_ROUND:-}"
timeout_minutes="${SOTA_PHASE_TIMEOUT_MINUTES:-}"
: "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
: "${GITHUB_STEP_SUMMARY:?GITHUB_STEP_SUMMARY is not set}"

case "$phase" in
  baseline | round) ;;
  *) die "phase must be baseline or round, got '$phase'" ;;
esac
[[ -n "$campaign" ]] || die "campaign-id is required"
[[ -n "$run_dir" ]] || die "run-dir is required"
[[ -n "$branch" ]] || die "branch is required"
[[ "$run_dir" != /* && "$run_dir" != *..* ]] || die "run-dir must be a relative path inside the checkout, got '$run_dir'"
if [[ "$phase" == round ]]; then
  [[ "$round" =~ ^[0-9]+$ ]] || die "round must be a non-negative integer for a round phase, got '$round'"
fi
config="${SOTA_CONFIG:-}"
if [[ -n "$config" ]]; then
  [[ "$config" != /* && "$config" != *..* ]] || die "config must be a relative path inside the checkout, got '$config'"
  [[ -f "$config" ]] || die "config '$config' does not exist in the checkout"
fi
if [[ -n "$timeout_minutes" ]]; then
  [[ "$timeout_minutes" =~ ^[1-9][0-9]*$ ]] || die "phase-timeout-minutes must be a positive integer, got '$timeout_minutes'"
fi
case "${SOTA_AGENT_PRESET:-}" in
  "" | claude | codex | command) ;;
  *) die "agent-preset must be claude, codex or command, got '${SOTA_AGENT_PRESET}'" ;;
esac
if [[ -n "${SOTA_AGENT_MAX_TURNS:-}" ]]; then
  [[ "$SOTA_AGENT_MAX_TURNS" =~ ^[1-9][0-9]*$ ]] || die "agent-max-turns must be a positive integer, got '$SOTA_AGENT_MAX_TURNS'"
fi
if [[ -n "${SOTA_AGENT_MAX_COST_USD:-}" ]]; then
  [[ "$SOTA_AGENT_MAX_COST_USD" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "agent-max-cost-usd must be a number of US dollars, got '$SOTA_AGENT_MAX_COST_USD'"
fi
command -v "$bin" >/dev/null || die "sota-bot binary '$bin' not found"

scratch="$(scratch_dir)"
summary_file="$scratch/summary-$phase${round:+-$round}.md"
artifacts_list="$scratch/artifacts-$phase${round:+-$round}.txt"
rm -f "$summary_file" "$artifacts_list"
set_output artifacts-list "$artifacts_list"

# nvidia-smi numbers GPUs in PCI bus order; make CUDA agree so the preflight checks
# the very GPUs the phase will use.
export CUDA_DEVICE_ORDER="${CUDA_DEVICE_ORDER:-PCI_BUS_ID}"
if [[ -n "${SOTA_VISIBLE_DEVICES:-}" ]]; then
  export CUDA_VISIBLE_DEVICES="$SOTA_VISIBLE_DEVICES"
fi
# Commits made during the phase (the engine's and the agent's) need an identity; a
# runner rarely has one configured.
if [[ -z "$(git config user.email 2>/dev/null || true)" ]]; then
  export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-sota-bot}"
  export GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-sota-bot@users.noreply.github.com}"
  export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}"
  export GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"
fi
# The phase passes these names (never values) on to the agent and scrubs them from
# everything it writes.
export SOTA_AGENT_SECRET_NAMES="${SOTA_AGENT_SECRET_NAMES:-}"

preflight=("$bin" runner preflight)
[[ -n "${SOTA_EXPECT_GPU_MODEL:-}" ]] && preflight+=(--expect-gpu-model "$SOTA_EXPECT_GPU_MODEL")
[[ -n "${SOTA_EXPECT_GPU_COUNT:-}" ]] && preflight+=(--expect-gpu-count "$SOTA_EXPECT_GPU_COUNT")
echo "::group::GPU preflight"
set +e
"${preflight[@]}" | tee "$scratch/preflight.txt"
preflight_rc=${PIPESTATUS[0]}
set -e
echo "::endgroup::"
if [[ "$preflight_rc" -ne 0 ]]; then
  {
    echo "### sota-bot $phase${round:+ $round}: GPU preflight failed"
    echo
    echo '```'
    cat "$scratch/preflight.txt"
    echo '```'
  } >>"$GITHUB_STEP_SUMMARY"
  die "GPU preflight failed (exit $preflight_rc); the phase did not start"
fi

args=(runner "$phase" --campaign-id "$campaign" --run-dir "$run_dir" --branch "$branch"
  --outputs-file "$GITHUB_OUTPUT" --summary-file "$summary_file" --artifacts-list "$artifacts_list")
[[ "$phase" == round ]] && args+=(--round "$round")
if [[ "$phase" == round ]]; then
  [[ -n "${SOTA_AGENT_PRESET:-}" ]] && args+=(--agent "$SOTA_AGENT_PRESET")
  [[ -n "${SOTA_AGENT_COMMAND:-}" ]] && args+=(--agent-command "$SOTA_AGENT_COMMAND")
  [[ -n "${SOTA_AGENT_MODEL:-}" ]] && args+=(--agent-model "$SOTA_AGENT_MODEL")
  [[ -n "${SOTA_AGENT_MAX_TURNS:-}" ]] && args+=(--agent-max-turns "$SOTA_AGENT_MAX_TURNS")
  [[ -n "${SOTA_AGENT_MAX_COST_USD:-}" ]] && args+=(--agent-max-cost-usd "$SOTA_AGENT_MAX_COST_USD")
fi
# `--flag=value`: a note starting with `-` (`-5% is fine`) can never be read as a flag.
[[ "$phase" == round && -n "${SOTA_MAINTAINER_NOTE:-}" ]] && args+=("--maintainer-note=$SOTA_MAINTAINER_NOTE")
[[ -n "$timeout_minutes" ]] && args+=(--phase-timeout-minutes "$timeout_minutes")
[[ -n "$config" ]] && args+=(--config "$config")

# sota-bot enforces the phase timeout itself; this outer limit (10 minutes later)
# only catches a hung process.
limit=()
if [[ -n "$timeout_minutes" ]] && command -v timeout >/dev/null; then
  limit=(timeout --kill-after=60 "$((timeout_minutes + 10))m")
fi

echo "::group::sota-bot runner $phase${round:+ (round $round)}"
# A cancelled job gets SIGINT, then SIGTERM: pass them on to the phase, which stops every
# process it started and records where it was before it exits.
set +e
"${limit[@]}" "$bin" "${args[@]}" &
phase_pid=$!
trap 'kill -s INT "$phase_pid" 2>/dev/null' INT
trap 'kill -s TERM "$phase_pid" 2>/dev/null' TERM
while :; do
  wait "$phase_pid"
  rc=$?
  # A trapped signal ends `wait` early; the phase may still be stopping.
  kill -0 "$phase_pid" 2>/dev/null || break
done
trap - INT TERM
set -e
echo "::endgroup::"

if [[ -s "$summary_file" ]]; then
  cat "$summary_file" >>"$GITHUB_STEP_SUMMARY"
  printf '\n' >>"$GITHUB_STEP_SUMMARY"
else
  printf '### sota-bot %s%s\n\nThe phase wrote no summary (exit code %s).\n' \
    "$phase" "${round:+ $round}" "$rc" >>"$GITHUB_STEP_SUMMARY"
fi

if [[ "$rc" -eq 124 || "$rc" -eq 137 ]]; then
  die "sota-bot runner $phase did not stop within its timeout (exit $rc)"
fi
if [[ "$rc" -ne 0 ]]; then
  die "sota-bot runner $phase failed (exit $rc)"
fi
commit_sha="$(read_output "$GITHUB_OUTPUT" commit-sha)"
[[ "$commit_sha" =~ ^[0-9a-f]{40}$ ]] || die "sota-bot runner $phase succeeded but wrote no valid commit-sha output (got '$commit_sha')"
echo "phase commit: $commit_sha"
