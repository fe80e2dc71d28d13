#!/usr/bin/env bash
# Runs the whole demo: toy checkout + a complete local campaign on the simulator lane.
# Equivalent to `sota-bot local demo --dir DIR`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$(mktemp -d)/sglang}
"$here/make-toy-checkout.sh" "$dir" "$here/../sim/sglang.yaml"
sota-bot local run "$here/request.yaml" --checkout "$dir" --config "$here/config.yaml"
sota-bot local status "$dir"
