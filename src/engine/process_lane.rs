//! A [`BenchLane`] over real processes, through the runner core's launch groups
//! ([`crate::runner::group`]): each candidate's server command is launched once, checked for
//! readiness, every scenario's benchmark command runs against it and writes one normalized
//! row (JSON) to a file, then the server is stopped and its port freed. Logs are scrubbed of
//! secrets as they are captured. Works for the simulator lane (`sota-bot sim serve` +
//! `sota-bot bench run`) and for real engines whose benchmark step normalizes its output.
//!
//! Command templates use `{sota_bot}`, `{port}`, `{scenario}`, `{input_len}`, `{output_len}`,
//! `{num_prompts}`, `{row_out}`, `{raw_out}` (a native client's result file), `{out_dir}`,
//! `{framework}`, `{checkout}`, `{tokenizer}`.

use super::lane::{BenchLane, LaneError, RunTag};
use super::{CandidateSpec, ScenarioSpec};
use crate::bench::{BenchRow, RunStatus};
use crate::framework::Framework;
use crate::runner::agent::shell_quote;
use crate::runner::bench::{run_benchmark_with, BenchOutcome, BenchSpec};
use crate::runner::group::{read_row_jsonl, run_launch_group_each, BenchInvocation, LaunchGroup};
use crate::runner::process::{CommandSpec, OsLauncher};
use crate::runner::server::{free_port, LaunchSpec};
use crate::secrets::SecretSet;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Process lane settings.
#[derive(Debug, Clone)]
pub struct ProcessLaneConfig {
    pub checkout: PathBuf,
    /// Where server and benchmark logs go (runtime state, not committed).
    pub log_dir: PathBuf,
    pub ready_timeout: Duration,
    pub bench_timeout: Duration,
    /// Health endpoints tried in order.
    pub health_paths: Vec<String>,
    /// Help commands per framework: (file name, shell command).
    pub help_commands: BTreeMap<Framework, Vec<(String, String)>>,
    /// Profile command template per framework (writes tables under `{out_dir}`).
    pub profile_commands: BTreeMap<Framework, String>,
    pub model: String,
    /// The model's tokenizer spec (`{tokenizer}`), checked before any server starts.
    pub tokenizer: String,
    pub num_prompts: u64,
    /// What `{sota_bot}` in a command stands for (this executable).
    pub sota_bot: PathBuf,
}

/// Runs candidates as real processes.
pub struct ProcessLane {
    pub config: ProcessLaneConfig,
    launches: u64,
}

impl ProcessLane {
    pub fn new(config: ProcessLaneConfig) -> ProcessLane {
        ProcessLane {
            config,
            launches: 0,
        }
    }
}

fn expand(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

impl BenchLane for ProcessLane {
    fn run_candidate(
        &mut self,
        cand: &CandidateSpec,
        scenarios: &[ScenarioSpec],
        tag: &RunTag,
        on_row: &mut dyn FnMut(BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError> {
        self.run_shared(&[(cand.clone(), scenarios.to_vec())], tag, &mut |_, row| {
            on_row(row)
        })
    }

    fn run_shared(
        &mut self,
        runs: &[(CandidateSpec, Vec<ScenarioSpec>)],
        tag: &RunTag,
        on_row: &mut dyn FnMut(usize, BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError> {
        let Some((first, _)) = runs.first() else {
            return Ok(());
        };
        let port = free_port().map_err(|e| LaneError(format!("no free port: {e}")))?;
        let stem = format!(
            "r{}-{}-{}-{}",
            tag.round,
            tag.repeat,
            first.framework.canonical(),
            first.candidate_id
        );
        let base_vars = vec![
            (
                "sota_bot",
                shell_quote(&self.config.sota_bot.to_string_lossy()),
            ),
            ("port", port.to_string()),
            ("framework", first.framework.canonical().to_string()),
            (
                "checkout",
                shell_quote(&self.config.checkout.to_string_lossy()),
            ),
            ("num_prompts", self.config.num_prompts.to_string()),
            ("tokenizer", shell_quote(&self.config.tokenizer)),
        ];
        let server_cmd = expand(&first.server_command, &base_vars);
        let mut server = LaunchSpec::new(
            CommandSpec::Shell(server_cmd.clone()),
            port,
            self.config.log_dir.join(format!("{stem}.server.log")),
        );
        server.cwd = Some(self.config.checkout.clone());
        server.ready_timeout = self.config.ready_timeout;
        server.health_paths = self.config.health_paths.clone();
        server.stop_grace = Duration::from_secs(5);
        let mut invocations = Vec::new();
        let mut owner = Vec::new();
        for (i, (cand, scenarios)) in runs.iter().enumerate() {
            for s in scenarios {
                let name = format!("{stem}-{}-{}", cand.candidate_id, s.name);
                let row_out = self.config.log_dir.join(format!("{name}.row.json"));
                let raw_out = self.config.log_dir.join(format!("{name}.raw.json"));
                let _ = std::fs::remove_file(&row_out);
                // Some clients append to their result file: start each run empty.
                let _ = std::fs::remove_file(&raw_out);
                let mut vars = base_vars.clone();
                vars.extend([
                    ("scenario", s.name.clone()),
                    ("input_len", s.input_len.to_string()),
                    ("output_len", s.output_len.to_string()),
                    ("row_out", shell_quote(&row_out.to_string_lossy())),
                    ("raw_out", shell_quote(&raw_out.to_string_lossy())),
                ]);
                invocations.push(BenchInvocation {
                    candidate_id: cand.candidate_id.clone(),
                    scenario: s.name.clone(),
                    command: CommandSpec::Shell(expand(&cand.benchmark_command, &vars)),
                    env: Vec::new(),
                    timeout: self.config.bench_timeout,
                    log_path: self.config.log_dir.join(format!("{name}.bench.log")),
                    row_path: Some(row_out),
                    row_template: cand.failed_row(s, &self.config.model, self.config.num_prompts),
                });
                owner.push(i);
            }
        }
        let group = LaunchGroup {
            server,
            runs: invocations,
        };
        // The benchmark's own row names its scenario and the commands actually run.
        let read_row = |inv: &BenchInvocation, outcome: &BenchOutcome| {
            let mut row = read_row_jsonl(inv, outcome)?;
            row.workload.scenario = Some(inv.scenario.clone());
            row.server_command = Some(server_cmd.clone());
            row.benchmark_command = Some(inv.command.display());
            Ok(row)
        };
        let mut lane_error = None;
        let mut next = 0usize;
        let result = run_launch_group_each(&OsLauncher, &group, &read_row, &mut |row| {
            // Rows arrive once per invocation, in order.
            let i = owner.get(next).copied().unwrap_or(0);
            next += 1;
            match on_row(i, row.clone()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    lane_error = Some(e);
                    ControlFlow::Break(())
                }
            }
        });
        self.launches += u64::from(result.launches);
        match lane_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn preflight(&mut self) -> Result<(), LaneError> {
        crate::tokenizer::ModelTokenizer::load_spec(
            &self.config.tokenizer,
            &crate::tokenizer::HfCache::from_env(),
        )
        .map(|_| ())
        .map_err(|e| LaneError(format!("the model's tokenizer cannot be used: {e}")))
    }

    fn help_snapshots(&mut self, cand: &CandidateSpec) -> Vec<(String, String)> {
        let secrets = SecretSet::from_default_env();
        let commands = self
            .config
            .help_commands
            .get(&cand.framework)
            .cloned()
            .unwrap_or_else(|| {
                crate::runner::help::default_help_commands(
                    cand.framework,
                    &cand.server_command,
                    &cand.benchmark_command,
                )
            });
        let vars = vec![
            (
                "sota_bot",
                shell_quote(&self.config.sota_bot.to_string_lossy()),
            ),
            (
                "checkout",
                shell_quote(&self.config.checkout.to_string_lossy()),
            ),
            ("framework", cand.framework.canonical().to_string()),
        ];
        let mut out = Vec::new();
        for (name, template) in commands {
            let cmd = expand(&template, &vars);
            let mut sh = Command::new("sh");
            for secret in crate::secrets::withheld_env(crate::secrets::HF_TOKEN_VARS) {
                sh.env_remove(secret);
            }
            sh.arg("-c").arg(&cmd).current_dir(&self.config.checkout);
            let text = crate::runner::supervisor::output(&mut sh, "help capture")
                .map(|o| {
                    let mut t = String::from_utf8_lossy(&o.stdout).to_string();
                    t.push_str(&String::from_utf8_lossy(&o.stderr));
                    t
                })
                .unwrap_or_else(|e| format!("could not run `{cmd}`: {e}"));
            // The captured text names the command but not this machine's paths.
            let shown = expand(
                &template,
                &[("sota_bot", "sota-bot".into()), ("checkout", ".".into())],
            );
            let text = secrets.scrub(&format!("$ {shown}\n{text}")).into_owned();
            out.push((name, text));
        }
        out
    }

    fn profile(
        &mut self,
        cand: &CandidateSpec,
        scenario: &ScenarioSpec,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, LaneError> {
        let Some(template) = self.config.profile_commands.get(&cand.framework).cloned() else {
            return Err(LaneError(format!(
                "no profile command configured for {}",
                cand.framework.display_name()
            )));
        };
        let vars = vec![
            (
                "sota_bot",
                shell_quote(&self.config.sota_bot.to_string_lossy()),
            ),
            ("framework", cand.framework.canonical().to_string()),
            (
                "checkout",
                shell_quote(&self.config.checkout.to_string_lossy()),
            ),
            ("out_dir", shell_quote(&out_dir.to_string_lossy())),
            ("scenario", scenario.name.clone()),
            ("input_len", scenario.input_len.to_string()),
            ("output_len", scenario.output_len.to_string()),
        ];
        let cmd = expand(&template, &vars);
        let log = self.config.log_dir.join(format!(
            "profile-{}-{}.log",
            cand.framework.canonical(),
            scenario.name
        ));
        let outcome = run_benchmark_with(
            &OsLauncher,
            &BenchSpec {
                command: CommandSpec::Shell(cmd),
                env: Vec::new(),
                cwd: Some(self.config.checkout.clone()),
                timeout: self.config.bench_timeout,
                log_path: log,
                secrets: SecretSet::from_default_env(),
            },
        );
        if outcome.status != RunStatus::Ok {
            let tail: Vec<&str> = outcome.log_tail.lines().rev().take(3).collect();
            return Err(LaneError(format!(
                "profile command {}: {}; {}",
                outcome.status,
                outcome.failure_reason.as_deref().unwrap_or("no reason"),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            )));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(out_dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        Ok(files)
    }

    fn server_launches(&self) -> u64 {
        self.launches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand() {
        assert_eq!(
            expand(
                "p={port} s={scenario}",
                &[("port", "1".into()), ("scenario", "chat".into())]
            ),
            "p=1 s=chat"
        );
    }
}
