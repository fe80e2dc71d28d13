#!/usr/bin/env bash
# Builds sota-bot from the action's source with the locked dependency set.
# Output: bin (path of the built binary).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

source_dir="${SOTA_BOT_SOURCE_DIR:?SOTA_BOT_SOURCE_DIR is required}"
target_dir="${SOTA_BOT_TARGET_DIR:-$(scratch_dir)/target}"
command -v cargo >/dev/null || die "cargo is not installed on this runner; install Rust (runner-setup/check-host.sh reports it) or put a release binary in the tool cache"

echo "::group::cargo build --release --locked"
cargo build --release --locked --manifest-path "$source_dir/Cargo.toml" --target-dir "$target_dir" --bin sota-bot
echo "::endgroup::"
bin="$target_dir/release/sota-bot"
[[ -x "$bin" ]] || die "the build finished but $bin is missing"
set_output bin "$bin"
