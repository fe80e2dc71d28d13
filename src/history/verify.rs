//! Every citation checked against the checkout before it is written: a cited commit exists,
//! each path cited with it exists at that commit (a removed path at its first parent), and
//! a PR number appears in that commit's subject or comes from GitHub's API. What fails is
//! dropped and said in a blocker; nothing is cited otherwise.

use git2::{Oid, Repository};
use std::collections::{BTreeSet, HashMap};

use super::knowledge::KnowledgeText;
use super::notes::{CitedCommit, CitedPr, KnowledgeFile, UpstreamPr};
use super::walk::pr_in_subject;

fn exists_at(commit: &git2::Commit<'_>, path: &str) -> bool {
    commit
        .tree()
        .ok()
        .is_some_and(|t| t.get_path(std::path::Path::new(path)).is_ok())
}

/// Checks each commit's citations; returns the commits that keep something to cite, with
/// a sentence for everything dropped.
pub fn verify_commits(
    repo: &Repository,
    commits: Vec<CitedCommit>,
) -> (Vec<CitedCommit>, Vec<String>) {
    let mut kept = Vec::with_capacity(commits.len());
    let mut dropped = Vec::new();
    for mut c in commits {
        let Some(commit) = Oid::from_str(&c.sha)
            .ok()
            .and_then(|oid| repo.find_commit(oid).ok())
        else {
            dropped.push(format!(
                "commit `{}` is not in this checkout: not cited",
                c.sha
            ));
            continue;
        };
        let subject =
            String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).to_string();
        if subject != c.subject {
            dropped.push(format!(
                "commit `{}`: its subject is `{subject}`, not `{}`: the checkout's subject is cited",
                short(&c.sha),
                c.subject
            ));
            c.subject = subject.clone();
        }
        if let Some(pr) = c.pr {
            if pr_in_subject(&subject) != Some(pr) {
                dropped.push(format!(
                    "commit `{}` does not carry #{pr} in its subject: PR not cited",
                    short(&c.sha)
                ));
                c.pr = None;
            }
        }
        let (ok, bad): (Vec<String>, Vec<String>) =
            c.paths.into_iter().partition(|p| exists_at(&commit, p));
        for p in bad {
            dropped.push(format!(
                "`{p}` does not exist at `{}`: path not cited",
                short(&c.sha)
            ));
        }
        c.paths = ok;
        let parent = commit.parent(0).ok();
        let (ok, bad): (Vec<String>, Vec<String>) = c
            .removed_paths
            .into_iter()
            .partition(|p| parent.as_ref().is_some_and(|pc| exists_at(pc, p)));
        for p in bad {
            dropped.push(format!(
                "`{p}` is not in the parent of `{}`: removal not cited",
                short(&c.sha)
            ));
        }
        c.removed_paths = ok;
        if c.paths.is_empty() && c.removed_paths.is_empty() && !c.names_family {
            dropped.push(format!(
                "commit `{}` keeps no verified path and does not name the family: not cited",
                short(&c.sha)
            ));
            continue;
        }
        kept.push(c);
    }
    (kept, dropped)
}

/// The notes a round commit holds (`json`: the text of `history/model-pr-history.json`),
/// every commit, path and PR citation checked again against the checkout at `checkout`.
pub fn notes_evidence(
    checkout: &std::path::Path,
    json: Option<&str>,
) -> crate::gate::evidence::HistoryEvidence {
    use crate::gate::evidence::HistoryEvidence;
    let Some(json) = json else {
        return HistoryEvidence::default();
    };
    let mut ev = HistoryEvidence {
        notes_present: true,
        ..Default::default()
    };
    let report: super::notes::HistoryReport = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => {
            ev.unverified.push(format!("the notes do not parse: {e}"));
            return ev;
        }
    };
    let repo = match Repository::open(checkout) {
        Ok(r) => r,
        Err(e) => {
            ev.unverified
                .push(format!("the checkout cannot be read: {}", e.message()));
            return ev;
        }
    };
    ev.citations = report
        .commits
        .iter()
        .map(|c| 1 + c.paths.len() + c.removed_paths.len() + usize::from(c.pr.is_some()))
        .sum();
    let (_, dropped) = verify_commits(&repo, report.commits.clone());
    ev.unverified.extend(dropped);
    for k in &report.knowledge {
        for p in &k.prs {
            let Some(sha) = &p.sha else { continue };
            ev.citations += 1;
            let carries = Oid::from_str(sha)
                .ok()
                .and_then(|o| repo.find_commit(o).ok())
                .is_some_and(|c| {
                    pr_in_subject(&String::from_utf8_lossy(
                        c.summary_bytes().unwrap_or_default(),
                    )) == Some(p.number)
                });
            if !carries {
                ev.unverified.push(format!(
                    "`{}` cites #{} at `{}`, whose subject does not carry it",
                    k.path,
                    p.number,
                    short(sha)
                ));
            }
        }
    }
    ev
}

/// The first 10 characters of a sha, for messages.
pub fn short(sha: &str) -> &str {
    sha.get(..10).unwrap_or(sha)
}

/// What a curated file may be checked against.
pub struct KnowledgeCheck<'a> {
    pub repo: &'a Repository,
    pub head: Option<Oid>,
    /// PR number -> the commit whose subject carries it.
    pub pr_commits: &'a HashMap<u64, Oid>,
    /// PRs GitHub's API listed.
    pub api_prs: &'a [UpstreamPr],
    /// Files whose text symbols are looked up in (besides the file's own verified sources).
    pub symbol_files: &'a [String],
}

impl KnowledgeCheck<'_> {
    fn head_commit(&self) -> Option<git2::Commit<'_>> {
        self.head.and_then(|h| self.repo.find_commit(h).ok())
    }

    fn text_at_head(&self, path: &str) -> Option<String> {
        let c = self.head_commit()?;
        let entry = c.tree().ok()?.get_path(std::path::Path::new(path)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).to_string())
    }

    /// Keeps the file's verifiable citations. Citations of another framework's repository
    /// cannot be checked here and are left out (its risks are kept: they are advice, not
    /// citations).
    pub fn check(&self, k: &KnowledgeText, dropped: &mut Vec<String>) -> KnowledgeFile {
        let mut out = KnowledgeFile {
            path: k.path.clone(),
            framework: k.framework.canonical().to_string(),
            prs: Vec::new(),
            sources: Vec::new(),
            symbols: Vec::new(),
            risks: k.citations.risks.clone(),
        };
        let c = &k.citations;
        if k.framework != crate::framework::Framework::Sglang {
            let n = c.prs.len() + c.sources.len() + c.symbols.len();
            if n > 0 {
                dropped.push(format!(
                    "`{}` cites {n} PR(s), path(s) or symbol(s) of {}'s repository, which this checkout cannot verify: not cited",
                    k.path,
                    k.framework.display_name()
                ));
            }
            return out;
        }
        for pr in &c.prs {
            let Ok(n) = pr.parse::<u64>() else { continue };
            if let Some(oid) = self.pr_commits.get(&n) {
                let subject = self
                    .repo
                    .find_commit(*oid)
                    .ok()
                    .map(|c| {
                        String::from_utf8_lossy(c.summary_bytes().unwrap_or_default()).to_string()
                    })
                    .unwrap_or_default();
                out.prs.push(CitedPr {
                    number: n,
                    sha: Some(oid.to_string()),
                    title: subject,
                });
            } else if let Some(api) = self.api_prs.iter().find(|p| p.number == n) {
                out.prs.push(CitedPr {
                    number: n,
                    sha: None,
                    title: api.title.clone(),
                });
            } else {
                dropped.push(format!(
                    "`{}` cites #{n}: no commit subject in this checkout carries it and GitHub's search did not list it: not cited",
                    k.path
                ));
            }
        }
        for s in &c.sources {
            if self.text_at_head(s).is_some() {
                out.sources.push(s.clone());
            } else {
                dropped.push(format!(
                    "`{}` cites `{s}`, which does not exist at the checkout's head: not cited",
                    k.path
                ));
            }
        }
        let mut texts: BTreeSet<&String> = out.sources.iter().collect();
        texts.extend(self.symbol_files.iter());
        let bodies: Vec<String> = texts.iter().filter_map(|p| self.text_at_head(p)).collect();
        for sym in &c.symbols {
            let bare = sym.trim_end_matches("()");
            let last = bare.rsplit(['.', ':']).next().unwrap_or(bare);
            if !last.is_empty() && bodies.iter().any(|b| b.contains(last)) {
                out.symbols.push(sym.clone());
            } else {
                dropped.push(format!(
                    "`{}` cites symbol `{sym}`, found in none of the cited sources or the model's files: not cited",
                    k.path
                ));
            }
        }
        out
    }
}
