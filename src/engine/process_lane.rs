//! A [`BenchLane`] over real processes: each candidate's server command is launched once
//! (in its own process group), health-checked over HTTP, every scenario's benchmark command
//! runs against it and writes one normalized row (JSON) to a file, then the server group is
//! stopped. Works for the simulator lane (`sota-bot sim serve` + `sota-bot bench run`) and
//! for real engines whose benchmark step normalizes its output into a row.
//!
//! Command templates use `{port}`, `{scenario}`, `{input_len}`, `{output_len}`,
//! `{num_prompts}`, `{row_out}`, `{out_dir}`, `{framework}`, `{checkout}`.

use super::lane::{BenchLane, LaneError, RunTag};
use super::{CandidateSpec, ScenarioSpec};
use crate::bench::{BenchRow, RunStatus};
use crate::campaign::Framework;
use crate::runner::agent::shell_quote;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    pub num_prompts: u64,
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

fn free_port() -> Result<u16, LaneError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| LaneError(format!("no free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| LaneError(e.to_string()))
}

fn expand(template: &str, vars: &[(&str, String)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

fn spawn_group(cmd: &str, cwd: &Path, log: &Path) -> Result<Child, LaneError> {
    if let Some(p) = log.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    let out =
        std::fs::File::create(log).map_err(|e| LaneError(format!("{}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| LaneError(e.to_string()))?;
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .map_err(|e| LaneError(format!("cannot start `{cmd}`: {e}")))
}

fn kill_group(child: &mut Child) {
    let pid = child.id();
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Classifies a server or benchmark failure from its log.
pub fn classify_log(log: &str, timed_out: bool) -> (RunStatus, String) {
    let low = log.to_ascii_lowercase();
    let last = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .chars()
        .take(300)
        .collect::<String>();
    let is_oom_line = |l: &str| {
        let l = l.to_ascii_lowercase();
        l.contains("out of memory")
            || l.contains("outofmemory")
            || l.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == "oom")
    };
    if is_oom_line(&low) {
        let line = log
            .lines()
            .find(|l| is_oom_line(l))
            .unwrap_or("out of memory")
            .trim()
            .chars()
            .take(300)
            .collect();
        (RunStatus::Oom, line)
    } else if timed_out {
        (
            RunStatus::Timeout,
            format!("timed out; last log line: {last}"),
        )
    } else {
        (
            RunStatus::Failed,
            if last.is_empty() {
                "exited without output".into()
            } else {
                last
            },
        )
    }
}

fn wait_ready(
    child: &mut Child,
    port: u16,
    cfg: &ProcessLaneConfig,
) -> Result<(), (RunStatus, String, bool)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| (RunStatus::Failed, e.to_string(), false))?;
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err((
                RunStatus::Failed,
                format!("server exited ({status}) before it became ready"),
                false,
            ));
        }
        for p in &cfg.health_paths {
            let ok = client
                .get(format!("http://127.0.0.1:{port}{p}"))
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
        }
        if started.elapsed() >= cfg.ready_timeout {
            return Err((
                RunStatus::Timeout,
                format!("server not ready after {}s", cfg.ready_timeout.as_secs()),
                true,
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl ProcessLane {
    fn failed_row(
        &self,
        cand: &CandidateSpec,
        s: &ScenarioSpec,
        status: RunStatus,
        reason: String,
        log: &Path,
    ) -> BenchRow {
        let mut row = BenchRow::new(
            cand.framework,
            cand.candidate_id.clone(),
            self.config.model.clone(),
            status,
        );
        row.failure_reason = Some(reason);
        row.workload.scenario = Some(s.name.clone());
        row.workload.input_len = Some(s.input_len);
        row.workload.output_len = Some(s.output_len);
        row.workload.num_prompts = Some(self.config.num_prompts);
        row.server_command = Some(cand.server_command.clone());
        row.benchmark_command = Some(cand.benchmark_command.clone());
        row.artifacts = Some(crate::bench::row::ArtifactPaths {
            server_log: Some(log.display().to_string()),
            ..Default::default()
        });
        row
    }
}

impl BenchLane for ProcessLane {
    fn run_candidate(
        &mut self,
        cand: &CandidateSpec,
        scenarios: &[ScenarioSpec],
        tag: &RunTag,
        on_row: &mut dyn FnMut(BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError> {
        let port = free_port()?;
        let stem = format!(
            "r{}-{}-{}-{}",
            tag.round,
            tag.repeat,
            cand.framework.canonical(),
            cand.candidate_id
        );
        let server_log = self.config.log_dir.join(format!("{stem}.server.log"));
        let base_vars = vec![
            ("port", port.to_string()),
            ("framework", cand.framework.canonical().to_string()),
            (
                "checkout",
                shell_quote(&self.config.checkout.to_string_lossy()),
            ),
            ("num_prompts", self.config.num_prompts.to_string()),
        ];
        let server_cmd = expand(&cand.server_command, &base_vars);
        self.launches += 1;
        let mut server = spawn_group(&server_cmd, &self.config.checkout, &server_log)?;
        if let Err((status, why, timed_out)) = wait_ready(&mut server, port, &self.config) {
            kill_group(&mut server);
            let (st, reason) = match classify_log(&log_tail(&server_log, 50), timed_out) {
                (RunStatus::Oom, r) => (RunStatus::Oom, r),
                _ => (status, format!("{why}; {}", log_tail(&server_log, 1))),
            };
            let _ = st;
            for s in scenarios {
                on_row(self.failed_row(cand, s, st, reason.clone(), &server_log))?;
            }
            return Ok(());
        }
        for s in scenarios {
            let row_out = self
                .config
                .log_dir
                .join(format!("{stem}-{}.row.json", s.name));
            let _ = std::fs::remove_file(&row_out);
            let bench_log = self
                .config
                .log_dir
                .join(format!("{stem}-{}.bench.log", s.name));
            let mut vars = base_vars.clone();
            vars.extend([
                ("scenario", s.name.clone()),
                ("input_len", s.input_len.to_string()),
                ("output_len", s.output_len.to_string()),
                ("row_out", shell_quote(&row_out.to_string_lossy())),
            ]);
            let cmd = expand(&cand.benchmark_command, &vars);
            let mut bench = match spawn_group(&cmd, &self.config.checkout, &bench_log) {
                Ok(b) => b,
                Err(e) => {
                    on_row(self.failed_row(cand, s, RunStatus::Failed, e.0, &bench_log))?;
                    continue;
                }
            };
            let started = Instant::now();
            let mut timed_out = false;
            let exit = loop {
                match bench.try_wait() {
                    Ok(Some(st)) => break st.code(),
                    Ok(None) if started.elapsed() >= self.config.bench_timeout => {
                        kill_group(&mut bench);
                        timed_out = true;
                        break None;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                    Err(_) => break None,
                }
            };
            let parsed = std::fs::read_to_string(&row_out)
                .ok()
                .and_then(|t| crate::bench::row::parse_jsonl(&t).ok())
                .and_then(|rows| rows.into_iter().next());
            let row = match parsed {
                Some(mut row) if !timed_out => {
                    row.workload.scenario = Some(s.name.clone());
                    row.server_command = Some(server_cmd.clone());
                    row.benchmark_command = Some(cmd.clone());
                    row
                }
                _ => {
                    // The server may have died under load (OOM) while the client failed.
                    let server_dead = matches!(server.try_wait(), Ok(Some(_)));
                    let log = if server_dead {
                        log_tail(&server_log, 50)
                    } else {
                        log_tail(&bench_log, 50)
                    };
                    let (st, reason) = classify_log(&log, timed_out);
                    let reason = format!("{reason} (benchmark exit {:?})", exit);
                    self.failed_row(
                        cand,
                        s,
                        st,
                        reason,
                        if server_dead { &server_log } else { &bench_log },
                    )
                }
            };
            on_row(row)?;
        }
        kill_group(&mut server);
        Ok(())
    }

    fn help_snapshots(&mut self, framework: Framework) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, cmd) in self
            .config
            .help_commands
            .get(&framework)
            .cloned()
            .unwrap_or_default()
        {
            let text = Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .current_dir(&self.config.checkout)
                .output()
                .map(|o| {
                    let mut t = String::from_utf8_lossy(&o.stdout).to_string();
                    t.push_str(&String::from_utf8_lossy(&o.stderr));
                    t
                })
                .unwrap_or_else(|e| format!("could not run `{cmd}`: {e}"));
            out.push((name, format!("$ {cmd}\n{text}")));
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
        let mut child = spawn_group(&cmd, &self.config.checkout, &log)?;
        let status = child.wait().map_err(|e| LaneError(e.to_string()))?;
        if !status.success() {
            return Err(LaneError(format!(
                "profile command failed ({status}): {}",
                log_tail(&log, 3)
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
    fn classification() {
        assert_eq!(
            classify_log("x\ntorch.OutOfMemoryError: CUDA out of memory\n", false).0,
            RunStatus::Oom
        );
        assert_eq!(classify_log("hang", true).0, RunStatus::Timeout);
        assert_eq!(classify_log("the room is fine", false).0, RunStatus::Failed);
        assert_eq!(classify_log("killed: OOM", false).0, RunStatus::Oom);
        let (st, why) = classify_log("a\nValueError: bad flag\n\n", false);
        assert_eq!(st, RunStatus::Failed);
        assert_eq!(why, "ValueError: bad flag");
    }

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
