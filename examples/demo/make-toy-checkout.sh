#!/usr/bin/env bash
# Creates a toy "SGLang checkout": a git repo holding the simulated engine profile
# (sim/engine.yaml, which the scripted agent patches) and a few python files.
set -euo pipefail
dir=${1:?usage: make-toy-checkout.sh DIR SGLANG_PROFILE}
profile=${2:?usage: make-toy-checkout.sh DIR SGLANG_PROFILE}
mkdir -p "$dir/sim" "$dir/python/sglang/srt/layers" "$dir/python/sglang/srt/managers"
cp "$profile" "$dir/sim/engine.yaml"
cat > "$dir/python/sglang/srt/layers/layernorm.py" <<'PY'
"""Toy SGLang layer: RMSNorm (the simulated engine profile models its cost)."""


def rms_norm(x, weight, eps=1e-6):
    mean_sq = sum(v * v for v in x) / len(x)
    scale = (mean_sq + eps) ** -0.5
    return [v * scale * w for v, w in zip(x, weight)]
PY
cat > "$dir/python/sglang/srt/managers/scheduler.py" <<'PY'
"""Toy SGLang scheduler: picks the next batch."""


def get_next_batch(waiting, max_running):
    return waiting[:max_running]
PY
cat > "$dir/README.md" <<'MD'
# Toy SGLang checkout (sota-bot demo)

`sim/engine.yaml` is a SIMULATED engine profile: the sota-bot simulator serves requests at
the speed it describes, and the scripted agent patches it.
MD
cd "$dir"
git init -q -b main
git config user.email "demo@sota-bot.local"
git config user.name "sota-bot demo"
git add -A
git commit -q -m "toy sglang checkout"
echo "$dir"
