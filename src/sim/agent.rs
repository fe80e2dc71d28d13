//! The scripted coding-agent SIMULATOR (`sota-bot sim agent`): the local demo's and the
//! tests' stand-in for Claude Code / Codex.
//!
//! Each round it reads the round prompt, applies the round's scripted step to the simulated
//! SGLang engine profile in the checkout (a real file edit, so the simulated server really
//! gets faster or slower) and writes a markdown round summary; the ledgers are sota-bot's
//! to append, never the agent's. Misbehaviours the review gate must catch are
//! scriptable too: `noop` (stall), `regress`, `change-workload` (edits the benchmark
//! workload file), `sleep` (exceed the round timeout) and `crash`.

use super::profile::{load_profile, EngineProfile, KernelCost, DEFAULT_CHECKOUT_PROFILE_PATH};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One edit to an engine profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "edit", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProfileEdit {
    /// Replaces every consecutive run of `kernels` in the layer by the one kernel `into`.
    Fuse {
        kernels: Vec<String>,
        into: KernelCost,
    },
    /// Multiplies one kernel's costs (every occurrence), optionally renaming it.
    ScaleKernel {
        kernel: String,
        factor: f64,
        #[serde(default)]
        rename: Option<String>,
    },
    /// Hides this fraction of the scheduler overhead behind GPU work.
    SetOverlap { fraction: f64 },
    /// Multiplies the per-step scheduler overhead.
    ScaleOverhead { factor: f64 },
}

/// One scripted round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AgentStep {
    Patch {
        title: String,
        edits: Vec<ProfileEdit>,
        #[serde(default)]
        rationale: String,
        #[serde(default)]
        evidence: Vec<String>,
    },
    Noop {
        #[serde(default)]
        note: String,
    },
    Regress {
        #[serde(default = "default_regress_factor")]
        factor: f64,
    },
    ChangeWorkload {
        #[serde(default = "default_workload_path")]
        path: String,
        #[serde(default = "default_workload_text")]
        content: String,
    },
    Sleep {
        seconds: u64,
    },
    Crash {
        #[serde(default = "default_crash_code")]
        exit_code: i32,
        #[serde(default)]
        message: String,
    },
}

fn default_regress_factor() -> f64 {
    1.3
}
fn default_workload_path() -> String {
    "benchmark/workload.yaml".into()
}
fn default_workload_text() -> String {
    "# edited by the simulated agent: fewer output tokens make any engine look faster\noutput_len: 100\n".into()
}
fn default_crash_code() -> i32 {
    3
}

/// A script: one step per round (round 1 = first entry); rounds past the end are `noop`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentScript {
    pub steps: Vec<AgentStep>,
}

/// The script used when none is given: three real optimizations of the simulated SGLang
/// engine (each cites the profile evidence a real agent would cite).
pub const DEFAULT_SCRIPT: &str = include_str!("default_agent_script.yaml");

/// Why the simulated agent could not do its round.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent script {path}: {message}")]
    Script { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Profile(#[from] super::profile::ProfileError),
    #[error("patch does not apply: {0}")]
    Patch(String),
}

impl AgentScript {
    /// Parses a YAML list of steps.
    pub fn parse(text: &str, origin: &str) -> Result<AgentScript, AgentError> {
        serde_yaml_ng::from_str(text).map_err(|e| AgentError::Script {
            path: origin.to_string(),
            message: match e.location() {
                Some(l) => format!("line {}, column {}: {e}", l.line(), l.column()),
                None => e.to_string(),
            },
        })
    }

    /// The built-in script.
    pub fn default_script() -> AgentScript {
        // The built-in script is a compile-time constant covered by a unit test.
        AgentScript::parse(DEFAULT_SCRIPT, "built-in").unwrap_or(AgentScript { steps: Vec::new() })
    }

    /// The step for a 1-based round.
    pub fn step_for_round(&self, round: u32) -> AgentStep {
        round
            .checked_sub(1)
            .and_then(|i| self.steps.get(i as usize))
            .cloned()
            .unwrap_or(AgentStep::Noop {
                note: "the script has no more patches".into(),
            })
    }
}

/// Applies edits to a profile (pure). Every edit must apply, so a stale script is reported.
pub fn apply_edits(
    profile: &EngineProfile,
    edits: &[ProfileEdit],
) -> Result<EngineProfile, AgentError> {
    let mut p = profile.clone();
    for edit in edits {
        match edit {
            ProfileEdit::Fuse { kernels, into } => {
                if kernels.is_empty() {
                    return Err(AgentError::Patch("fuse lists no kernels".into()));
                }
                let mut out = Vec::with_capacity(p.layer_kernels.len());
                let mut i = 0;
                let mut hits = 0;
                while i < p.layer_kernels.len() {
                    let matches = p
                        .layer_kernels
                        .get(i..i + kernels.len())
                        .is_some_and(|w| w.iter().zip(kernels).all(|(k, name)| &k.name == name));
                    if matches {
                        out.push(into.clone());
                        i += kernels.len();
                        hits += 1;
                    } else if let Some(k) = p.layer_kernels.get(i) {
                        out.push(k.clone());
                        i += 1;
                    }
                }
                if hits == 0 {
                    return Err(AgentError::Patch(format!(
                        "no consecutive {} in the layer",
                        kernels.join(" + ")
                    )));
                }
                p.layer_kernels = out;
            }
            ProfileEdit::ScaleKernel {
                kernel,
                factor,
                rename,
            } => {
                let mut hits = 0;
                for k in p
                    .layer_kernels
                    .iter_mut()
                    .chain(p.forward_kernels.iter_mut())
                    .filter(|k| &k.name == kernel)
                {
                    k.prefill_us_per_token *= factor;
                    k.prefill_us_per_token_ctx_k *= factor;
                    k.decode_us_per_step *= factor;
                    k.decode_us_per_seq *= factor;
                    k.decode_us_per_ctx_k *= factor;
                    if let Some(r) = rename {
                        k.name = r.clone();
                    }
                    hits += 1;
                }
                if hits == 0 {
                    return Err(AgentError::Patch(format!(
                        "kernel `{kernel}` is not in the profile"
                    )));
                }
            }
            ProfileEdit::SetOverlap { fraction } => p.scheduler.overlap_fraction = *fraction,
            ProfileEdit::ScaleOverhead { factor } => p.scheduler.overhead_us_per_step *= factor,
        }
    }
    p.validate().map_err(AgentError::Patch)?;
    Ok(p)
}

/// What one round did (the CLI maps `exit_code` to the process exit status).
#[derive(Debug, Clone, PartialEq)]
pub struct RoundOutcome {
    pub summary_markdown: String,
    pub changed_files: Vec<String>,
    pub exit_code: i32,
}

/// Runs rounds of a script against a checkout.
#[derive(Debug, Clone)]
pub struct ScriptedAgent {
    pub checkout: PathBuf,
    /// Engine profile path relative to the checkout.
    pub profile_path: PathBuf,
    pub script: AgentScript,
}

impl ScriptedAgent {
    pub fn new(checkout: impl Into<PathBuf>, script: AgentScript) -> ScriptedAgent {
        ScriptedAgent {
            checkout: checkout.into(),
            profile_path: PathBuf::from(DEFAULT_CHECKOUT_PROFILE_PATH),
            script,
        }
    }

    /// Does round `round`: edits the checkout and writes `summary_out`. `sleep` blocks;
    /// `crash` writes nothing and returns its code.
    pub fn run_round(
        &self,
        round: u32,
        _prompt: &str,
        summary_out: &Path,
    ) -> Result<RoundOutcome, AgentError> {
        let step = self.script.step_for_round(round);
        let mut md = format!("# Round {round} summary (scripted agent simulator)\n\n");
        let mut changed = Vec::new();
        let exit_code = 0;
        match &step {
            AgentStep::Patch {
                title: t,
                edits,
                rationale,
                evidence,
            } => {
                let path = self.checkout.join(&self.profile_path);
                let before = load_profile(&path)?;
                let after = apply_edits(&before, edits)?;
                self.write_profile(&path, &after)?;
                changed.push(self.profile_path.display().to_string());
                let (b, a) = (
                    before.decode_gpu_us(1, 1000) + before.exposed_overhead_us(),
                    after.decode_gpu_us(1, 1000) + after.exposed_overhead_us(),
                );
                let _ = writeln!(
                    md,
                    "## What changed\n\n{t}\n\nEdited `{}`:\n",
                    self.profile_path.display()
                );
                for e in edits {
                    let _ = writeln!(md, "- {}", describe_edit(e));
                }
                let _ = writeln!(
                    md,
                    "\n## Why\n\n{}\n",
                    if rationale.is_empty() {
                        "Scripted optimization."
                    } else {
                        rationale
                    }
                );
                let _ = writeln!(md, "## Evidence cited\n");
                for e in evidence {
                    let _ = writeln!(md, "- {e}");
                }
                let _ = writeln!(
                    md,
                    "- simulated decode step (batch 1, 1000 context tokens): {:.1} us -> {:.1} us",
                    b, a
                );
            }
            AgentStep::Noop { note } => {
                let _ = writeln!(md, "## What changed\n\nNothing. {note}\n");
            }
            AgentStep::Regress { factor } => {
                let path = self.checkout.join(&self.profile_path);
                let before = load_profile(&path)?;
                let after =
                    apply_edits(&before, &[ProfileEdit::ScaleOverhead { factor: *factor }])?;
                self.write_profile(&path, &after)?;
                changed.push(self.profile_path.display().to_string());
                let _ = writeln!(md, "## What changed\n\nReworked the scheduler loop (per-step overhead x{factor}).\n");
            }
            AgentStep::ChangeWorkload { path, content } => {
                let full = self.checkout.join(path);
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent).map_err(|source| AgentError::Io {
                        path: parent.to_path_buf(),
                        source,
                    })?;
                }
                std::fs::write(&full, content).map_err(|source| AgentError::Io {
                    path: full.clone(),
                    source,
                })?;
                changed.push(path.clone());
                let _ = writeln!(
                    md,
                    "## What changed\n\nEdited the benchmark workload file `{path}`.\n"
                );
            }
            AgentStep::Sleep { seconds } => {
                std::thread::sleep(std::time::Duration::from_secs(*seconds));
                let _ = writeln!(md, "## What changed\n\nNothing (slept {seconds}s).\n");
            }
            AgentStep::Crash {
                exit_code: code,
                message,
            } => {
                return Ok(RoundOutcome {
                    summary_markdown: if message.is_empty() {
                        "simulated agent crash".into()
                    } else {
                        message.clone()
                    },
                    changed_files: Vec::new(),
                    exit_code: *code,
                });
            }
        }
        if let Some(parent) = summary_out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| AgentError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(summary_out, &md).map_err(|source| AgentError::Io {
            path: summary_out.to_path_buf(),
            source,
        })?;
        Ok(RoundOutcome {
            summary_markdown: md,
            changed_files: changed,
            exit_code,
        })
    }

    fn write_profile(&self, path: &Path, profile: &EngineProfile) -> Result<(), AgentError> {
        let yaml =
            serde_yaml_ng::to_string(profile).map_err(|e| AgentError::Patch(e.to_string()))?;
        let text = format!("# SIMULATED engine profile (sota-bot simulator lane), edited by the scripted agent.\n{yaml}");
        std::fs::write(path, text).map_err(|source| AgentError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn describe_edit(e: &ProfileEdit) -> String {
    match e {
        ProfileEdit::Fuse { kernels, into } => {
            format!("fused `{}` into `{}`", kernels.join("` + `"), into.name)
        }
        ProfileEdit::ScaleKernel {
            kernel,
            factor,
            rename,
        } => match rename {
            Some(r) => format!("replaced `{kernel}` by `{r}` (cost x{factor})"),
            None => format!("sped up `{kernel}` (cost x{factor})"),
        },
        ProfileEdit::SetOverlap { fraction } => format!(
            "overlapped {:.0}% of the scheduler overhead with GPU work",
            fraction * 100.0
        ),
        ProfileEdit::ScaleOverhead { factor } => format!("scheduler overhead x{factor}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sglang() -> EngineProfile {
        load_profile(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim/sglang.yaml"))
            .unwrap()
    }

    #[test]
    fn default_script_parses_and_every_patch_speeds_up_sglang() {
        let script = AgentScript::parse(DEFAULT_SCRIPT, "built-in").unwrap();
        assert!(script.steps.len() >= 3);
        let mut p = sglang();
        for step in &script.steps {
            let AgentStep::Patch { edits, .. } = step else {
                panic!("default script only patches")
            };
            let next = apply_edits(&p, edits).unwrap();
            let cost = |p: &EngineProfile| p.decode_gpu_us(32, 64_000) + p.exposed_overhead_us();
            assert!(cost(&next) < cost(&p) * 0.99, "{step:?}");
            p = next;
        }
        assert!(p
            .layer_kernels
            .iter()
            .any(|k| k.name == "fused_add_rms_norm_kernel"));
    }

    #[test]
    fn stale_fuse_is_reported() {
        let edit = ProfileEdit::Fuse {
            kernels: vec!["nope".into()],
            into: sglang().layer_kernels[0].clone(),
        };
        assert!(matches!(
            apply_edits(&sglang(), &[edit]),
            Err(AgentError::Patch(_))
        ));
    }

    #[test]
    fn script_format_rejects_unknown_actions() {
        assert!(AgentScript::parse("- action: teleport\n", "s.yaml").is_err());
        let s = AgentScript::parse(
            "- action: noop\n- action: sleep\n  seconds: 1\n- action: crash\n",
            "s.yaml",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 3);
        assert!(matches!(s.step_for_round(9), AgentStep::Noop { .. }));
    }
}
