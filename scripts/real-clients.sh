#!/usr/bin/env bash
# Runs vLLM's real benchmark client (vLLM 0.34.0 from PyPI, about 6 GB with PyTorch, so not
# part of CI) on the command `sota-bot bench candidates` prints for a native plan, against
# `sota-bot sim serve` with Llama-3's tokenizer, parses its result into a row and checks the
# measured token counts against the plan and the simulator's request log. Also checks that
# the committed vLLM help fixtures are what the installed release prints.
#
#   bash scripts/real-clients.sh            installs vLLM under tools/python/vllm if missing
#   VLLM_BIN=/path/to/venv/bin bash ...     uses an existing installation instead
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash tools/install-python-tools.sh
cargo build --quiet
bot="$root/target/debug/sota-bot"
tokenizer="$root/tools/tokenizers/llama3"

vllm_bin=${VLLM_BIN:-$root/tools/python/vllm/bin}
if [ ! -x "$vllm_bin/vllm" ]; then
  echo "==> installing vLLM 0.34.0 into tools/python/vllm (CPU only; several GB)"
  python3 -m venv tools/python/vllm
  tools/python/vllm/bin/pip install --quiet --no-deps vllm==0.34.0
  # Its CUDA-only kernels and multimedia packages are left out; the CLI needs the rest.
  tools/python/vllm/bin/python - > /tmp/vllm-reqs.txt <<'PY'
import re
from importlib.metadata import requires
gpu_only = {"flashinfer-python", "pynvvideocodec", "tilelang", "nvidia-cudnn-frontend", "nvtx",
            "fastsafetensors", "instanttensor", "nvidia-cutlass-dsl", "quack-kernels",
            "tokenspeed-mla", "humming-kernels", "torchaudio", "torchvision", "torchcodec",
            "apache-tvm-ffi", "numba", "depyf", "mistral_common", "opencv-python-headless"}
for r in requires("vllm"):
    if "extra ==" in r or re.split(r"[<>=!;\[ ]", r)[0].lower() in gpu_only:
        continue
    print(r)
PY
  tools/python/vllm/bin/pip install --quiet -r /tmp/vllm-reqs.txt
  vllm_bin=$root/tools/python/vllm/bin
fi
export VLLM_TARGET_DEVICE=cpu HF_HUB_OFFLINE=1 PATH="$vllm_bin:$PATH"

work=$(mktemp -d)
trap 'kill "${sim_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "==> vLLM $(vllm --version 2>/dev/null | tail -n 1): help fixtures"
flags() { grep -oE -- '--[A-Za-z0-9][A-Za-z0-9_.-]*' "$1" | sed 's/[.-]*$//' | sort -u; }
vllm serve --help=all > "$work/server.txt" 2>/dev/null
vllm bench serve --help=all > "$work/bench.txt" 2>/dev/null
diff <(flags "$work/server.txt") <(flags tests/fixtures/help/vllm-server.txt)
diff <(flags "$work/bench.txt") <(flags tests/fixtures/help/vllm-bench.txt)
echo "    vllm serve and vllm bench serve document the flags of the committed fixtures"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bot" sim serve --framework vllm --profile builtin:vllm --model m --port "$port" \
  --time-scale 0.01 --tokenizer "$tokenizer" --request-log "$work/requests.jsonl" \
  > "$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

cat > "$work/plan.yaml" <<EOF
model: m
tokenizer: $tokenizer
port: $port
bench_client: native
seed: 5
scenarios:
  - {name: chat, input_len: 1000, output_len: 64, num_prompts: 16}
frameworks:
  vllm:
    benchmark_flags: {max_concurrency: 8}
EOF
command=$("$bot" bench candidates --format json "$work/plan.yaml" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["launches"][0]["candidates"][0]["benchmark_command"])')
echo "==> running as printed by bench candidates:"
echo "    $command"
(cd "$work" && eval "$command" > client.log 2>&1) || { tail -20 "$work/client.log"; exit 1; }
"$bot" bench parse --framework vllm --model m --candidate-id vllm-00 --scenario chat \
  --num-prompts 16 --input-len 1000 --output-len 64 --out "$work/row.jsonl" "$work/vllm-00__chat.json"

python3 - "$work/row.jsonl" "$work/requests.jsonl" <<'PY'
import json, sys
row = json.loads(open(sys.argv[1]).readline())
w = row["workload"]
sent = [json.loads(l) for l in open(sys.argv[2])]
print(f"    row: status {row['status']}, input p50/min/max {w['input_len_p50']}/{w['input_len_min']}/{w['input_len_max']}, "
      f"output p50/min/max {w['output_len_p50']}/{w['output_len_min']}/{w['output_len_max']} ({w['token_counts']})")
engine = sorted({r["prompt_tokens"] for r in sent})
print(f"    the engine counted prompts of {engine} tokens; sampling sent: "
      f"temperature {sorted({r['temperature'] for r in sent})}, ignore_eos {sorted({r['ignore_eos'] for r in sent})}, "
      f"generated {sorted({r['generated'] for r in sent})}")
assert row["status"] == "ok"
assert w["input_len_min"] == w["input_len_max"] == 1000, w
assert w["output_len_min"] == w["output_len_max"] == 64, w
assert all(r["temperature"] == 0.0 and r["ignore_eos"] for r in sent)
assert all(abs(r["prompt_tokens"] - 1000) <= 10 for r in sent), engine
print("    OK: vLLM's client measured exactly the planned lengths, greedy, EOS ignored")
PY
