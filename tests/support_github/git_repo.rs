//! The git side of a story repository: a real bare repository that the fake's branch,
//! contents, Git data and commits endpoints read and write, and that a runner clones and
//! pushes to, so what the App reads back is exactly what was committed.

use std::path::{Path, PathBuf};

use git2::build::TreeUpdateBuilder;
use git2::{FileMode, ObjectType, Oid, Repository, Signature};

/// One story repository's bare git repository.
#[derive(Debug, Clone)]
pub struct StoryGit {
    pub path: PathBuf,
}

fn sig() -> Signature<'static> {
    Signature::now("story", "story@example.invalid").unwrap()
}

impl StoryGit {
    /// A bare repository whose `branches` all point at one commit holding a README.
    pub fn init(path: &Path, branches: &[&str]) -> StoryGit {
        let repo = Repository::init_bare(path).unwrap();
        let blob = repo.blob(b"story repository\n").unwrap();
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("README.md", blob, 0o100644).unwrap();
        let tree = repo.find_tree(tb.write().unwrap()).unwrap();
        let commit = repo
            .commit(None, &sig(), &sig(), "initial commit", &tree, &[])
            .unwrap();
        for b in branches {
            repo.reference(&format!("refs/heads/{b}"), commit, true, "story")
                .unwrap();
        }
        repo.set_head("refs/heads/main").unwrap();
        StoryGit {
            path: path.to_path_buf(),
        }
    }

    fn open(&self) -> Repository {
        Repository::open_bare(&self.path).unwrap()
    }

    pub fn branches(&self) -> Vec<String> {
        let repo = self.open();
        let mut out: Vec<String> = repo
            .branches(Some(git2::BranchType::Local))
            .unwrap()
            .flatten()
            .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_string))
            .collect();
        out.sort();
        out
    }

    pub fn branch_head(&self, branch: &str) -> Option<String> {
        let repo = self.open();
        let r = repo.find_reference(&format!("refs/heads/{branch}")).ok()?;
        let id = r.peel_to_commit().ok()?.id();
        Some(id.to_string())
    }

    fn commit_of<'r>(repo: &'r Repository, rev: &str) -> Option<git2::Commit<'r>> {
        if let Ok(r) = repo.find_reference(&format!("refs/heads/{rev}")) {
            return r.peel_to_commit().ok();
        }
        let oid = Oid::from_str(rev).ok()?;
        repo.find_commit(oid).ok()
    }

    /// A file's bytes at a branch or commit.
    pub fn read(&self, rev: &str, path: &str) -> Option<Vec<u8>> {
        let repo = self.open();
        let commit = Self::commit_of(&repo, rev)?;
        let entry = commit.tree().ok()?.get_path(Path::new(path)).ok()?;
        if entry.kind() != Some(ObjectType::Blob) {
            return None;
        }
        let bytes = repo.find_blob(entry.id()).ok()?.content().to_vec();
        Some(bytes)
    }

    /// Whether `path` is a folder at a branch or commit.
    pub fn is_dir(&self, rev: &str, path: &str) -> bool {
        let repo = self.open();
        let Some(commit) = Self::commit_of(&repo, rev) else {
            return false;
        };
        let entry = commit
            .tree()
            .ok()
            .and_then(|t| t.get_path(Path::new(path)).ok());
        entry.is_some_and(|e| e.kind() == Some(ObjectType::Tree))
    }

    /// The tree of a commit.
    pub fn commit_tree(&self, sha: &str) -> Option<String> {
        let repo = self.open();
        let tree = Self::commit_of(&repo, sha)?.tree_id();
        Some(tree.to_string())
    }

    /// Every file of a commit (by branch or sha) or of a tree, recursively, as (path, blob
    /// sha, size), the way GitHub lists a tree with `recursive=1`.
    pub fn files(&self, rev: &str) -> Option<Vec<(String, String, usize)>> {
        let repo = self.open();
        let tree = match Self::commit_of(&repo, rev) {
            Some(c) => c.tree().ok()?,
            None => repo.find_tree(Oid::from_str(rev).ok()?).ok()?,
        };
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(ObjectType::Blob) {
                let size = repo.find_blob(entry.id()).map(|b| b.size()).unwrap_or(0);
                let name = entry.name().unwrap_or("");
                out.push((format!("{dir}{name}"), entry.id().to_string(), size));
            }
            git2::TreeWalkResult::Ok
        })
        .ok()?;
        Some(out)
    }

    /// A tree: `base` with these text files added or replaced.
    pub fn create_tree(&self, base: &str, files: &[(String, String)]) -> Option<String> {
        let repo = self.open();
        let base = repo.find_tree(Oid::from_str(base).ok()?).ok()?;
        let mut update = TreeUpdateBuilder::new();
        for (path, text) in files {
            let blob = repo.blob(text.as_bytes()).ok()?;
            update.upsert(path.as_str(), blob, FileMode::Blob);
        }
        Some(update.create_updated(&repo, &base).ok()?.to_string())
    }

    /// A commit object (no branch moves).
    pub fn create_commit(&self, message: &str, tree: &str, parents: &[String]) -> Option<String> {
        let repo = self.open();
        let tree = repo.find_tree(Oid::from_str(tree).ok()?).ok()?;
        let parents: Vec<git2::Commit<'_>> = parents
            .iter()
            .map(|p| repo.find_commit(Oid::from_str(p).ok()?).ok())
            .collect::<Option<_>>()?;
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let oid = repo
            .commit(None, &sig(), &sig(), message, &tree, &refs)
            .ok()?;
        Some(oid.to_string())
    }

    /// Creates `refs/heads/...`; `false` when it exists or the commit does not.
    pub fn create_ref(&self, name: &str, sha: &str) -> bool {
        let repo = self.open();
        let Ok(oid) = Oid::from_str(sha) else {
            return false;
        };
        repo.find_commit(oid).is_ok() && repo.reference(name, oid, false, "create").is_ok()
    }

    /// The newest commit on `branch`'s first-parent line that added or changed `path`.
    pub fn last_commit_touching(&self, branch: &str, path: &str) -> Option<String> {
        let repo = self.open();
        let mut c = Self::commit_of(&repo, branch)?;
        let blob_at = |c: &git2::Commit<'_>| {
            c.tree()
                .ok()
                .and_then(|t| t.get_path(Path::new(path)).ok().map(|e| e.id()))
        };
        loop {
            let now = blob_at(&c)?;
            match c.parent(0) {
                Ok(p) if blob_at(&p) == Some(now) => c = p,
                _ => return Some(c.id().to_string()),
            }
        }
    }

    /// Commits file changes (`None`: delete) onto `branch` as a maintainer would push them.
    pub fn commit_files(&self, branch: &str, files: &[(&str, Option<&str>)], message: &str) {
        let repo = self.open();
        let head = Self::commit_of(&repo, branch).expect("branch exists");
        let mut update = TreeUpdateBuilder::new();
        for (path, text) in files {
            match text {
                Some(t) => {
                    let blob = repo.blob(t.as_bytes()).unwrap();
                    update.upsert(*path, blob, FileMode::Blob);
                }
                None => {
                    update.remove(*path);
                }
            }
        }
        let tree = update.create_updated(&repo, &head.tree().unwrap()).unwrap();
        let tree = repo.find_tree(tree).unwrap();
        repo.commit(
            Some(&format!("refs/heads/{branch}")),
            &sig(),
            &sig(),
            message,
            &tree,
            &[&head],
        )
        .unwrap();
    }

    /// Subjects of `branch`'s commits, newest first.
    pub fn subjects(&self, branch: &str) -> Vec<String> {
        let repo = self.open();
        let mut out = Vec::new();
        let mut c = Self::commit_of(&repo, branch);
        while let Some(commit) = c {
            out.push(commit.summary().ok().flatten().unwrap_or("").to_string());
            c = commit.parent(0).ok();
        }
        out
    }
}
