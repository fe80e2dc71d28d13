//! The files `sota-bot init` installs in a fork (the campaign workflows, the issue form and a
//! commented default configuration) and the rule for each one already there. `doctor` checks
//! a fork against the same list.
//!
//! Each installed file starts with a marker line carrying a hash of the rest of the file, so
//! init can tell an untouched older copy (safe to update) from a locally edited one (kept
//! unless `--force`).

use sha2::{Digest, Sha256};

/// The action reference written in the workflow templates; `--action-ref` replaces it.
pub const TEMPLATE_ACTION_REF: &str = "sota-bot/sota-bot/action@v0.1.0";

const BASELINE_WORKFLOW: &str = include_str!("../../templates/workflows/sota-baseline.yml");
const ROUND_WORKFLOW: &str = include_str!("../../templates/workflows/sota-round.yml");
const ISSUE_FORM: &str = include_str!("../../.github/ISSUE_TEMPLATE/sota-request.yml");
const DEFAULT_CONFIG: &str = include_str!("../../templates/init/sota-bot.yml");

const MARKER_PREFIX: &str = "# Installed by `sota-bot init` (sha256:";

/// One file `init` manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFile {
    /// Path relative to the repository root.
    pub path: &'static str,
    /// Full content to install, marker line included.
    pub content: String,
}

/// What `init` does (or would do) to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    Create,
    Unchanged,
    /// An untouched copy from an older sota-bot: replaced.
    Update,
    /// Edited locally and `--force` not given: left alone.
    RefuseEdited,
    /// Edited locally and replaced because of `--force`.
    ForceReplace,
}

impl FileAction {
    /// The word `init` prints for the action.
    pub fn label(self) -> &'static str {
        match self {
            FileAction::Create => "created",
            FileAction::Unchanged => "unchanged",
            FileAction::Update => "updated",
            FileAction::RefuseEdited => "refused",
            FileAction::ForceReplace => "replaced",
        }
    }

    /// Whether the action writes the file.
    pub fn writes(self) -> bool {
        matches!(
            self,
            FileAction::Create | FileAction::Update | FileAction::ForceReplace
        )
    }
}

fn short_hash(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    hex::encode(digest).chars().take(16).collect()
}

/// Prefixes `body` with the marker line that records its hash.
pub fn with_marker(body: &str) -> String {
    format!(
        "{MARKER_PREFIX}{}). Edits are kept: init replaces an edited file only with --force.\n{body}",
        short_hash(body)
    )
}

/// True when `existing` carries a marker whose hash matches the rest of the file,
/// i.e. nobody edited it since sota-bot installed it.
pub fn is_pristine(existing: &str) -> bool {
    let Some(rest) = existing.strip_prefix(MARKER_PREFIX) else {
        return false;
    };
    let Some((first_line, body)) = rest.split_once('\n') else {
        return false;
    };
    let Some((hash, _)) = first_line.split_once(')') else {
        return false;
    };
    hash == short_hash(body)
}

/// Pure decision for one file.
pub fn decide(existing: Option<&str>, desired: &str, force: bool) -> FileAction {
    match existing {
        None => FileAction::Create,
        Some(current) if current == desired => FileAction::Unchanged,
        Some(current) if is_pristine(current) => FileAction::Update,
        Some(_) if force => FileAction::ForceReplace,
        Some(_) => FileAction::RefuseEdited,
    }
}

/// Why an `--action-ref` was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--action-ref {0:?} is not of the form owner/repo/path@ref or ./local/path")]
pub struct ActionRefError(pub String);

/// Checks an action reference as `uses:` accepts it: path segments are plain names (never
/// `.` or `..`, so a reference cannot climb out of the action's repository or the
/// checkout), the ref a plain git ref name.
pub fn validate_action_ref(action_ref: &str) -> Result<(), ActionRefError> {
    let segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let path_ok = |p: &str| p.split('/').all(segment);
    let ref_ok = |r: &str| {
        !r.is_empty()
            && !r.starts_with(['-', '.', '/'])
            && !r.ends_with(['/', '.'])
            && !r.contains("..")
            && !r.contains("//")
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    let valid = if let Some(local) = action_ref.strip_prefix("./") {
        path_ok(local)
    } else if let Some((path, git_ref)) = action_ref.split_once('@') {
        path.split('/').count() >= 2 && path_ok(path) && ref_ok(git_ref)
    } else {
        false
    };
    if valid {
        Ok(())
    } else {
        Err(ActionRefError(action_ref.to_string()))
    }
}

/// The files `init` installs, rendered for `action_ref`.
pub fn managed_files(action_ref: &str) -> Vec<ManagedFile> {
    let workflow = |text: &str| with_marker(&text.replace(TEMPLATE_ACTION_REF, action_ref));
    vec![
        ManagedFile {
            path: ".github/workflows/sota-baseline.yml",
            content: workflow(BASELINE_WORKFLOW),
        },
        ManagedFile {
            path: ".github/workflows/sota-round.yml",
            content: workflow(ROUND_WORKFLOW),
        },
        ManagedFile {
            path: ".github/ISSUE_TEMPLATE/sota-request.yml",
            content: with_marker(ISSUE_FORM),
        },
        ManagedFile {
            path: ".github/sota-bot.yml",
            content: with_marker(DEFAULT_CONFIG),
        },
    ]
}

/// A unified diff from `old` to `new` for `path`.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn marker_detects_edits() {
        let installed = with_marker("a: 1\n");
        assert!(is_pristine(&installed));
        assert!(!is_pristine(&installed.replace("a: 1", "a: 2")));
        assert!(!is_pristine("a: 1\n"));
    }

    #[test]
    fn decisions() {
        let new = with_marker("v: 2\n");
        let old = with_marker("v: 1\n");
        assert_eq!(decide(None, &new, false), FileAction::Create);
        assert_eq!(decide(Some(&new), &new, false), FileAction::Unchanged);
        assert_eq!(decide(Some(&old), &new, false), FileAction::Update);
        let edited = old.replace("v: 1", "v: 9");
        assert_eq!(decide(Some(&edited), &new, false), FileAction::RefuseEdited);
        assert_eq!(decide(Some(&edited), &new, true), FileAction::ForceReplace);
    }

    #[test]
    fn templates_carry_the_replaceable_action_ref() {
        assert!(BASELINE_WORKFLOW.contains(TEMPLATE_ACTION_REF));
        assert!(ROUND_WORKFLOW.contains(TEMPLATE_ACTION_REF));
        let files = managed_files("acme/sota-bot/action@0123456789abcdef0123456789abcdef01234567");
        assert!(files[0]
            .content
            .contains("acme/sota-bot/action@0123456789abcdef"));
        assert!(!files[1].content.contains(TEMPLATE_ACTION_REF));
    }

    #[test]
    fn action_refs() {
        assert!(validate_action_ref("owner/repo/action@v1").is_ok());
        assert!(validate_action_ref("./action").is_ok());
        assert!(validate_action_ref("owner@v1").is_err());
        assert!(validate_action_ref("owner/repo@").is_err());
        assert!(validate_action_ref("o/r@v1; rm -rf /").is_err());
        for climbing in [
            "../../x@y",
            "owner/../x@v1",
            "owner/repo/./action@v1",
            "./../outside",
            "./a/../../b",
            "owner/repo@../v1",
            "owner/repo@-v1",
            "owner//repo@v1",
        ] {
            assert!(validate_action_ref(climbing).is_err(), "{climbing}");
        }
        assert!(validate_action_ref("owner/repo/action@release/v1.2").is_ok());
    }

    proptest! {
        #[test]
        fn marker_parsing_never_panics(text in "\\PC*") {
            let _ = is_pristine(&text);
            let _ = is_pristine(&format!("{MARKER_PREFIX}{text}"));
            let _ = validate_action_ref(&text);
        }

        #[test]
        fn accepted_refs_never_climb(text in "[a-z./@-]{0,24}") {
            if validate_action_ref(&text).is_ok() {
                // `./` only marks a local action; nothing after it may climb.
                let rest = text.strip_prefix("./").unwrap_or(&text);
                prop_assert!(!rest.split(['/', '@']).any(|s| s == ".." || s == "."), "{text}");
            }
        }
    }
}
