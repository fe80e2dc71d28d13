#!/usr/bin/env bash
# Runs shellcheck over every shell script sota-bot ships (action steps, runner setup,
# tools). Exits non-zero on any finding; 2 when shellcheck is not installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
command -v shellcheck >/dev/null || { echo "shellcheck-all: shellcheck is not installed" >&2; exit 2; }
dirs=()
for dir in action runner-setup tools tests/fixtures .ci scripts examples benches; do [[ -d "$dir" ]] && dirs+=("$dir"); done
mapfile -t scripts < <(find "${dirs[@]}" \( -name node_modules -o -path tools/python -o -path tools/tokenizers \) -prune -o -type f -name '*.sh' -print | sort)
# -x follows `source` of lib.sh; each script's directory resolves its lib.
status=0
for script in "${scripts[@]}"; do
  (cd "$(dirname "$script")" && shellcheck -x "$(basename "$script")") || status=1
done
echo "shellcheck-all: ${#scripts[@]} script(s) checked"
exit "$status"
