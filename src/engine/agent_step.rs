//! The agent step of a round: run the configured agent, then decide from git and the run
//! directory what it did. Its commits are folded back into the round's working changes (a
//! round is one commit); a change it may not make (bot-owned run-directory files,
//! `.github/`, runtime state), a credential in its files, no source change at all, or a
//! failed run end the round before revalidation: the change is discarded and recorded with
//! the scrubbed log tail, and no GPU time is spent on it.

use super::{Engine, EngineError};
use crate::campaign::state::RoundStep;
use crate::gate::{AgentFailure, AgentReport};
use crate::runner::agent::{preflight, read_summary, AgentInvocation, AgentOutcome, AgentRun};
use std::collections::BTreeMap;
use std::path::Path;

/// Lines of each agent output stream kept in the round's log tail.
const TAIL_LINES: usize = 40;
/// Longest line kept in the log tail (a CLI's JSON result is one long line).
const TAIL_LINE_CHARS: usize = 600;
/// Largest run-directory file kept in memory to undo an agent's edit to it.
const MAX_RESTORE_BYTES: u64 = 8 * 1024 * 1024;

/// Paths under `prefix` an agent may never change.
pub const FORBIDDEN_PREFIXES: &[&str] = &[".github/", ".humanize", ".sota/"];

/// One run-directory file before the agent ran: a content hash, and the bytes when small
/// enough to put back.
#[derive(Debug, Clone, PartialEq)]
struct Kept {
    hash: u64,
    bytes: Option<Vec<u8>>,
}

/// Every file under the run directory (repo-relative path -> content).
type RunDirSnapshot = BTreeMap<String, Kept>;

fn snapshot(root: &Path, repo_root: &Path) -> RunDirSnapshot {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
                continue;
            }
            let (Ok(rel), Ok(bytes)) = (p.strip_prefix(repo_root), std::fs::read(&p)) else {
                continue;
            };
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            let kept = Kept {
                hash: h.finish(),
                bytes: (meta.len() <= MAX_RESTORE_BYTES).then_some(bytes),
            };
            out.insert(rel.to_string_lossy().into_owned(), kept);
        }
    }
    out
}

/// Run-directory paths added, removed or changed between two snapshots.
fn changed_in(before: &RunDirSnapshot, after: &RunDirSnapshot) -> Vec<String> {
    let mut out: Vec<String> = before
        .iter()
        .filter(|(p, b)| after.get(*p).map(|a| a.hash) != Some(b.hash))
        .map(|(p, _)| p.clone())
        .collect();
    out.extend(after.keys().filter(|p| !before.contains_key(*p)).cloned());
    out.sort();
    out
}

/// Whether an agent may change `path` (repo-relative).
pub fn is_forbidden(path: &str) -> bool {
    FORBIDDEN_PREFIXES.iter().any(|p| path.starts_with(p))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|l| {
            if l.chars().count() > TAIL_LINE_CHARS {
                let cut: String = l.chars().take(TAIL_LINE_CHARS).collect();
                format!("{cut} [...]")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The secrets the agent's output is scrubbed of and checked for: every configured secret
/// of the process, the agent's own key variable included (registered here, so that every
/// later write of the process scrubs it too).
fn agent_secrets(api_key_env: Option<&str>) -> crate::secrets::SecretSet {
    if let Some(name) = api_key_env {
        crate::secrets::register_env_name(name);
    }
    crate::secrets::SecretSet::from_default_env()
}

/// The file's text scrubbed of `secrets`, written back when anything was removed (empty
/// when unreadable).
fn scrub_file(secrets: &crate::secrets::SecretSet, path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match secrets.scrub(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(clean) => {
            let _ = std::fs::write(path, &clean);
            clean
        }
    }
}

impl Engine<'_> {
    /// Whether the configured agent can start here (checked before any profiling).
    pub(crate) fn agent_ready(&self) -> Result<(), EngineError> {
        match &self.opts.agent {
            Some(_) => Ok(()),
            None => Err(EngineError::Refused(
                "no agent configured (--agent, --agent-command or the config's agent section)"
                    .into(),
            )),
        }
    }

    /// Puts the checkout back at the round's start outside the run directory: what an agent
    /// an interruption stopped left behind (its commits and edits) is undone before the
    /// resumed round runs the agent again. A round that starts normally has nothing to undo.
    pub(crate) fn undo_unfinished_agent(&mut self, start: &str) -> Result<(), EngineError> {
        let head = self.git.head_commit()?;
        if head != start && self.git.is_ancestor(start, &head) {
            self.git.reset_soft(start)?;
        }
        let run_prefix = format!("{}/", self.paths.rel);
        let left: Vec<String> = self
            .git
            .uncommitted_paths()?
            .into_iter()
            .filter(|p| !p.starts_with(&run_prefix))
            .collect();
        if !left.is_empty() {
            self.progress.step(&format!(
                "undoing what an interrupted agent left: {}",
                left.join(", ")
            ));
            self.git.restore_paths(start, &left)?;
        }
        Ok(())
    }

    pub(crate) fn agent_step(&mut self, round: u32) -> Result<(), EngineError> {
        self.agent_ready()?;
        let spec = self.opts.agent.clone().unwrap_or_default();
        let Some(start) = self
            .state
            .in_progress
            .as_ref()
            .map(|p| p.start_commit.clone())
        else {
            return Err(EngineError::Refused("no round in progress".into()));
        };
        self.undo_unfinished_agent(&start)?;
        self.progress.step(&format!(
            "round {round}: running the agent ({})",
            spec.describe()
        ));
        let round_dir = self.paths.round_dir(round);
        let inv = AgentInvocation {
            spec: spec.clone(),
            checkout: self.checkout.clone(),
            run_dir: self.paths.root(),
            round,
            prompt_path: round_dir.join("prompt.md"),
            summary_path: round_dir.join("summary.md"),
            log_path: self.checkout.join(format!(".sota/agent-round-{round}.log")),
            timeout: self.opts.agent_timeout,
        };
        let before = snapshot(&self.paths.root(), &self.checkout);
        let run = match preflight(&spec) {
            Ok(()) => self.agent.run(&inv),
            Err(why) => AgentRun::not_started(why),
        };
        // An agent a signal stopped did not fail: nothing is recorded, and the resumed round
        // runs it again from a clean tree.
        super::check_interrupted()?;
        self.progress.step(&format!(
            "round {round}: agent finished: {} in {:.1}s ({})",
            run.outcome.describe(),
            run.duration.as_secs_f64(),
            run.usage.describe()
        ));
        let secrets = agent_secrets(spec.api_key_env.as_deref());
        // Scrubbed whole before any tail is cut (a tail starting inside a PEM block would
        // keep its body), and rewritten scrubbed where the agent's raw output lies.
        let stdout = scrub_file(&secrets, &inv.stdout_path());
        let stderr = scrub_file(&secrets, &inv.log_path);
        let mut log_tail = String::new();
        if let Some(e) = &run.usage.error {
            log_tail.push_str(&format!(
                "--- agent error ---\n{}\n",
                tail(&secrets.scrub(e))
            ));
        }
        for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            if !text.trim().is_empty() {
                log_tail.push_str(&format!("--- {name} ---\n{}\n", tail(text)));
            }
        }
        // The summary as the agent wrote it (read before it is rewritten scrubbed).
        let raw_summary = read_summary(&self.checkout, &inv.summary_path);

        // Fold the agent's commits into the round's working changes.
        let head = self.git.head_commit()?;
        let commits = if head != start && self.git.is_ancestor(&start, &head) {
            let messages = self.git.messages_since(&start)?;
            self.git.reset_soft(&start)?;
            messages
        } else {
            Vec::new()
        };
        let run_prefix = format!("{}/", self.paths.rel);
        let summary_rel = self
            .paths
            .repo_rel(&format!("{}/summary.md", super::RunPaths::round_rel(round)));
        let outside: Vec<String> = self
            .git
            .uncommitted_paths()?
            .into_iter()
            .filter(|p| !p.starts_with(&run_prefix))
            .collect();
        let after = snapshot(&self.paths.root(), &self.checkout);
        let bot_owned: Vec<String> = changed_in(&before, &after)
            .into_iter()
            .filter(|p| *p != summary_rel)
            .collect();
        let mut forbidden: Vec<String> = outside
            .iter()
            .filter(|p| is_forbidden(p))
            .cloned()
            .chain(bot_owned.iter().cloned())
            .collect();
        forbidden.sort();
        let sources: Vec<String> = outside
            .iter()
            .filter(|p| !is_forbidden(p))
            .cloned()
            .collect();
        let mut leaked = Vec::new();
        for p in &sources {
            let text = std::fs::read(self.checkout.join(p))
                .ok()
                .filter(|b| b.len() <= 2 * 1024 * 1024)
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let kinds = secrets.find(&text);
            if !kinds.is_empty() {
                leaked.push(format!("{p} ({})", kinds.join(", ")));
            }
        }
        if let Some(s) = &raw_summary {
            let kinds = secrets.find(s);
            if !kinds.is_empty() {
                leaked.push(format!("{summary_rel} ({})", kinds.join(", ")));
            }
        }
        if let Some(s) = &raw_summary {
            self.write(&inv.summary_path, s)?;
        }

        let failure = match &run.outcome {
            AgentOutcome::FailedToStart { message } => Some(AgentFailure::NotStarted {
                message: message.clone(),
            }),
            AgentOutcome::TimedOut { after_secs } => Some(AgentFailure::TimedOut {
                after_secs: *after_secs,
            }),
            AgentOutcome::Finished { exit_code } if *exit_code != 0 => Some(AgentFailure::Exited {
                code: *exit_code,
                message: run
                    .usage
                    .error
                    .as_deref()
                    .map(|m| secrets.scrub(m).into_owned()),
            }),
            _ if !forbidden.is_empty() => Some(AgentFailure::ForbiddenPaths {
                paths: forbidden.clone(),
            }),
            _ if !leaked.is_empty() => Some(AgentFailure::Credentials {
                files: leaked.clone(),
            }),
            _ if sources.is_empty() => Some(AgentFailure::NoChange),
            _ => None,
        };

        let measured = if failure.is_some() {
            // Nothing of a failed round is measured or committed but its record.
            self.git.restore_paths(&start, &outside)?;
            for p in &bot_owned {
                let full = self.checkout.join(p);
                match before.get(p).map(|k| k.bytes.as_ref()) {
                    Some(Some(bytes)) => {
                        if let Some(dir) = full.parent() {
                            std::fs::create_dir_all(dir).map_err(super::io_err(dir))?;
                        }
                        std::fs::write(&full, bytes).map_err(super::io_err(&full))?
                    }
                    Some(None) => {}
                    None => {
                        let _ = std::fs::remove_file(&full);
                    }
                }
            }
            None
        } else {
            let mut msg = format!("sota round {round}: measured SGLang source\n");
            for c in &commits {
                msg.push_str(&format!("\n{c}\n"));
            }
            Some(self.git.snapshot_commit(
                &start,
                &sources,
                &secrets.scrub(&msg),
                &format!("refs/sota/{}/round-{round}", self.campaign.campaign_id),
            )?)
        };
        if !log_tail.is_empty() {
            self.write(&round_dir.join("agent-log-tail.txt"), &log_tail)?;
        }
        if let Some(f) = &failure {
            self.progress.step(&format!(
                "round {round}: agent round failed: {}",
                f.describe()
            ));
        }
        let report = AgentReport {
            agent: spec.describe(),
            outcome: run.outcome.describe(),
            duration_secs: (run.duration.as_secs_f64() * 10.0).round() / 10.0,
            usage: run.usage.clone(),
            failure,
            commits: commits
                .iter()
                .map(|c| secrets.scrub(c).into_owned())
                .collect(),
            log_tail,
        };
        if let Some(p) = self.state.in_progress.as_mut() {
            p.step = RoundStep::AgentDone;
            p.measured_commit = measured;
            p.agent_outcome = Some(run.outcome.describe());
            p.agent_left_uncommitted = Vec::new();
            p.agent = Some(report);
        }
        self.save_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_paths() {
        assert!(is_forbidden(".github/workflows/sota-round.yml"));
        assert!(is_forbidden(".humanize/state.md"));
        assert!(is_forbidden(".sota/agent.log"));
        assert!(!is_forbidden("python/sglang/srt/layers/layernorm.py"));
        assert!(!is_forbidden("docs/.github.md"));
    }

    #[test]
    fn run_dir_changes_are_found() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("runs/x");
        std::fs::create_dir_all(run.join("humanize")).unwrap();
        std::fs::write(run.join("humanize/attempt-ledger.md"), "a").unwrap();
        std::fs::write(run.join("plan.md"), "p").unwrap();
        let before = snapshot(&run, d.path());
        std::fs::write(run.join("humanize/attempt-ledger.md"), "b").unwrap();
        std::fs::write(run.join("new.md"), "n").unwrap();
        let after = snapshot(&run, d.path());
        assert_eq!(
            changed_in(&before, &after),
            ["runs/x/humanize/attempt-ledger.md", "runs/x/new.md"]
        );
        assert!(changed_in(&after, &after).is_empty());
    }

    #[test]
    fn tails_are_short() {
        let long = "x".repeat(2000);
        let text = (0..100)
            .map(|i| format!("line {i}"))
            .chain([long])
            .collect::<Vec<_>>()
            .join("\n");
        let t = tail(&text);
        assert_eq!(t.lines().count(), TAIL_LINES);
        assert!(t.ends_with(" [...]"));
    }
}
