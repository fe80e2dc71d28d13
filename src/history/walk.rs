//! The history walk: every commit reachable from HEAD, newest first, reporting the commits
//! that change a followed file (following renames back in time) or whose subject names the
//! model family.
//!
//! Speed comes from never diffing whole trees: the followed files form a small path trie,
//! and a commit's *signature* (the blob id of every followed file) is computed from its
//! tree by descending only into the trie's folders, memoised per (trie folder, tree id).
//! Unchanged folders are shared between neighbouring commits, so each tree object on the
//! followed paths is read about once for the whole history.

use git2::{Commit, ObjectType, Oid, Repository, Sort};
use std::collections::HashMap;
use std::rc::Rc;

use super::family::Family;

/// The PR number a commit subject carries: the last `(#N)` (GitHub's squash merges), else
/// `Merge pull request #N` (merge commits).
pub fn pr_in_subject(subject: &str) -> Option<u64> {
    let mut found = None;
    let mut rest = subject;
    while let Some(i) = rest.find("(#") {
        let tail = &rest[i + 2..];
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && tail[digits.len()..].starts_with(')') {
            found = digits.parse().ok();
        }
        rest = tail;
    }
    if found.is_some() {
        return found;
    }
    let tail = subject.strip_prefix("Merge pull request #")?;
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// How a followed file changed in a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Removed,
}

/// One commit the walk reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedCommit {
    pub oid: Oid,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    pub subject: String,
    pub pr: Option<u64>,
    /// Followed files it changed, as named at this commit, with how.
    pub changes: Vec<(String, Change)>,
    /// Renames into a followed file: (old path, new path).
    pub renames: Vec<(String, String)>,
    pub names_family: bool,
    pub merge: bool,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Reported commits, newest first.
    pub commits: Vec<WalkedCommit>,
    /// Commits read.
    pub total: usize,
    /// Every PR number found in a subject, with its commit (for verifying other citations).
    pub pr_commits: HashMap<u64, Oid>,
}

/// A failed git read.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct WalkError {
    pub context: String,
    #[source]
    pub source: git2::Error,
}

fn ctx(context: &str) -> impl FnOnce(git2::Error) -> WalkError + '_ {
    move |source| WalkError {
        context: context.to_string(),
        source,
    }
}

/// The followed paths as a trie. Leaves are files; a folder's leaves are numbered
/// contiguously, so its signature is one slice of the commit signature.
#[derive(Debug, Default)]
struct Trie {
    nodes: Vec<Node>,
    /// Leaf index -> path.
    leaves: Vec<String>,
}

#[derive(Debug, Default)]
struct Node {
    children: Vec<(String, usize)>,
    leaf: Option<usize>,
    /// Leaves under this node: `first_leaf .. first_leaf + n_leaves`.
    first_leaf: usize,
    n_leaves: usize,
}

impl Trie {
    fn build(paths: &[String]) -> Trie {
        let mut t = Trie {
            nodes: vec![Node::default()],
            leaves: Vec::new(),
        };
        let mut sorted: Vec<&String> = paths.iter().collect();
        sorted.sort();
        sorted.dedup();
        for p in sorted {
            let mut cur = 0;
            for part in p.split('/').filter(|s| !s.is_empty()) {
                let found = t.nodes[cur]
                    .children
                    .iter()
                    .find(|(n, _)| n == part)
                    .map(|(_, i)| *i);
                cur = match found {
                    Some(i) => i,
                    None => {
                        t.nodes.push(Node::default());
                        let i = t.nodes.len() - 1;
                        t.nodes[cur].children.push((part.to_string(), i));
                        i
                    }
                };
            }
            if cur != 0 && t.nodes[cur].leaf.is_none() {
                t.nodes[cur].leaf = Some(usize::MAX);
            }
        }
        t.number(0, "");
        t
    }

    /// Numbers leaves depth-first and records each node's leaf range.
    fn number(&mut self, node: usize, path: &str) {
        self.nodes[node].first_leaf = self.leaves.len();
        if self.nodes[node].leaf.is_some() {
            self.nodes[node].leaf = Some(self.leaves.len());
            self.leaves.push(path.to_string());
        }
        let children = self.nodes[node].children.clone();
        for (name, child) in children {
            let p = if path.is_empty() {
                name
            } else {
                format!("{path}/{name}")
            };
            self.number(child, &p);
        }
        self.nodes[node].n_leaves = self.leaves.len() - self.nodes[node].first_leaf;
    }
}

type Sig = Rc<Vec<Option<Oid>>>;

/// Computes commit signatures with memoised folder signatures.
struct Signer<'r> {
    repo: &'r Repository,
    trie: Trie,
    memo: HashMap<(usize, Oid), Sig>,
}

impl<'r> Signer<'r> {
    /// Blob ids of every followed file under `node`, whose tree is `tree_id`.
    fn folder(&mut self, node: usize, tree_id: Oid) -> Result<Sig, WalkError> {
        if let Some(s) = self.memo.get(&(node, tree_id)) {
            return Ok(s.clone());
        }
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(ctx("reading a tree"))?;
        let n = &self.trie.nodes[node];
        let mut sig = vec![None; n.n_leaves];
        let base = n.first_leaf;
        let children = n.children.clone();
        for (name, child) in children {
            let Some(entry) = tree.get_name(&name) else {
                continue;
            };
            let (id, kind) = (entry.id(), entry.kind());
            let c = &self.trie.nodes[child];
            if let (Some(leaf), Some(ObjectType::Blob)) = (c.leaf, kind) {
                sig[leaf - base] = Some(id);
            }
            if !c.children.is_empty() && kind == Some(ObjectType::Tree) {
                let (first, len) = (c.first_leaf, c.n_leaves);
                let sub = self.folder(child, id)?;
                let off = first - base;
                for (k, v) in sub.iter().enumerate().take(len) {
                    if v.is_some() {
                        sig[off + k] = *v;
                    }
                }
            }
        }
        let sig = Rc::new(sig);
        self.memo.insert((node, tree_id), sig.clone());
        Ok(sig)
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<Sig, WalkError> {
        self.folder(0, c.tree_id())
    }

    fn follow(&mut self, extra: &[String]) {
        let mut paths = self.trie.leaves.clone();
        paths.extend(extra.iter().cloned());
        self.trie = Trie::build(&paths);
        self.memo.clear();
    }
}

/// Where `new_path` came from in `commit` (a rename from the first parent), if anywhere.
fn rename_source(
    repo: &Repository,
    parent: &Commit<'_>,
    commit: &Commit<'_>,
    new_paths: &[String],
) -> Result<Vec<(String, String)>, WalkError> {
    let old = parent.tree().map_err(ctx("reading a parent tree"))?;
    let new = commit.tree().map_err(ctx("reading a tree"))?;
    let mut diff = repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .map_err(ctx("diffing a commit for renames"))?;
    let mut opts = git2::DiffFindOptions::new();
    opts.renames(true);
    diff.find_similar(Some(&mut opts))
        .map_err(ctx("finding renames"))?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        if d.status() != git2::Delta::Renamed {
            continue;
        }
        let (Some(from), Some(to)) = (d.old_file().path(), d.new_file().path()) else {
            continue;
        };
        let to = to.to_string_lossy().to_string();
        if new_paths.contains(&to) {
            out.push((from.to_string_lossy().to_string(), to));
        }
    }
    Ok(out)
}

/// Walks every commit reachable from `head`, following `paths` (as named at `head`) and
/// reporting commits that change them or whose subject names `family`.
pub fn walk(
    repo: &Repository,
    head: Oid,
    paths: &[String],
    family: &Family,
) -> Result<Walked, WalkError> {
    let mut signer = Signer {
        repo,
        trie: Trie::build(paths),
        memo: HashMap::new(),
    };
    let mut rw = repo.revwalk().map_err(ctx("starting the history walk"))?;
    rw.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .map_err(ctx("sorting the history walk"))?;
    rw.push(head).map_err(ctx("starting from HEAD"))?;
    let mut out = Walked::default();
    for oid in rw {
        let oid = oid.map_err(ctx("walking the history"))?;
        let c = repo.find_commit(oid).map_err(ctx("reading a commit"))?;
        out.total += 1;
        let subject = String::from_utf8_lossy(c.summary_bytes().unwrap_or_default()).to_string();
        let pr = pr_in_subject(&subject);
        if let Some(n) = pr {
            out.pr_commits.entry(n).or_insert(oid);
        }
        let names_family = family.named_in(&subject);
        let parent = if c.parent_count() > 0 {
            Some(c.parent(0).map_err(ctx("reading a parent commit"))?)
        } else {
            None
        };
        let mut changes = Vec::new();
        let mut renames = Vec::new();
        let same_tree = parent.as_ref().is_some_and(|p| p.tree_id() == c.tree_id());
        if !signer.trie.leaves.is_empty() && !same_tree {
            let now = signer.commit(&c)?;
            let before = match &parent {
                Some(p) => signer.commit(p)?,
                None => Rc::new(vec![None; now.len()]),
            };
            let mut added = Vec::new();
            for (i, (a, b)) in before.iter().zip(now.iter()).enumerate() {
                if a == b {
                    continue;
                }
                let path = signer.trie.leaves[i].clone();
                let change = match (a, b) {
                    (None, Some(_)) => Change::Added,
                    (Some(_), None) => Change::Removed,
                    _ => Change::Modified,
                };
                if change == Change::Added {
                    added.push(path.clone());
                }
                changes.push((path, change));
            }
            if let (Some(p), false) = (&parent, added.is_empty()) {
                renames = rename_source(repo, p, &c, &added)?;
                let new_old: Vec<String> = renames
                    .iter()
                    .map(|(from, _)| from.clone())
                    .filter(|from| !signer.trie.leaves.contains(from))
                    .collect();
                if !new_old.is_empty() {
                    signer.follow(&new_old);
                }
            }
        }
        if !changes.is_empty() || names_family {
            out.commits.push(WalkedCommit {
                oid,
                time: c.time().seconds(),
                subject,
                pr,
                changes,
                renames,
                names_family,
                merge: c.parent_count() > 1,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pr_numbers_from_subjects() {
        assert_eq!(pr_in_subject("Fix rope (#1234)"), Some(1234));
        assert_eq!(
            pr_in_subject("Revert \"Fix rope (#1234)\" (#1300)"),
            Some(1300)
        );
        assert_eq!(pr_in_subject("Merge pull request #77 from a/b"), Some(77));
        assert_eq!(pr_in_subject("Fix #12 in attention"), None);
        assert_eq!(pr_in_subject("(#) odd (#x)"), None);
    }

    #[test]
    fn trie_numbers_leaves_contiguously() {
        let t = Trie::build(&[
            "a/b/c.py".to_string(),
            "a/d.py".to_string(),
            "a/b/e.py".to_string(),
        ]);
        assert_eq!(t.leaves.len(), 3);
        let a = t.nodes[0].children[0].1;
        assert_eq!(t.nodes[a].n_leaves, 3);
        for (i, p) in t.leaves.iter().enumerate() {
            assert!(p.starts_with("a/"), "{i} {p}");
        }
    }

    proptest! {
        #[test]
        fn pr_parse_never_panics(s in ".*") {
            let _ = pr_in_subject(&s);
        }
    }
}
