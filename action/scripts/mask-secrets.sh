#!/usr/bin/env bash
# Masks the value of every environment variable named in SOTA_SECRET_NAMES, so a
# secret the agent echoes (or that a framework logs) never reaches the job log.
# Only names travel through inputs; values come from the job's env/secrets.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

names="${SOTA_SECRET_NAMES:-}"
# The runner's own secrets are not repository secrets, so GitHub does not mask them: mask
# them here too when the runner has them (HF_TOKEN lives in the runner's environment).
runner_names=(HF_TOKEN HUGGING_FACE_HUB_TOKEN HUGGINGFACE_TOKEN)
masked=0
missing=()
while IFS= read -r name; do
  is_env_name "$name" || die "agent-secret-names: '$name' is not an environment variable name"
  value="${!name:-}"
  if [[ -z "$value" ]]; then
    [[ " ${runner_names[*]} " == *" $name "* ]] || missing+=("$name")
    continue
  fi
  # A multi-line secret is masked line by line (a mask matches within one line).
  while IFS= read -r line; do
    [[ -n "$line" ]] && printf '::add-mask::%s\n' "$line"
  done <<<"$value"
  masked=$((masked + 1))
done < <(split_names "$names"; printf '%s\n' "${runner_names[@]}")

for name in "${missing[@]}"; do
  echo "::warning title=sota-bot::secret $name is not set in the job environment; map it from repository secrets in the workflow's env"
done
echo "masked $masked secret(s)"
