//! `sota-bot init`: installs the campaign workflows, the issue form and a commented
//! default configuration into a fork checkout.
//!
//! Idempotent: a second run reports "unchanged". The files and the rule for each are in
//! [`crate::setup::fork_files`]; this is the command around them.

use std::fs;
use std::path::{Path, PathBuf};

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK, EXIT_VERDICT};
use crate::setup::fork_files::{
    decide, managed_files, unified_diff, validate_action_ref, FileAction, TEMPLATE_ACTION_REF,
};

/// Arguments of `sota-bot init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Root of the fork's git checkout.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Replace files that were edited locally.
    #[arg(long)]
    pub force: bool,
    /// Show what would change without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// The sota-bot action the workflows use (`owner/repo/action@<sha or tag>`).
    #[arg(long, default_value = TEMPLATE_ACTION_REF)]
    pub action_ref: String,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<i32> {
    if let Err(err) = validate_action_ref(&args.action_ref) {
        eprintln!("error: {err}");
        return Ok(EXIT_INVALID_INPUT);
    }
    let root = match git2::Repository::open(&args.repo) {
        Ok(repo) => match repo.workdir() {
            Some(dir) => dir.to_path_buf(),
            None => {
                eprintln!(
                    "error: {} is a bare repository; init needs a checkout",
                    args.repo.display()
                );
                return Ok(EXIT_INVALID_INPUT);
            }
        },
        Err(err) => {
            eprintln!(
                "error: {} is not a git checkout: {}",
                args.repo.display(),
                err.message()
            );
            return Ok(EXIT_INVALID_INPUT);
        }
    };

    // Every path is checked before anything is written.
    for file in managed_files(&args.action_ref) {
        if let Err(err) = inside_checkout(&root, file.path) {
            eprintln!("error: {err}");
            return Ok(EXIT_INVALID_INPUT);
        }
    }
    let mut refused = 0;
    let mut counts: Vec<(FileAction, usize)> = Vec::new();
    for file in managed_files(&args.action_ref) {
        let target = root.join(file.path);
        let existing = match read_optional(&target) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("error: cannot read {}: {err}", target.display());
                return Ok(EXIT_FAILURE);
            }
        };
        let action = decide(existing.as_deref(), &file.content, args.force);
        match action {
            FileAction::RefuseEdited => {
                refused += 1;
                println!(
                    "{:<9} {} (edited locally; rerun with --force to replace it)",
                    action.label(),
                    file.path
                );
            }
            _ => println!("{:<9} {}", action.label(), file.path),
        }
        if let Some(old) = existing
            .as_deref()
            .filter(|_| action != FileAction::Unchanged)
        {
            print!("{}", unified_diff(file.path, old, &file.content));
        }
        if action.writes() && !args.dry_run {
            if let Err(err) = write_file(&target, &file.content) {
                eprintln!("error: cannot write {}: {err}", target.display());
                return Ok(EXIT_FAILURE);
            }
        }
        match counts.iter_mut().find(|(a, _)| *a == action) {
            Some((_, n)) => *n += 1,
            None => counts.push((action, 1)),
        }
    }
    print!("{}", fork_settings());
    let tally: Vec<String> = counts
        .iter()
        .map(|(a, n)| format!("{n} {}", a.label()))
        .collect();
    println!(
        "init: {}{}",
        tally.join(", "),
        if args.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    if refused > 0 {
        eprintln!(
            "init: {refused} locally edited file(s) kept; rerun with --force to replace them"
        );
        return Ok(EXIT_VERDICT);
    }
    Ok(EXIT_OK)
}

/// What the fork's owner must set on GitHub so that outside pull requests never reach the
/// GPU runners (the workflows alone cannot enforce it).
pub fn fork_settings() -> String {
    [
        "",
        "Before the first campaign, set on GitHub (outside pull requests must never reach the GPU runners):",
        "  1. Settings > Actions > General > Approval for running fork pull request workflows:",
        "     require approval for all outside collaborators.",
        "  2. A runner group for the GPU runners limited to this repository and to the workflows",
        "     .github/workflows/sota-baseline.yml and .github/workflows/sota-round.yml.",
        "  3. Register the runners with runner-setup/register-runner.sh: its job-started hook refuses",
        "     every job but a workflow_dispatch of those two workflows on this fork's sota/ branches.",
        "See the security section of sota-bot's README and runner-setup/README.md.",
        "",
    ]
    .join("\n")
}

/// Why a managed path may not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} resolves to {resolved}, outside the checkout {root}: refusing to write through a symlink")]
pub struct OutsideCheckout {
    pub path: String,
    pub resolved: String,
    pub root: String,
}

/// Checks that `rel` (and every folder on the way to it) stays inside `root` once symlinks
/// are resolved: a `.github` that links elsewhere must not make init write there.
pub fn inside_checkout(root: &Path, rel: &str) -> Result<(), OutsideCheckout> {
    let real_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut current = root.to_path_buf();
    for part in Path::new(rel).components() {
        current.push(part);
        let Ok(meta) = fs::symlink_metadata(&current) else {
            break; // not there yet: created by init, inside the checkout
        };
        if meta.file_type().is_symlink() {
            let resolved = current
                .canonicalize()
                .unwrap_or_else(|_| fs::read_link(&current).unwrap_or_else(|_| current.clone()));
            if !resolved.starts_with(&real_root) {
                return Err(OutsideCheckout {
                    path: current
                        .strip_prefix(root)
                        .unwrap_or(&current)
                        .display()
                        .to_string(),
                    resolved: resolved.display().to_string(),
                    root: real_root.display().to_string(),
                });
            }
        }
    }
    Ok(())
}

fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

fn write_file(path: &Path, content: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("sota-bot-init.tmp");
    fs::write(&tmp, content)?;
    fs::rename(&tmp, path)
}
