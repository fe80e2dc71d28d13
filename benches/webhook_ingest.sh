#!/usr/bin/env bash
# Webhook ingest benchmark: sota-bot vs a Probot app on this machine, in the same run, with the
# same signed payloads (real examples from @octokit/webhooks-examples), concurrency and log level.
# Prints deliveries/s, p50/p99 latency to the 2xx, peak RSS, and the ratios: the median of
# ROUNDS rounds, each measuring both servers (and the ceiling) one after the other.
# Env: REQUESTS (default 20000), CONCURRENCY (64), WARMUP (2000), ROUNDS (3), SOTA_TOOLS_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${SOTA_TOOLS_DIR:-$ROOT/tools/node_modules}
REQUESTS=${REQUESTS:-20000}
CONCURRENCY=${CONCURRENCY:-64}
WARMUP=${WARMUP:-2000}
ROUNDS=${ROUNDS:-3}
SECRET=bench-secret
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ -x "$TOOLS/.bin/probot" ] || { echo "probot not found under $TOOLS (npm install in tools/)" >&2; exit 1; }
cd "$ROOT"
exe_of() { python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"; }
# SOTA_BENCH_PROFILE=dev runs a quick smoke check of the script with debug builds (no valid numbers).
if [ "${SOTA_BENCH_PROFILE:-release}" = dev ]; then
  echo "WARNING: debug builds: smoke check only, not a benchmark" >&2
  SOTA_BIN=$(cargo build --quiet --bin sota-bot --message-format=json | exe_of sota-bot)
  LOAD_BIN=$(cargo build --quiet --bench webhook_ingest --message-format=json | exe_of webhook_ingest)
else
  SOTA_BIN=$(cargo build --release --quiet --bin sota-bot --message-format=json | exe_of sota-bot)
  LOAD_BIN=$(cargo bench --quiet --bench webhook_ingest --no-run --message-format=json | exe_of webhook_ingest)
fi
load() { "$LOAD_BIN" "$@"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 600); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

openssl genrsa -traditional -out "$WORK/key.pem" 2048 2>/dev/null
NODE_PATH="$TOOLS" node -e '
const ex = require("@octokit/webhooks-examples");
const pick = (name, action) => ex.find(e => e.name === name).examples.find(p => p.action === action && p.installation);
const out = [["issue_comment","created"],["issues","opened"],["pull_request","opened"],["workflow_run","completed"],["workflow_job","completed"]]
  .map(([n,a]) => ({event: n, body: pick(n,a) || ex.find(e => e.name === n).examples.find(p => p.action === a)}));
require("fs").writeFileSync(process.argv[1], JSON.stringify(out));
' "$WORK/payloads.json"

SOTA_PORT=$(free_port)
# --no-workers: the ingest path (verify, durably queue, answer) is what is compared with
# Probot's verify-and-answer; with no GitHub reachable, workers would only spin on failing
# jobs and contend for the database, which a real deployment does not see at this rate.
SOTA_BOT_WEBHOOK_SECRETS=$SECRET SOTA_BOT_LOG=info "$SOTA_BIN" serve --no-workers \
  --app-id 1 --private-key-path "$WORK/key.pem" --database "$WORK/bot.sqlite" \
  --listen "127.0.0.1:$SOTA_PORT" --github-api-url http://127.0.0.1:9 2>"$WORK/sota.log" &
SOTA_PID=$!; PIDS+=("$SOTA_PID")

PROBOT_PORT=$(free_port)
APP_ID=1 PRIVATE_KEY_PATH="$WORK/key.pem" WEBHOOK_SECRET=$SECRET PORT=$PROBOT_PORT HOST=127.0.0.1 \
  WEBHOOK_PATH=/webhook LOG_LEVEL=info LOG_FORMAT=json NODE_ENV=production \
  "$TOOLS/.bin/probot" run "$ROOT/benches/probot/app.mjs" >"$WORK/probot.log" 2>&1 &
PROBOT_PID=$!; PIDS+=("$PROBOT_PID")

wait_port "$SOTA_PORT"; wait_port "$PROBOT_PORT"

run_one() { # name port round
  load --url "http://127.0.0.1:$2/webhook" --secret $SECRET --payloads "$WORK/payloads.json" \
       --requests "$WARMUP" --concurrency "$CONCURRENCY" --prefix "warm-$1-$3" >/dev/null
  load --url "http://127.0.0.1:$2/webhook" --secret $SECRET --payloads "$WORK/payloads.json" \
       --requests "$REQUESTS" --concurrency "$CONCURRENCY" --prefix "run-$1-$3"
}
SOTA_RUNS=(); PROBOT_RUNS=(); CEILING_RUNS=()
for round in $(seq 1 "$ROUNDS"); do
  SOTA_RUNS+=("$(run_one sota "$SOTA_PORT" "$round")")
  # Context: the same load against sota-bot with a wrong secret, so every delivery stops
  # after the HMAC check (401, nothing parsed or stored): what HTTP and signature checking
  # alone cost on this machine, the load generator included.
  CEILING_RUNS+=("$(load --url "http://127.0.0.1:$SOTA_PORT/webhook" --secret not-the-secret \
    --payloads "$WORK/payloads.json" --requests "$REQUESTS" --concurrency "$CONCURRENCY" --prefix "ceiling-$round")")
  PROBOT_RUNS+=("$(run_one probot "$PROBOT_PORT" "$round")")
done
SOTA_RSS=$(peak_rss_mb "$SOTA_PID"); PROBOT_RSS=$(peak_rss_mb "$PROBOT_PID")
QUEUED=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from jobs").fetchone()[0])' "$WORK/bot.sqlite")
runs_json() { printf '%s\n' "$@" | python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in sys.stdin if l.strip()]))'; }

python3 - "$(runs_json "${SOTA_RUNS[@]}")" "$(runs_json "${PROBOT_RUNS[@]}")" "$SOTA_RSS" "$PROBOT_RSS" \
  "$QUEUED" "$(((REQUESTS + WARMUP) * ROUNDS))" "$(runs_json "${CEILING_RUNS[@]}")" <<'PY'
import json, statistics, sys
sota, probot, ceiling_runs = (json.loads(sys.argv[i]) for i in (1, 2, 7))
med = lambda runs, key: statistics.median(r[key] for r in runs)
span = lambda values: f"{min(values):.1f}-{max(values):.1f}"
first = sota[0]
print(f"webhook ingest: {first['requests']} signed deliveries per round, {len(sota)} round(s), "
      f"{first['concurrency']} concurrent connections, loopback; medians over the rounds")
print(f"{'server':<10} {'ok':>7} {'errors':>7} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>12}")
for name, runs, rss in (("sota-bot", sota, sys.argv[3]), ("probot", probot, sys.argv[4])):
    ok, errors = sum(r["ok"] for r in runs), sum(r["errors"] for r in runs)
    print(f"{name:<10} {ok:>7} {errors:>7} {med(runs, 'per_second'):>13.0f} "
          f"{med(runs, 'p50_ms'):>8.2f} {med(runs, 'p99_ms'):>8.2f} {rss:>12}")
ratios = [s["per_second"] / p["per_second"] for s, p in zip(sota, probot)]
p99_ratios = [p["p99_ms"] / s["p99_ms"] for s, p in zip(sota, probot)]
print(f"throughput ratio sota-bot/probot: {statistics.median(ratios):.1f}x (rounds {span(ratios)}x); "
      f"p99 ratio probot/sota-bot: {statistics.median(p99_ratios):.1f}x")
print(f"durably queued by sota-bot: {sys.argv[5]} of {sys.argv[6]} sent (each committed before its 2xx)")
ceilings = [c["requests"] / c["seconds"] for c in ceiling_runs]
ceiling_ratios = [c / p["per_second"] for c, p in zip(ceilings, probot)]
print(f"ceiling on this machine (sota-bot answering 401 after the HMAC check, load generator on the same cores): "
      f"{statistics.median(ceilings):.0f} requests/s = {statistics.median(ceiling_ratios):.1f}x probot "
      f"(rounds {span(ceiling_ratios)}x)")
PY
