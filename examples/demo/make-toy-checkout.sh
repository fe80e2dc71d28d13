#!/usr/bin/env bash
# Creates a toy "SGLang checkout": a git repo holding the simulated engine profile
# (sim/engine.yaml, which the scripted agent patches), a registered model file and its layer,
# and a three-commit history with PR numbers in the subjects (what the history phase reads).
# The same checkout as `sota-bot local demo` builds.
set -euo pipefail
dir=${1:?usage: make-toy-checkout.sh DIR SGLANG_PROFILE}
profile=${2:?usage: make-toy-checkout.sh DIR SGLANG_PROFILE}
mkdir -p "$dir/sim" "$dir/python/sglang/srt/layers" "$dir/python/sglang/srt/managers" \
  "$dir/python/sglang/srt/models"
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
cat > "$dir/python/sglang/srt/models/llama.py" <<'PY'
"""Toy SGLang model: Llama (served by the simulator)."""

from sglang.srt.layers.layernorm import rms_norm


class LlamaForCausalLM:
    norm = staticmethod(rms_norm)


EntryClass = LlamaForCausalLM
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
git commit -q -m "Add the toy SGLang checkout (#101)"
cat > python/sglang/srt/layers/layernorm.py <<'PY'
"""Toy SGLang layer: RMSNorm (the simulated engine profile models its cost)."""


def rms_norm(x, weight, eps=1e-6):
    scale = (sum(v * v for v in x) / len(x) + eps) ** -0.5
    return [v * scale * w for v, w in zip(x, weight)]
PY
git commit -qam "[Llama] fold the RMSNorm scale into one pass (#117)"
cat > python/sglang/srt/managers/scheduler.py <<'PY'
"""Toy SGLang scheduler: picks the next batch."""


def get_next_batch(waiting, max_running, cap=256):
    return waiting[: min(max_running, cap)]
PY
git commit -qam "Scheduler: cap the decode batch size (#123)"
echo "$dir"
