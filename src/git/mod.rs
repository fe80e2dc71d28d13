//! Local git operations on the SGLang checkout (git2): campaign branch, commits, and the
//! facts the review gate reads (changed paths, tracked paths, added text, file at a commit).
//! Pushing (with compare-and-swap) lives in `push.rs`, owned by the runner/CI side.

pub mod push;

use crate::gate::ChangedText;
use git2::{BranchType, DiffOptions, IndexAddOption, Oid, Repository, Signature, StatusOptions};
use std::path::Path;

/// A git failure, with the operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("git {op}: {source}")]
pub struct GitError {
    pub op: String,
    #[source]
    pub source: git2::Error,
}

fn ctx<T>(op: &str, r: Result<T, git2::Error>) -> Result<T, GitError> {
    r.map_err(|source| GitError {
        op: op.to_string(),
        source,
    })
}

/// An open checkout.
pub struct Checkout {
    repo: Repository,
}

/// Largest file whose added text is scanned for secrets.
const MAX_SCAN_BYTES: usize = 2 * 1024 * 1024;

impl Checkout {
    /// Opens the repository at (or above) `path`.
    pub fn open(path: &Path) -> Result<Checkout, GitError> {
        Ok(Checkout {
            repo: ctx("open", Repository::discover(path))?,
        })
    }

    /// Working tree root.
    pub fn workdir(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// The checked-out branch name, `None` on a detached HEAD.
    pub fn current_branch(&self) -> Option<String> {
        let head = self.repo.head().ok()?;
        if head.is_branch() {
            head.shorthand().ok().map(str::to_string)
        } else {
            None
        }
    }

    /// HEAD's commit id.
    pub fn head_commit(&self) -> Result<String, GitError> {
        let head = ctx("read HEAD", self.repo.head())?;
        let c = ctx("peel HEAD", head.peel_to_commit())?;
        Ok(c.id().to_string())
    }

    /// Whether a local branch exists.
    pub fn branch_exists(&self, name: &str) -> bool {
        self.repo.find_branch(name, BranchType::Local).is_ok()
    }

    /// Creates `name` at HEAD (when missing) and checks it out.
    pub fn checkout_new_or_existing(&self, name: &str) -> Result<(), GitError> {
        if !self.branch_exists(name) {
            let head = ctx("read HEAD", self.repo.head())?;
            let commit = ctx("peel HEAD", head.peel_to_commit())?;
            ctx("create branch", self.repo.branch(name, &commit, false))?;
        }
        let refname = format!("refs/heads/{name}");
        let obj = ctx("resolve branch", self.repo.revparse_single(&refname))?;
        ctx(
            "checkout tree",
            self.repo
                .checkout_tree(&obj, Some(git2::build::CheckoutBuilder::new().safe())),
        )?;
        ctx("set HEAD", self.repo.set_head(&refname))
    }

    /// Paths with uncommitted changes (untracked included, ignored excluded).
    pub fn uncommitted_paths(&self) -> Result<Vec<String>, GitError> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false);
        let statuses = ctx("status", self.repo.statuses(Some(&mut opts)))?;
        Ok(statuses
            .iter()
            .filter_map(|s| s.path().ok().map(str::to_string))
            .collect())
    }

    /// Stages everything (honouring .gitignore) and commits on HEAD. Returns the new id, or
    /// HEAD's id when nothing changed and `allow_empty` is false.
    pub fn commit_all(&self, message: &str, allow_empty: bool) -> Result<String, GitError> {
        let mut index = ctx("open index", self.repo.index())?;
        ctx(
            "add",
            index.add_all(["*"].iter(), IndexAddOption::DEFAULT, None),
        )?;
        ctx("update index", index.update_all(["*"].iter(), None))?;
        ctx("write index", index.write())?;
        let tree_id = ctx("write tree", index.write_tree())?;
        let tree = ctx("find tree", self.repo.find_tree(tree_id))?;
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        if let Some(p) = &parent {
            if p.tree_id() == tree_id && !allow_empty {
                return Ok(p.id().to_string());
            }
        }
        let sig = ctx("signature", self.signature())?;
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = ctx(
            "commit",
            self.repo
                .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents),
        )?;
        Ok(id.to_string())
    }

    fn tree_of(&self, rev: &str) -> Result<git2::Tree<'_>, GitError> {
        let obj = ctx("resolve", self.repo.revparse_single(rev))?;
        ctx("peel tree", obj.peel_to_tree())
    }

    /// Stages everything (honouring .gitignore) and returns the staged tree id, so the gate
    /// can judge exactly what the round commit will hold before it is made.
    pub fn stage_all(&self) -> Result<String, GitError> {
        let mut index = ctx("open index", self.repo.index())?;
        ctx(
            "add",
            index.add_all(["*"].iter(), IndexAddOption::DEFAULT, None),
        )?;
        ctx("update index", index.update_all(["*"].iter(), None))?;
        ctx("write index", index.write())?;
        Ok(ctx("write tree", index.write_tree())?.to_string())
    }

    /// Paths changed between two commits (or trees).
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>, GitError> {
        let a = self.tree_of(from)?;
        let b = self.tree_of(to)?;
        let diff = ctx(
            "diff",
            self.repo
                .diff_tree_to_tree(Some(&a), Some(&b), Some(&mut DiffOptions::new())),
        )?;
        let mut out = Vec::new();
        for d in diff.deltas() {
            if let Some(p) = d.new_file().path().or_else(|| d.old_file().path()) {
                out.push(p.to_string_lossy().to_string());
            }
        }
        Ok(out)
    }

    /// Every path tracked at `rev`.
    pub fn tracked_paths(&self, rev: &str) -> Result<Vec<String>, GitError> {
        let tree = self.tree_of(rev)?;
        let mut out = Vec::new();
        ctx(
            "walk tree",
            tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
                if entry.kind() == Some(git2::ObjectType::Blob) {
                    out.push(format!("{dir}{}", entry.name().unwrap_or("")));
                }
                git2::TreeWalkResult::Ok
            }),
        )?;
        Ok(out)
    }

    /// A file's text at `rev`, `None` when absent or not UTF-8.
    pub fn read_at(&self, rev: &str, path: &str) -> Option<String> {
        let tree = self.tree_of(rev).ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        String::from_utf8(blob.content().to_vec()).ok()
    }

    /// The newest commit on HEAD's first-parent line that added or changed `path`: the
    /// commit that wrote a round's files, found from history because a commit cannot record
    /// its own id (and a replayed push gives it a new one).
    pub fn last_commit_touching(&self, path: &str) -> Option<String> {
        let head = self.repo.head().ok()?.peel_to_commit().ok()?;
        let blob_at = |c: &git2::Commit<'_>| {
            c.tree()
                .ok()
                .and_then(|t| t.get_path(Path::new(path)).ok().map(|e| e.id()))
        };
        let mut c = head;
        for _ in 0..100_000 {
            let now = blob_at(&c)?;
            match c.parent(0) {
                Ok(p) if blob_at(&p) == Some(now) => c = p,
                _ => return Some(c.id().to_string()),
            }
        }
        None
    }

    fn tree_diff(&self, from: &str, to: &str) -> Result<git2::Diff<'_>, GitError> {
        let a = self.tree_of(from)?;
        let b = self.tree_of(to)?;
        ctx(
            "diff",
            self.repo.diff_tree_to_tree(Some(&a), Some(&b), None),
        )
    }

    /// Text each changed file holds at `to` (new and modified files; binary and huge skipped).
    pub fn added_text(&self, from: &str, to: &str) -> Result<Vec<ChangedText>, GitError> {
        let diff = self.tree_diff(from, to)?;
        let mut out = Vec::new();
        for d in diff.deltas() {
            let nf = d.new_file();
            if nf.id().is_zero() {
                continue;
            }
            let Ok(blob) = self.repo.find_blob(nf.id()) else {
                continue;
            };
            if blob.is_binary() || blob.size() > MAX_SCAN_BYTES {
                continue;
            }
            if let (Some(p), Ok(text)) = (nf.path(), std::str::from_utf8(blob.content())) {
                out.push(ChangedText {
                    path: p.to_string_lossy().to_string(),
                    text: text.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// Messages of the commits on HEAD's first-parent line after `start` (oldest first):
    /// the commits an agent made during a round.
    pub fn messages_since(&self, start: &str) -> Result<Vec<String>, GitError> {
        let start = ctx("parse start", Oid::from_str(start))?;
        let head = ctx("read HEAD", self.repo.head())?;
        let mut c = ctx("peel HEAD", head.peel_to_commit())?;
        let mut out = Vec::new();
        while c.id() != start {
            out.push(c.message().unwrap_or("").trim().to_string());
            match c.parent(0) {
                Ok(p) => c = p,
                Err(_) => break,
            }
            if out.len() > 10_000 {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Moves the current branch to `rev`, keeping the index and working tree (`git reset
    /// --soft`): an agent's commits become uncommitted changes of the round.
    pub fn reset_soft(&self, rev: &str) -> Result<(), GitError> {
        let obj = ctx("resolve", self.repo.revparse_single(rev))?;
        ctx(
            "reset --soft",
            self.repo.reset(&obj, git2::ResetType::Soft, None),
        )
    }

    /// Puts `paths` back as they are at `rev`, in the index and the working tree; a path
    /// absent at `rev` is deleted.
    pub fn restore_paths(&self, rev: &str, paths: &[String]) -> Result<(), GitError> {
        if paths.is_empty() {
            return Ok(());
        }
        let tree = self.tree_of(rev)?;
        let workdir = self
            .repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut index = ctx("open index", self.repo.index())?;
        for p in paths {
            let full = workdir.join(p);
            match tree.get_path(Path::new(p)) {
                Ok(entry) => {
                    let blob = ctx("read blob", self.repo.find_blob(entry.id()))?;
                    if let Some(dir) = full.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let _ = std::fs::remove_file(&full);
                    std::fs::write(&full, blob.content()).map_err(|e| GitError {
                        op: format!("restore {p}"),
                        source: git2::Error::from_str(&e.to_string()),
                    })?;
                    ctx("stage restored path", index.add_path(Path::new(p)))?;
                }
                Err(_) => {
                    let _ = std::fs::remove_file(&full);
                    let _ = index.remove_path(Path::new(p));
                }
            }
        }
        ctx("write index", index.write())
    }

    /// A commit of `parent`'s tree with `paths` taken from the working tree (deleted where
    /// missing), made without moving any branch; `keep_ref` names a ref that keeps it. This
    /// is the SGLang source a round measures before its single round commit exists.
    pub fn snapshot_commit(
        &self,
        parent: &str,
        paths: &[String],
        message: &str,
        keep_ref: &str,
    ) -> Result<String, GitError> {
        let parent = ctx("resolve parent", self.repo.revparse_single(parent))?;
        let parent = ctx("peel parent", parent.peel_to_commit())?;
        let mut index = ctx("new index", git2::Index::new())?;
        ctx(
            "read tree",
            index.read_tree(&ctx("parent tree", parent.tree())?),
        )?;
        let workdir = self
            .repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for p in paths {
            let full = workdir.join(p);
            match std::fs::symlink_metadata(&full) {
                Ok(m) if m.is_file() => {
                    let bytes = std::fs::read(&full).map_err(|e| GitError {
                        op: format!("read {p}"),
                        source: git2::Error::from_str(&e.to_string()),
                    })?;
                    let oid = ctx("write blob", self.repo.blob(&bytes))?;
                    let mode =
                        if std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0 {
                            0o100755
                        } else {
                            0o100644
                        };
                    let entry = git2::IndexEntry {
                        ctime: git2::IndexTime::new(0, 0),
                        mtime: git2::IndexTime::new(0, 0),
                        dev: 0,
                        ino: 0,
                        mode,
                        uid: 0,
                        gid: 0,
                        file_size: bytes.len() as u32,
                        id: oid,
                        flags: 0,
                        flags_extended: 0,
                        path: p.as_bytes().to_vec(),
                    };
                    ctx("stage snapshot path", index.add(&entry))?;
                }
                _ => {
                    let _ = index.remove_path(Path::new(p));
                }
            }
        }
        let tree_id = ctx("write tree", index.write_tree_to(&self.repo))?;
        let tree = ctx("find tree", self.repo.find_tree(tree_id))?;
        let sig = ctx("signature", self.signature())?;
        let id = ctx(
            "commit snapshot",
            self.repo
                .commit(None, &sig, &sig, message, &tree, &[&parent]),
        )?;
        ctx(
            "keep snapshot",
            self.repo
                .reference(keep_ref, id, true, "sota-bot measured source"),
        )?;
        Ok(id.to_string())
    }

    fn signature(&self) -> Result<Signature<'static>, git2::Error> {
        // Like the git CLI: the environment's identity first, then the repository's config.
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (env("GIT_AUTHOR_NAME"), env("GIT_AUTHOR_EMAIL")) {
            (Some(name), Some(email)) => Signature::now(&name, &email),
            _ => self.repo.signature(),
        }
        .or_else(|_| Signature::now("sota-bot", "sota-bot@localhost"))
    }

    /// A unified diff between two commits (or trees), paths under `exclude` left out, cut at
    /// `max_chars` characters with a marker.
    pub fn diff_text(
        &self,
        from: &str,
        to: &str,
        exclude: &str,
        max_chars: usize,
    ) -> Result<String, GitError> {
        let diff = self.tree_diff(from, to)?;
        let mut out = String::new();
        let mut cut = false;
        ctx(
            "print diff",
            diff.print(git2::DiffFormat::Patch, |delta, _hunk, line| {
                let path = delta
                    .new_file()
                    .path()
                    .or_else(|| delta.old_file().path())
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !exclude.is_empty() && path.starts_with(exclude) {
                    return true;
                }
                if out.len() >= max_chars {
                    cut = true;
                    return true;
                }
                if matches!(line.origin(), '+' | '-' | ' ') {
                    out.push(line.origin());
                }
                out.push_str(&String::from_utf8_lossy(line.content()));
                true
            }),
        )?;
        if cut {
            let mut end = max_chars.min(out.len());
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            out.push_str("\n[diff cut]\n");
        }
        Ok(out)
    }

    /// Whether `ancestor` is reachable from `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        match (Oid::from_str(ancestor), Oid::from_str(descendant)) {
            (Ok(a), Ok(d)) => a == d || self.repo.graph_descendant_of(d, a).unwrap_or(false),
            _ => false,
        }
    }
}

/// The campaign branch name: `sota/<YYYYMMDD>-<model_slug>`.
pub fn campaign_branch(date: chrono::NaiveDate, model_slug: &str) -> String {
    format!("sota/{}-{}", date.format("%Y%m%d"), model_slug)
}

/// The date and model slug of a campaign branch name (the inverse of [`campaign_branch`]).
pub fn parse_campaign_branch(branch: &str) -> Option<(chrono::NaiveDate, String)> {
    let rest = branch.strip_prefix("sota/")?;
    let (date, slug) = rest.split_once('-')?;
    if date.len() != 8 || slug.is_empty() {
        return None;
    }
    let date = chrono::NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    Some((date, slug.to_string()))
}
