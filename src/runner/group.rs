//! Launch groups: a server launch is expensive (minutes for large models), so each distinct
//! server configuration is launched once and every scenario and benchmark-only knob runs
//! against it. Launches are counted so reports can show the GPU time spent.

use super::bench::{run_benchmark_with, BenchOutcome, BenchSpec};
use super::classify::{classify_failure, ExitKind};
use super::process::{CommandSpec, OsLauncher, ProcessLauncher};
use super::server::{LaunchSpec, ServerProcess, StopReport};
use crate::bench::row::{parse_jsonl, ArtifactPaths, BenchRow, RunStatus};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

/// One benchmark run against a launched server.
#[derive(Debug, Clone)]
pub struct BenchInvocation {
    pub candidate_id: String,
    pub scenario: String,
    pub command: CommandSpec,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub log_path: PathBuf,
    /// Where the benchmark writes its normalized row (the built-in client's `--out`), if any.
    pub row_path: Option<PathBuf>,
    /// Identity and workload fields used for rows of failed runs.
    pub row_template: BenchRow,
}

/// One distinct server configuration and every run that uses it.
#[derive(Debug, Clone)]
pub struct LaunchGroup {
    pub server: LaunchSpec,
    pub runs: Vec<BenchInvocation>,
}

/// What a group produced: one row and outcome per run, in order.
#[derive(Debug, Clone)]
pub struct GroupResult {
    /// Server launches performed (0 or 1 per group).
    pub launches: u32,
    pub rows: Vec<BenchRow>,
    /// `None` for runs that never started because the server failed.
    pub outcomes: Vec<Option<BenchOutcome>>,
    /// Why the server could not be used, if so.
    pub server_error: Option<String>,
    pub stop: Option<StopReport>,
}

/// Turns a finished run into its row; the engine supplies framework-specific parsing.
pub type RowReader<'a> = dyn Fn(&BenchInvocation, &BenchOutcome) -> Result<BenchRow, String> + 'a;

/// Reads the first row of `invocation.row_path` (what `sota-bot bench run --out` writes).
pub fn read_row_jsonl(
    invocation: &BenchInvocation,
    _outcome: &BenchOutcome,
) -> Result<BenchRow, String> {
    let path = invocation
        .row_path
        .as_ref()
        .ok_or("the invocation names no row file")?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let rows = parse_jsonl(&text).map_err(|errs| {
        errs.iter()
            .map(|e| format!("{}: {e}", path.display()))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    rows.into_iter()
        .next()
        .ok_or_else(|| format!("{} holds no row", path.display()))
}

/// Merges groups whose server configuration (command, env, cwd) is identical, keeping the
/// first group's launch settings, so each distinct configuration launches once.
pub fn merge_groups(groups: Vec<LaunchGroup>) -> Vec<LaunchGroup> {
    let mut out: Vec<LaunchGroup> = Vec::new();
    for g in groups {
        match out.iter_mut().find(|o| {
            o.server.command == g.server.command
                && o.server.env == g.server.env
                && o.server.cwd == g.server.cwd
        }) {
            Some(existing) => existing.runs.extend(g.runs),
            None => out.push(g),
        }
    }
    out
}

/// Launches the group's server with real processes and runs every invocation against it.
pub fn run_launch_group(group: &LaunchGroup, read_row: &RowReader<'_>) -> GroupResult {
    run_launch_group_with(&OsLauncher, group, read_row)
}

/// As [`run_launch_group`], through `launcher`.
pub fn run_launch_group_with(
    launcher: &dyn ProcessLauncher,
    group: &LaunchGroup,
    read_row: &RowReader<'_>,
) -> GroupResult {
    run_launch_group_each(
        launcher,
        group,
        read_row,
        &mut |_| ControlFlow::Continue(()),
    )
}

/// As [`run_launch_group_with`], handing each row to `on_row` as soon as it is known (so a
/// caller can persist it before the next run starts). `ControlFlow::Break` stops the group:
/// the server is stopped and the remaining runs are not started.
pub fn run_launch_group_each(
    launcher: &dyn ProcessLauncher,
    group: &LaunchGroup,
    read_row: &RowReader<'_>,
    on_row: &mut dyn FnMut(&BenchRow) -> ControlFlow<()>,
) -> GroupResult {
    let server_command = group
        .server
        .secrets
        .scrub(&group.server.command.display())
        .into_owned();
    let server_log = group.server.log_path.display().to_string();
    let finish = |mut row: BenchRow, inv: &BenchInvocation| {
        if row.server_command.is_none() {
            row.server_command = Some(server_command.clone());
        }
        if row.benchmark_command.is_none() {
            row.benchmark_command = Some(
                group
                    .server
                    .secrets
                    .scrub(&inv.command.display())
                    .into_owned(),
            );
        }
        let artifacts = row.artifacts.get_or_insert_with(ArtifactPaths::default);
        artifacts
            .server_log
            .get_or_insert_with(|| server_log.clone());
        row
    };
    let failed_row = |inv: &BenchInvocation, status: RunStatus, reason: String| {
        let mut row = inv.row_template.clone();
        row.status = status;
        row.failure_reason = Some(reason);
        row.metrics = Default::default();
        row
    };
    let mut server = match ServerProcess::launch_with(launcher, group.server.clone()) {
        Ok(s) => s,
        Err(e) => {
            let (status, reason) = e.classification();
            let reason = format!("server launch: {reason}");
            let mut rows = Vec::with_capacity(group.runs.len());
            for inv in &group.runs {
                let row = finish(failed_row(inv, status, reason.clone()), inv);
                let flow = on_row(&row);
                rows.push(row);
                if flow.is_break() {
                    break;
                }
            }
            return GroupResult {
                launches: 1,
                outcomes: vec![None; rows.len()],
                rows,
                server_error: Some(reason),
                stop: None,
            };
        }
    };
    let mut rows = Vec::with_capacity(group.runs.len());
    let mut outcomes = Vec::with_capacity(group.runs.len());
    for inv in &group.runs {
        let spec = BenchSpec {
            command: inv.command.clone(),
            env: inv.env.clone(),
            cwd: group.server.cwd.clone(),
            timeout: inv.timeout,
            log_path: inv.log_path.clone(),
            secrets: group.server.secrets.clone(),
        };
        let outcome = run_benchmark_with(launcher, &spec);
        let row = if outcome.status == RunStatus::Ok {
            match read_row(inv, &outcome) {
                Ok(row) => row,
                Err(reason) => failed_row(
                    inv,
                    RunStatus::Failed,
                    format!("benchmark output: {reason}"),
                ),
            }
        } else if !server.is_running() {
            // The server died under load (an OOM most often): its log says why, not the
            // client's connection errors.
            let c = classify_failure(&server.log_tail(), &ExitKind::Code(1));
            let status = match c.status {
                RunStatus::Ok => RunStatus::Failed,
                s => s,
            };
            let why = c.reason.unwrap_or_else(|| "no reason in its log".into());
            failed_row(
                inv,
                status,
                format!("server exited during the benchmark: {why}"),
            )
        } else {
            let reason = outcome
                .failure_reason
                .clone()
                .unwrap_or_else(|| outcome.status.to_string());
            failed_row(inv, outcome.status, reason)
        };
        let mut row = finish(row, inv);
        if let Some(a) = row.artifacts.as_mut() {
            a.raw_result
                .get_or_insert_with(|| inv.log_path.display().to_string());
        }
        let flow = on_row(&row);
        rows.push(row);
        outcomes.push(Some(outcome));
        if flow.is_break() {
            break;
        }
    }
    let stop = server.stop().ok();
    GroupResult {
        launches: 1,
        rows,
        outcomes,
        server_error: None,
        stop,
    }
}
