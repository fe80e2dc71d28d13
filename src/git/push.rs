//! Compare-and-swap push of a run commit to the campaign branch.
//!
//! A round's result is one commit on the PR branch. Humans (or the App) may push to
//! that branch while a round runs, so the runner must never overwrite what it did not
//! see: it pushes only when the remote head is the one it started from, with a
//! refspec that is **not forced**. When the remote moved, the run commit is replayed
//! onto the new head, but only when the run commit touches nothing but the run
//! directory and the new remote commits touch none of the same files; anything else
//! is a clear error for a human to resolve.
//!
//! Against GitHub (https/ssh), `receive-pack` checks the old value of the ref
//! atomically. libgit2's local transport (plain paths, `file://`) only checks on the
//! client side before updating the ref, so two pushes in the very same instant to a
//! local bare repository are not serialised by the remote; the post-push verification
//! below still reports a lost race as an error rather than as success.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Component, Path};

use git2::{
    build::CheckoutBuilder, Commit, Cred, ErrorCode, FetchOptions, Oid, PushOptions,
    RemoteCallbacks, Repository, Sort, StatusOptions, Tree,
};

/// Private namespace for the refs this module fetches into, so a user's
/// remote-tracking branches are never touched.
const FETCH_NAMESPACE: &str = "refs/sota-bot/fetched";

/// What to push where.
#[derive(Debug, Clone)]
pub struct CasPush<'a> {
    /// A configured remote name (`origin`) or a URL/path.
    pub remote: &'a str,
    /// Campaign branch name, without `refs/heads/`.
    pub branch: &'a str,
    /// The commit to publish (normally the phase's one commit).
    pub local_commit: Oid,
    /// The remote head the run started from; `None` when the branch must not exist yet.
    pub expected_remote_head: Option<Oid>,
    /// Run directory relative to the repository root (`runs/20260101_x_sota_humanize`).
    pub run_dir: &'a Path,
    /// How many fetch-compare-push rounds to try before giving up.
    pub max_attempts: u32,
    /// Token for https remotes (`x-access-token` basic auth); never logged.
    pub token: Option<&'a str>,
    /// Local branch to move to the published commit after a rebase (checked out
    /// files are updated when it is the current branch and the work tree is clean).
    pub local_branch: Option<&'a str>,
}

/// A successful publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The commit now at the head of the remote branch.
    pub commit: Oid,
    /// Set when the run commit had to be replayed onto a newer remote head.
    pub rebased_onto: Option<Oid>,
    /// Fetch-compare-push rounds used.
    pub attempts: u32,
}

/// Why a push did not happen. Every variant leaves the remote untouched.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("git failed while {context}: {source}")]
    Git {
        context: String,
        #[source]
        source: git2::Error,
    },
    #[error("remote branch {branch} does not exist any more (expected head {expected})")]
    RemoteBranchMissing { branch: String, expected: Oid },
    #[error("remote branch {branch} was rewritten: expected head {expected} is not an ancestor of the remote head {found}; refusing to push over it")]
    RemoteRewritten {
        branch: String,
        expected: Oid,
        found: Oid,
    },
    #[error("run commit {commit} cannot be rebased: it touches paths outside the run directory {run_dir}: {paths}")]
    OutsideRunDir {
        commit: Oid,
        run_dir: String,
        paths: String,
    },
    #[error("run commit cannot be rebased onto {remote_head}: the new remote commits change the same files: {paths}")]
    Overlap { remote_head: Oid, paths: String },
    #[error("run commit {commit} cannot be rebased: it is a merge commit")]
    MergeCommit { commit: Oid },
    #[error("replaying {commit} onto {onto} produced conflicts")]
    MergeConflict { commit: Oid, onto: Oid },
    #[error(
        "push of {commit} to {branch} rejected {attempts} times: the remote branch kept moving"
    )]
    RetriesExhausted {
        commit: Oid,
        branch: String,
        attempts: u32,
    },
    #[error(
        "pushed {commit} to {branch} but the remote head is {found:?}: another push won the race"
    )]
    LostRace {
        commit: Oid,
        branch: String,
        found: Option<Oid>,
    },
}

fn git_err(context: impl Into<String>) -> impl FnOnce(git2::Error) -> PushError {
    let context = context.into();
    move |source| PushError::Git { context, source }
}

/// True when `path` is the run directory or lies inside it (component-wise).
pub fn is_inside(path: &Path, run_dir: &Path) -> bool {
    let clean = |p: &Path| -> Vec<String> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    let dir = clean(run_dir);
    !dir.is_empty() && clean(path).starts_with(&dir)
}

/// Why a replay is refused, decided from path lists alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebaseRefusal {
    /// The run commit changes files outside the run directory.
    OutsideRunDir(Vec<String>),
    /// Both sides change these files.
    Overlap(Vec<String>),
}

/// Pure rule for replaying a run commit: every local path inside `run_dir`, and no
/// path changed on both sides.
pub fn check_rebase(
    local_paths: &BTreeSet<String>,
    remote_paths: &BTreeSet<String>,
    run_dir: &Path,
) -> Result<(), RebaseRefusal> {
    let outside: Vec<String> = local_paths
        .iter()
        .filter(|p| !is_inside(Path::new(p), run_dir))
        .cloned()
        .collect();
    if !outside.is_empty() {
        return Err(RebaseRefusal::OutsideRunDir(outside));
    }
    let overlap: Vec<String> = local_paths.intersection(remote_paths).cloned().collect();
    if !overlap.is_empty() {
        return Err(RebaseRefusal::Overlap(overlap));
    }
    Ok(())
}

fn callbacks(token: Option<&str>) -> RemoteCallbacks<'_> {
    let mut cbs = RemoteCallbacks::new();
    let mut tries = 0u32;
    cbs.credentials(move |_url, username, allowed| {
        tries += 1;
        if tries > 2 {
            return Err(git2::Error::from_str(
                "authentication failed for the campaign remote",
            ));
        }
        match token {
            Some(token) if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) => {
                Cred::userpass_plaintext("x-access-token", token)
            }
            _ if allowed.contains(git2::CredentialType::SSH_KEY) => {
                Cred::ssh_key_from_agent(username.unwrap_or("git"))
            }
            _ => Cred::default(),
        }
    });
    cbs
}

fn open_remote<'r>(repo: &'r Repository, remote: &str) -> Result<git2::Remote<'r>, PushError> {
    match repo.find_remote(remote) {
        Ok(r) => Ok(r),
        Err(_) => repo
            .remote_anonymous(remote)
            .map_err(git_err(format!("opening remote {remote}"))),
    }
}

/// Fetches the remote branch into a private ref and returns its head (`None` when the
/// branch does not exist on the remote).
pub fn fetch_remote_head(
    repo: &Repository,
    remote: &str,
    branch: &str,
    token: Option<&str>,
) -> Result<Option<Oid>, PushError> {
    let private = format!("{FETCH_NAMESPACE}/{branch}");
    if let Ok(mut stale) = repo.find_reference(&private) {
        stale
            .delete()
            .map_err(git_err(format!("clearing {private}")))?;
    }
    let mut r = open_remote(repo, remote)?;
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks(token));
    opts.download_tags(git2::AutotagOption::None);
    let refspec = format!("+refs/heads/{branch}:{private}");
    r.fetch(&[refspec.as_str()], Some(&mut opts), None)
        .map_err(git_err(format!("fetching {branch} from {remote}")))?;
    match repo.refname_to_id(&private) {
        Ok(oid) => Ok(Some(oid)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(git_err(format!("reading {private}"))(e)),
    }
}

fn changed_paths(
    repo: &Repository,
    old: Option<&Tree>,
    new: &Tree,
) -> Result<BTreeSet<String>, PushError> {
    let diff = repo
        .diff_tree_to_tree(old, Some(new), None)
        .map_err(git_err("diffing trees"))?;
    let mut paths = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path() {
                paths.insert(p.to_string_lossy().into_owned());
            }
        }
    }
    Ok(paths)
}

/// The local commits to replay (oldest first) and the paths they change.
fn local_commits<'r>(
    repo: &'r Repository,
    tip: Oid,
    base: Option<Oid>,
) -> Result<Vec<Commit<'r>>, PushError> {
    let mut walk = repo.revwalk().map_err(git_err("walking run commits"))?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
        .map_err(git_err("walking run commits"))?;
    walk.push(tip).map_err(git_err("walking run commits"))?;
    if let Some(base) = base {
        walk.hide(base).map_err(git_err("walking run commits"))?;
    }
    let mut out = Vec::new();
    for oid in walk {
        let oid = oid.map_err(git_err("walking run commits"))?;
        out.push(
            repo.find_commit(oid)
                .map_err(git_err("reading a run commit"))?,
        );
    }
    Ok(out)
}

/// Replays the commits between the merge base and `tip` onto `onto`, after checking
/// the run-directory and no-overlap rules. Returns the new tip.
pub fn rebase_run_commit(
    repo: &Repository,
    tip: Oid,
    onto: Oid,
    run_dir: &Path,
) -> Result<Oid, PushError> {
    let base = match repo.merge_base(tip, onto) {
        Ok(b) => Some(b),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(git_err("finding the merge base")(e)),
    };
    let commits = local_commits(repo, tip, base)?;
    let mut local_paths = BTreeSet::new();
    for c in &commits {
        if c.parent_count() > 1 {
            return Err(PushError::MergeCommit { commit: c.id() });
        }
        let parent_tree = match c.parent(0) {
            Ok(p) => Some(p.tree().map_err(git_err("reading a parent tree"))?),
            Err(_) => None,
        };
        let tree = c.tree().map_err(git_err("reading a run tree"))?;
        local_paths.extend(changed_paths(repo, parent_tree.as_ref(), &tree)?);
    }
    let onto_commit = repo
        .find_commit(onto)
        .map_err(git_err("reading the remote head"))?;
    let onto_tree = onto_commit
        .tree()
        .map_err(git_err("reading the remote tree"))?;
    let base_tree = match base {
        Some(b) => Some(
            repo.find_commit(b)
                .and_then(|c| c.tree())
                .map_err(git_err("reading the merge-base tree"))?,
        ),
        None => None,
    };
    let remote_paths = changed_paths(repo, base_tree.as_ref(), &onto_tree)?;
    check_rebase(&local_paths, &remote_paths, run_dir).map_err(|refusal| match refusal {
        RebaseRefusal::OutsideRunDir(paths) => PushError::OutsideRunDir {
            commit: tip,
            run_dir: run_dir.display().to_string(),
            paths: paths.join(", "),
        },
        RebaseRefusal::Overlap(paths) => PushError::Overlap {
            remote_head: onto,
            paths: paths.join(", "),
        },
    })?;

    let mut parent = onto_commit;
    for c in &commits {
        let ancestor = match c.parent(0) {
            Ok(p) => p.tree().map_err(git_err("reading a parent tree"))?,
            Err(_) => repo
                .treebuilder(None)
                .and_then(|b| b.write())
                .and_then(|id| repo.find_tree(id))
                .map_err(git_err("building an empty tree"))?,
        };
        let ours = parent
            .tree()
            .map_err(git_err("reading the new parent tree"))?;
        let theirs = c.tree().map_err(git_err("reading a run tree"))?;
        let mut index = repo
            .merge_trees(&ancestor, &ours, &theirs, None)
            .map_err(git_err("replaying a run commit"))?;
        if index.has_conflicts() {
            return Err(PushError::MergeConflict {
                commit: c.id(),
                onto: parent.id(),
            });
        }
        let tree_id = index
            .write_tree_to(repo)
            .map_err(git_err("writing the replayed tree"))?;
        let tree = repo
            .find_tree(tree_id)
            .map_err(git_err("reading the replayed tree"))?;
        let message = String::from_utf8_lossy(c.message_bytes()).into_owned();
        let new_id = repo
            .commit(
                None,
                &c.author(),
                &c.committer(),
                &message,
                &tree,
                &[&parent],
            )
            .map_err(git_err("writing the replayed commit"))?;
        parent = repo
            .find_commit(new_id)
            .map_err(git_err("reading the replayed commit"))?;
    }
    Ok(parent.id())
}

/// Pushes `commit` to `refs/heads/<branch>` without force. `Ok(false)` means the remote
/// refused because its head is not an ancestor of `commit` (someone else pushed).
fn push_no_force(
    repo: &Repository,
    remote: &str,
    branch: &str,
    commit: Oid,
    token: Option<&str>,
) -> Result<bool, PushError> {
    let mut r = open_remote(repo, remote)?;
    let rejection: RefCell<Option<String>> = RefCell::new(None);
    let mut cbs = callbacks(token);
    cbs.push_update_reference(|_refname, status| {
        if let Some(msg) = status {
            *rejection.borrow_mut() = Some(msg.to_string());
        }
        Ok(())
    });
    let mut opts = PushOptions::new();
    opts.remote_callbacks(cbs);
    // No leading '+': a forced refspec is never used.
    let refspec = format!("{commit}:refs/heads/{branch}");
    match r.push(&[refspec.as_str()], Some(&mut opts)) {
        Ok(()) => {}
        Err(e) if e.code() == ErrorCode::NotFastForward => return Ok(false),
        Err(e) => return Err(git_err(format!("pushing {commit} to {branch}"))(e)),
    }
    drop(opts);
    match rejection.into_inner() {
        None => Ok(true),
        Some(msg) if is_race_message(&msg) => Ok(false),
        Some(msg) => Err(PushError::Git {
            context: format!("pushing {commit} to {branch}"),
            source: git2::Error::from_str(&format!("remote rejected the update: {msg}")),
        }),
    }
}

/// Server-side rejection texts that mean "the ref moved under you".
fn is_race_message(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    // "failed to update ref" is what receive-pack reports when the old-value check of
    // its ref transaction fails; a retry re-fetches and decides again.
    [
        "non-fast-forward",
        "fetch first",
        "stale info",
        "failed to lock",
        "cannot lock",
        "incorrect old value",
        "failed to update ref",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

fn advance_local_branch(repo: &Repository, branch: &str, commit: Oid) -> Result<(), PushError> {
    let refname = format!("refs/heads/{branch}");
    let is_head = repo
        .head()
        .ok()
        .and_then(|h| h.name().ok().map(|n| n == refname))
        .unwrap_or(false);
    if is_head && !repo.is_bare() {
        let mut opts = StatusOptions::new();
        opts.include_untracked(false).include_ignored(false);
        let clean = repo
            .statuses(Some(&mut opts))
            .map_err(git_err("reading work-tree status"))?
            .is_empty();
        if !clean {
            // Leave a dirty work tree alone; the branch still moves below only if not HEAD.
            return Ok(());
        }
        let target = repo
            .find_object(commit, None)
            .map_err(git_err("reading the pushed commit"))?;
        repo.checkout_tree(&target, Some(CheckoutBuilder::new().force()))
            .map_err(git_err("checking out the pushed commit"))?;
    }
    repo.reference(&refname, commit, true, "sota-bot: published run commit")
        .map_err(git_err(format!("moving {refname}")))?;
    Ok(())
}

/// Publishes the run commit with compare-and-swap semantics (see the module docs).
pub fn push_with_cas(repo: &Repository, req: &CasPush<'_>) -> Result<PushOutcome, PushError> {
    let mut expected = req.expected_remote_head;
    let mut commit = req.local_commit;
    let mut rebased_onto = None;
    let attempts = req.max_attempts.max(1);
    for attempt in 1..=attempts {
        let head = fetch_remote_head(repo, req.remote, req.branch, req.token)?;
        if head != expected {
            let Some(found) = head else {
                // `head != expected` with `head == None` means `expected` is set.
                return Err(PushError::RemoteBranchMissing {
                    branch: req.branch.to_string(),
                    expected: expected.unwrap_or(Oid::ZERO_SHA1),
                });
            };
            if let Some(exp) = expected {
                let descends = found == exp
                    || repo
                        .graph_descendant_of(found, exp)
                        .map_err(git_err("comparing remote history"))?;
                if !descends {
                    return Err(PushError::RemoteRewritten {
                        branch: req.branch.to_string(),
                        expected: exp,
                        found,
                    });
                }
            }
            if found == commit
                || repo
                    .graph_descendant_of(found, commit)
                    .map_err(git_err("comparing remote history"))?
            {
                // Our commit is already published (a retried job).
                return Ok(PushOutcome {
                    commit: found,
                    rebased_onto,
                    attempts: attempt,
                });
            }
            tracing::info!(branch = req.branch, %found, "remote branch moved; replaying the run commit");
            commit = rebase_run_commit(repo, commit, found, req.run_dir)?;
            rebased_onto = Some(found);
            expected = Some(found);
        }
        if !push_no_force(repo, req.remote, req.branch, commit, req.token)? {
            tracing::info!(
                branch = req.branch,
                attempt,
                "push rejected as stale; fetching again"
            );
            continue;
        }
        let now = fetch_remote_head(repo, req.remote, req.branch, req.token)?;
        let published = match now {
            Some(h) => {
                h == commit
                    || repo
                        .graph_descendant_of(h, commit)
                        .map_err(git_err("verifying the push"))?
            }
            None => false,
        };
        if !published {
            return Err(PushError::LostRace {
                commit,
                branch: req.branch.to_string(),
                found: now,
            });
        }
        if let Some(local) = req.local_branch {
            advance_local_branch(repo, local, commit)?;
        }
        return Ok(PushOutcome {
            commit,
            rebased_onto,
            attempts: attempt,
        });
    }
    Err(PushError::RetriesExhausted {
        commit,
        branch: req.branch.to_string(),
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn inside_is_component_wise() {
        let run = Path::new("runs/r1");
        assert!(is_inside(Path::new("runs/r1/manifest.md"), run));
        assert!(is_inside(Path::new("runs/r1"), run));
        assert!(!is_inside(Path::new("runs/r10/manifest.md"), run));
        assert!(!is_inside(Path::new("python/sglang/x.py"), run));
        assert!(!is_inside(Path::new("anything"), Path::new("")));
    }

    #[test]
    fn rebase_rules() {
        let run = Path::new("runs/r1");
        assert_eq!(
            check_rebase(&set(&["runs/r1/a.md"]), &set(&["README.md"]), run),
            Ok(())
        );
        assert_eq!(
            check_rebase(&set(&["runs/r1/a.md", "src/x.py"]), &set(&[]), run),
            Err(RebaseRefusal::OutsideRunDir(vec!["src/x.py".into()]))
        );
        assert_eq!(
            check_rebase(&set(&["runs/r1/a.md"]), &set(&["runs/r1/a.md", "b"]), run),
            Err(RebaseRefusal::Overlap(vec!["runs/r1/a.md".into()]))
        );
    }

    #[test]
    fn race_messages() {
        assert!(is_race_message("non-fast-forward"));
        assert!(is_race_message("failed to update ref"));
        assert!(is_race_message(
            "cannot lock ref 'refs/heads/x': is at abc but expected def"
        ));
        assert!(!is_race_message("protected branch hook declined"));
    }

    proptest! {
        #[test]
        fn path_rules_never_panic(a in "\\PC{0,30}", b in "\\PC{0,30}") {
            let _ = is_inside(Path::new(&a), Path::new(&b));
            let _ = check_rebase(&set(&[a.as_str()]), &set(&[b.as_str()]), Path::new(&b));
        }
    }
}
