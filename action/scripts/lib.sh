# shellcheck shell=bash
# Helpers shared by the sota-bot action's steps. Sourced, never executed.

# Prints an error annotation and exits.
die() {
  echo "::error title=sota-bot::$*" >&2
  exit 1
}

# Writes one step output; values with newlines use a random heredoc delimiter.
set_output() {
  local key="$1" value="$2" delim
  : "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set (not running under GitHub Actions?)}"
  if [[ "$value" == *$'\n'* ]]; then
    delim="sota_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    printf '%s<<%s\n%s\n%s\n' "$key" "$delim" "$value" "$delim" >>"$GITHUB_OUTPUT"
  else
    printf '%s=%s\n' "$key" "$value" >>"$GITHUB_OUTPUT"
  fi
}

# Reads the last value of KEY from a GITHUB_OUTPUT-format file (single-line form).
read_output() {
  local file="$1" key="$2"
  [[ -f "$file" ]] || return 0
  sed -n "s/^${key}=//p" "$file" | tail -n 1
}

# Splits a list of names separated by commas, spaces or newlines, one per line.
split_names() {
  printf '%s\n' "$1" | tr -s ', \t\r' '\n' | sed '/^$/d'
}

# True for a POSIX environment-variable name.
is_env_name() {
  [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]
}

# Runner-facing scratch directory for this action.
scratch_dir() {
  local dir="${RUNNER_TEMP:-/tmp}/sota-bot"
  mkdir -p "$dir"
  printf '%s\n' "$dir"
}
