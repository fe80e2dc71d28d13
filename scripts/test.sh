#!/usr/bin/env bash
# Runs every check sota-bot's CI runs: installs the external test tools it needs
# (GitHub's OpenAPI description + Prism, GitHub's example webhook payloads, workflow
# linters, the Claude Code and Codex CLIs, shellcheck, systemd-analyze, Chromium and
# playwright-core, hadolint, Llama-3's tokenizer and the pinned SGLang release's client and
# parsers), then formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# Debian packages the checks run: shellcheck, systemd-analyze (verifies the service unit
# in deploy/systemd/), and Chromium for the dashboard's browser tests (driven headless by
# playwright-core from tools/).
apt_missing=()
command -v shellcheck >/dev/null 2>&1 || apt_missing+=(shellcheck)
command -v systemd-analyze >/dev/null 2>&1 || apt_missing+=(systemd)
[ -x "${SOTA_CHROMIUM:-/usr/bin/chromium}" ] || apt_missing+=(chromium)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${apt_missing[*]} (apt)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  else
    echo "missing: ${apt_missing[*]} (install them, e.g. apt-get install ${apt_missing[*]})" >&2
    exit 1
  fi
fi

if [ ! -d tools/node_modules/@stoplight/prism-cli ] || [ ! -d tools/node_modules/@octokit/openapi ] ||
  [ ! -x tools/node_modules/.bin/claude ] || [ ! -x tools/node_modules/.bin/codex ] ||
  [ ! -d tools/node_modules/playwright-core ]; then
  log "installing test tools (npm ci in tools/)"
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi

log "installing the Python-side tools (Llama-3 tokenizer, SGLang client and parsers, hadolint)"
bash tools/install-python-tools.sh

export SOTA_REQUIRE_TOOLS=1
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

log "cargo test"
cargo test --lib --bins --tests --locked

log "lint workflows, action, runner scripts and the Dockerfile"
node tools/lint-workflows.mjs
bash tools/shellcheck-all.sh
tools/python/hadolint/bin/hadolint Dockerfile
