# shellcheck shell=bash
# Shared helpers for the runner-setup scripts. Sourced, never executed.

SOTA_DRY_RUN="${SOTA_DRY_RUN:-0}"

log() { printf '%s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}
usage_error() {
  printf 'error: %s (see --help)\n' "$*" >&2
  exit 2
}

# Runs a command, or only prints it under --dry-run.
run() {
  if [[ "$SOTA_DRY_RUN" == 1 ]]; then
    printf 'dry-run: %s\n' "$(printf '%q ' "$@")" >&2
    return 0
  fi
  "$@"
}

# Writes stdin to FILE (mode MODE) only when the content differs; prints
# "unchanged", "created" or "updated". Under --dry-run prints what it would do.
write_if_changed() {
  local file="$1" mode="$2" tmp status
  tmp="$(mktemp)"
  cat >"$tmp"
  if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then
    status=unchanged
  elif [[ -f "$file" ]]; then
    status=updated
  else
    status=created
  fi
  if [[ "$status" != unchanged && "$SOTA_DRY_RUN" != 1 ]]; then
    mkdir -p "$(dirname "$file")"
    install -m "$mode" "$tmp" "$file"
  fi
  rm -f "$tmp"
  if [[ "$SOTA_DRY_RUN" == 1 && "$status" != unchanged ]]; then
    printf 'dry-run: would have %s %s\n' "$status" "$file"
  else
    printf '%s %s\n' "$status" "$file"
  fi
}

# The runner-label hardware slug of a GPU name, following SGLang CI's
# {count}-gpu-{hardware} labels. Same rule as hardware_slug() in
# src/runner/preflight.rs (a test keeps them in step):
#   "NVIDIA H100 80GB HBM3" -> h100, "NVIDIA GeForce RTX 5090" -> 5090,
#   "NVIDIA A100-SXM4-80GB" -> a100, "NVIDIA RTX PRO 6000 ..." -> pro6000.
hardware_slug() {
  local -a words
  read -r -a words <<<"$1"
  local prefix
  for prefix in nvidia tesla geforce quadro; do
    if [[ ${#words[@]} -gt 0 && "${words[0],,}" == "$prefix" ]]; then
      words=("${words[@]:1}")
    fi
  done
  if [[ ${#words[@]} -gt 1 && "${words[0],,}" == rtx ]]; then
    words=("${words[@]:1}")
  fi
  [[ ${#words[@]} -gt 0 ]] || return 1
  local slug="${words[0],,}"
  if [[ "$slug" == pro && ${#words[@]} -gt 1 ]]; then
    slug+="${words[1],,}"
  fi
  slug="${slug%%-*}"
  slug="${slug//[^a-z0-9]/}"
  [[ -n "$slug" ]] || return 1
  printf '%s\n' "$slug"
}

# Prints "index<TAB>name" for each GPU nvidia-smi reports, restricted to the
# comma-separated indices in $1 when given.
list_gpus() {
  local visible="${1:-}" out index name
  out="$(nvidia-smi --query-gpu=index,name --format=csv,noheader)" || die "nvidia-smi failed; is the NVIDIA driver installed?"
  while IFS=, read -r index name; do
    index="${index// /}"
    name="${name#"${name%%[![:space:]]*}"}"
    [[ -n "$index" ]] || continue
    if [[ -n "$visible" && ",${visible// /}," != *",$index,"* ]]; then
      continue
    fi
    printf '%s\t%s\n' "$index" "$name"
  done <<<"$out"
}

# Prints the runner labels (one per line) for the GPUs in $1 (comma-separated
# indices, empty for all): self-hosted and <count>-gpu-<hardware>.
derive_labels() {
  local visible="${1:-}" count=0 slug="" index name s
  while IFS=$'\t' read -r index name; do
    [[ -n "$index" ]] || continue
    s="$(hardware_slug "$name")" || die "cannot derive a hardware label from GPU name '$name'"
    if [[ -n "$slug" && "$s" != "$slug" ]]; then
      die "GPUs of different models ($slug, $s) in one runner; give --visible-devices a set of one model"
    fi
    slug="$s"
    count=$((count + 1))
  done < <(list_gpus "$visible")
  [[ "$count" -gt 0 ]] || die "no GPUs found${visible:+ among visible devices $visible}"
  printf 'self-hosted\n%s-gpu-%s\n' "$count" "$slug"
}

# Fails unless the option in $1 has a value in $2.
need_value() {
  [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || usage_error "$1 needs a value"
}

# Validates a comma-separated list of GPU indices (empty allowed).
check_visible_devices() {
  [[ -z "$1" || "$1" =~ ^[0-9]+(,[0-9]+)*$ ]] || usage_error "--visible-devices must look like 0 or 0,1,2 (got '$1')"
}
