//! `summary.md`, `winning-commands.md` and the flat CSV export of `candidates.jsonl`
//! (ARCHITECTURE.md, *Benchmark rows, SLA and ranking*). Rendered in Rust rather than handlebars:
//! every cell needs escaping and missing-value handling that a template would have to reimplement.
//!
//! SLA verdicts shown here are recomputed from each row's recorded thresholds
//! ([`rank::sla_passed`]), so apply the campaign SLA to the rows first
//! ([`rank::apply_sla`]) when the rows may carry other thresholds.

use super::md::{self, cell, code_cell, fenced, num, pct_of_fraction, MISSING};
use super::rank::{self, compare_rows, scenarios_in_order, sla_passed, RankMetric};
use super::row::{BenchRow, RunStatus};
use super::sla::Sla;
use crate::framework::Framework;
use std::fmt::Write as _;

/// Why a row is not a winner candidate: the failure of a run, measured lengths off the plan
/// ("not comparable: measured input p50 510 tokens vs 1000 planned (-49.0%)"), or each SLA
/// threshold it missed ("SLA failed: p50 TTFT 2345.0 ms > 2000 ms"). `None` for an OK,
/// SLA-passing row that ran the planned workload.
pub fn rejection_reason(row: &BenchRow) -> Option<String> {
    let off_plan = super::measured::off_plan(row).map(|w| format!("not comparable: {w}"));
    match (off_plan, sla_rejection(row)) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

fn sla_rejection(row: &BenchRow) -> Option<String> {
    if row.status != RunStatus::Ok {
        let detail = row
            .failure_reason
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("no failure reason recorded");
        return Some(format!("{}: {detail}", row.status));
    }
    if sla_passed(row) {
        return None;
    }
    let sla = Sla::from_row(row);
    let m = &row.metrics;
    let mut misses = Vec::new();
    let mut latency = |name: &str, limit: Option<f64>, value: Option<f64>| {
        if let Some(limit) = limit {
            match value {
                Some(v) if v <= limit => {}
                Some(v) => misses.push(format!("{name} {v:.1} ms > {limit} ms")),
                None => misses.push(format!("{name} not measured (limit {limit} ms)")),
            }
        }
    };
    latency("p50 TTFT", sla.max_p50_ttft_ms, m.p50_ttft_ms);
    latency("p50 TPOT", sla.max_p50_tpot_ms, m.p50_tpot_ms);
    latency("p50 E2E", sla.max_p50_e2e_ms, m.p50_e2e_ms);
    if let Some(min) = sla.min_success_rate {
        match m.success_rate {
            Some(v) if v >= min => {}
            Some(v) => misses.push(format!(
                "success rate {:.1}% < {:.1}%",
                v * 100.0,
                min * 100.0
            )),
            None => misses.push(format!(
                "success rate not measured (minimum {:.1}%)",
                min * 100.0
            )),
        }
    }
    Some(format!("SLA failed: {}", misses.join("; ")))
}

/// The SLA thresholds as a short sentence ("p50 TTFT ≤ 2000 ms, success rate ≥ 99.0%").
pub fn describe_sla(sla: &Sla) -> String {
    let mut parts = Vec::new();
    if let Some(v) = sla.max_p50_ttft_ms {
        parts.push(format!("p50 TTFT ≤ {v} ms"));
    }
    if let Some(v) = sla.max_p50_tpot_ms {
        parts.push(format!("p50 TPOT ≤ {v} ms"));
    }
    if let Some(v) = sla.max_p50_e2e_ms {
        parts.push(format!("p50 E2E ≤ {v} ms"));
    }
    if let Some(v) = sla.min_success_rate {
        parts.push(format!("success rate ≥ {:.1}%", v * 100.0));
    }
    if parts.is_empty() {
        "no thresholds".to_string()
    } else {
        parts.join(", ")
    }
}

fn sla_verdict(row: &BenchRow) -> &'static str {
    if sla_passed(row) {
        "pass"
    } else {
        "fail"
    }
}

fn frameworks_present(rows: &[BenchRow]) -> Vec<Framework> {
    Framework::ALL
        .into_iter()
        .filter(|fw| rows.iter().any(|r| r.framework == *fw))
        .collect()
}

fn distinct<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn artifacts_cell(row: &BenchRow) -> String {
    let Some(a) = &row.artifacts else {
        return MISSING.to_string();
    };
    let parts: Vec<String> = [("raw", &a.raw_result), ("log", &a.server_log)]
        .into_iter()
        .filter_map(|(label, path)| {
            path.as_deref()
                .map(|p| format!("{label}: {}", code_cell(p)))
        })
        .collect();
    if parts.is_empty() {
        MISSING.to_string()
    } else {
        parts.join("<br>")
    }
}

fn command_cell(command: Option<&str>) -> String {
    command.map_or_else(|| MISSING.to_string(), code_cell)
}

fn status_counts(rows: &[BenchRow]) -> String {
    let count = |s: RunStatus| rows.iter().filter(|r| r.status == s).count();
    format!(
        "{} rows (ok {}, failed {}, oom {}, timeout {}, skipped {}; smoke {})",
        rows.len(),
        count(RunStatus::Ok),
        count(RunStatus::Failed),
        count(RunStatus::Oom),
        count(RunStatus::Timeout),
        count(RunStatus::Skipped),
        rows.iter().filter(|r| r.smoke).count()
    )
}

fn ranking_sentence(metric: RankMetric) -> String {
    format!(
        "status ok, SLA passed, {}, {}, lower p50 TTFT (mean when p50 is absent), lower p50 TPOT \
         (same), fewer GPUs; a missing throughput ranks below any measured one. Smoke rows are \
         flow checks and never win",
        metric.label(),
        metric.secondary().label()
    )
}

/// Renders `summary.md`: best command per framework and scenario, the cross-framework
/// comparison per scenario, and every failed or SLA-failing candidate with its reason.
pub fn render_summary_md(rows: &[BenchRow], metric: RankMetric) -> String {
    let mut out = String::new();
    let scenarios = scenarios_in_order(rows);
    let frameworks = frameworks_present(rows);
    let winners = rank::winners_by(rows, metric);

    out.push_str("# Benchmark summary\n\n");
    let models = distinct(rows.iter().map(|r| r.model.as_str()));
    let models: Vec<String> = models.iter().map(|m| code_cell(m)).collect();
    let _ = writeln!(
        out,
        "- Model: {}",
        if models.is_empty() {
            MISSING.to_string()
        } else {
            models.join(", ")
        }
    );
    let _ = writeln!(out, "- Candidates: {}", status_counts(rows));
    let slas = distinct(rows.iter().map(Sla::from_row));
    let slas: Vec<String> = slas.iter().map(describe_sla).collect();
    let _ = writeln!(
        out,
        "- SLA: {}",
        if slas.is_empty() {
            MISSING.to_string()
        } else {
            slas.join(" / ")
        }
    );
    let _ = writeln!(out, "- Ranking: {}.", ranking_sentence(metric));
    out.push('\n');

    out.push_str("## Best commands by framework\n\n");
    if frameworks.is_empty() {
        out.push_str("No candidates.\n\n");
    }
    for fw in &frameworks {
        let _ = writeln!(out, "### {}\n", fw.display_name());
        out.push_str(&md::header(&[
            "scenario",
            "candidate",
            "SLA",
            "req/s",
            "output tok/s",
            "p50 TTFT ms",
            "p50 TPOT ms",
            "success",
            "accept len",
            "pre-scheduler ms",
            "cache hit",
            "GPUs",
            "server command",
            "artifacts",
        ]));
        for scenario in &scenarios {
            let tried = rows
                .iter()
                .filter(|r| r.framework == *fw && r.scenario() == scenario && !r.smoke)
                .count();
            match winners.get(&(*fw, scenario.clone())) {
                Some(w) => out.push_str(&md::row(&[
                    cell(scenario),
                    code_cell(&w.candidate_id),
                    sla_verdict(w).to_string(),
                    num(w.metrics.request_throughput, 2),
                    num(w.metrics.output_token_throughput, 1),
                    num(w.metrics.p50_ttft_ms, 1),
                    num(w.metrics.p50_tpot_ms, 2),
                    pct_of_fraction(w.metrics.success_rate),
                    num(w.spec_decode.as_ref().and_then(|s| s.mean_accept_length), 2),
                    num(w.phase_metrics.as_ref().and_then(|p| p.pre_scheduler_ms), 2),
                    pct_of_fraction(w.cache.as_ref().and_then(|c| c.prefix_cache_hit_rate)),
                    md::opt(w.hardware.gpu_count),
                    command_cell(w.server_command.as_deref()),
                    artifacts_cell(w),
                ])),
                None => {
                    let mut cells = vec![
                        cell(scenario),
                        MISSING.to_string(),
                        format!("no ok + SLA-passing candidate ({tried} tried)"),
                    ];
                    cells.extend(std::iter::repeat_n(MISSING.to_string(), 11));
                    out.push_str(&md::row(&cells));
                }
            }
        }
        out.push('\n');
    }

    out.push_str("## Cross-framework best comparison\n\n");
    let _ = writeln!(
        out,
        "Each framework's best ok + SLA-passing candidate per scenario, ranked; `vs best` is \
         the difference in {} from the scenario's best.\n",
        metric.label()
    );
    for scenario in &scenarios {
        let _ = writeln!(out, "### {}\n", cell(scenario));
        let mut best: Vec<&BenchRow> = winners
            .iter()
            .filter(|((_, s), _)| s == scenario)
            .map(|(_, r)| r)
            .collect();
        best.sort_by(|a, b| compare_rows(a, b, metric));
        out.push_str(&md::header(&[
            "rank",
            "framework",
            "candidate",
            "req/s",
            "output tok/s",
            "p50 TTFT ms",
            "p50 TPOT ms",
            "GPUs",
            "vs best",
        ]));
        let top = best.first().and_then(|r| metric.value(&r.metrics));
        for (i, w) in best.iter().enumerate() {
            let vs = match (top, metric.value(&w.metrics)) {
                (Some(t), Some(v)) if t != 0.0 => Some((v - t) / t * 100.0),
                _ => None,
            };
            out.push_str(&md::row(&[
                (i + 1).to_string(),
                w.framework.display_name().to_string(),
                code_cell(&w.candidate_id),
                num(w.metrics.request_throughput, 2),
                num(w.metrics.output_token_throughput, 1),
                num(w.metrics.p50_ttft_ms, 1),
                num(w.metrics.p50_tpot_ms, 2),
                md::opt(w.hardware.gpu_count),
                md::signed_pct(vs),
            ]));
        }
        let missing: Vec<&str> = frameworks
            .iter()
            .filter(|fw| !winners.contains_key(&(**fw, scenario.clone())))
            .map(|fw| fw.display_name())
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(
                out,
                "\nNo ok + SLA-passing candidate: {}.",
                missing.join(", ")
            );
        }
        out.push('\n');
    }

    out.push_str("## Failed or SLA-failing candidates\n\n");
    let mut rejected: Vec<&BenchRow> = rows
        .iter()
        .filter(|r| rejection_reason(r).is_some())
        .collect();
    let scenario_index = |r: &BenchRow| scenarios.iter().position(|s| s == r.scenario());
    rejected.sort_by(|a, b| {
        a.framework
            .cmp(&b.framework)
            .then_with(|| scenario_index(a).cmp(&scenario_index(b)))
            .then_with(|| compare_rows(a, b, metric))
    });
    if rejected.is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str(&md::header(&[
            "framework",
            "scenario",
            "candidate",
            "status",
            "SLA",
            "reason",
        ]));
        for r in rejected {
            let mut reason = rejection_reason(r).unwrap_or_default();
            if r.smoke {
                reason.push_str(" (smoke run)");
            }
            out.push_str(&md::row(&[
                r.framework.display_name().to_string(),
                cell(r.scenario()),
                code_cell(&r.candidate_id),
                r.status.to_string(),
                // A run that did not finish has no SLA verdict to show.
                if r.status == RunStatus::Ok {
                    sla_verdict(r).to_string()
                } else {
                    MISSING.to_string()
                },
                cell(&reason),
            ]));
        }
    }
    out
}

/// Renders `winning-commands.md`: for each framework and scenario, the winner's exact
/// server and benchmark commands in fenced blocks, ready to copy.
pub fn render_winning_commands_md(rows: &[BenchRow], metric: RankMetric) -> String {
    let mut out = String::new();
    let winners = rank::winners_by(rows, metric);
    let scenarios = scenarios_in_order(rows);
    out.push_str("# Winning commands\n\n");
    let _ = writeln!(
        out,
        "The best ok + SLA-passing candidate per framework and scenario (ranking: {}).\n",
        ranking_sentence(metric)
    );
    for fw in frameworks_present(rows) {
        let _ = writeln!(out, "## {}\n", fw.display_name());
        for scenario in &scenarios {
            match winners.get(&(fw, scenario.clone())) {
                None => {
                    let _ = writeln!(
                        out,
                        "### {}\n\nNo ok + SLA-passing candidate; see summary.md.\n",
                        cell(scenario)
                    );
                }
                Some(w) => {
                    let _ = writeln!(
                        out,
                        "### {} — {}\n",
                        cell(scenario),
                        code_cell(&w.candidate_id)
                    );
                    let version = match (&w.framework_version, &w.framework_commit) {
                        (Some(v), Some(c)) => format!("{v} ({c})"),
                        (Some(v), None) => v.clone(),
                        (None, Some(c)) => c.clone(),
                        (None, None) => MISSING.to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "- {} {} req/s, {} output tok/s, p50 TTFT {} ms, p50 TPOT {} ms, {} GPU(s); version {}\n",
                        fw.display_name(),
                        num(w.metrics.request_throughput, 2),
                        num(w.metrics.output_token_throughput, 1),
                        num(w.metrics.p50_ttft_ms, 1),
                        num(w.metrics.p50_tpot_ms, 2),
                        md::opt(w.hardware.gpu_count),
                        version
                    );
                    out.push_str("Server:\n\n");
                    out.push_str(&command_block(w.server_command.as_deref()));
                    out.push_str("\nBenchmark:\n\n");
                    out.push_str(&command_block(w.benchmark_command.as_deref()));
                    out.push('\n');
                }
            }
        }
    }
    out
}

fn command_block(command: Option<&str>) -> String {
    match command {
        Some(c) => fenced("bash", c),
        None => "Not recorded.\n".to_string(),
    }
}

/// Column names of the CSV export, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "framework",
    "framework_version",
    "framework_commit",
    "candidate_id",
    "model",
    "round",
    "commit",
    "repeat",
    "smoke",
    "status",
    "failure_reason",
    "gpu_model",
    "gpu_count",
    "visible_devices",
    "precision",
    "quantization",
    "tokenizer",
    "workload_kind",
    "scenario",
    "dataset_path",
    "input_len",
    "output_len",
    "input_len_p50",
    "input_len_p95",
    "output_len_p50",
    "output_len_p95",
    "num_prompts",
    "request_rate",
    "max_concurrency",
    "endpoint",
    "sla_max_p50_ttft_ms",
    "sla_max_p50_tpot_ms",
    "sla_min_success_rate",
    "sla_max_p50_e2e_ms",
    "sla_passed",
    "request_throughput",
    "output_token_throughput",
    "total_token_throughput",
    "p50_ttft_ms",
    "mean_ttft_ms",
    "p99_ttft_ms",
    "p50_tpot_ms",
    "mean_tpot_ms",
    "p99_tpot_ms",
    "p50_e2e_ms",
    "mean_e2e_ms",
    "p99_e2e_ms",
    "success_rate",
    "spec_decode_enabled",
    "spec_decode_algorithm",
    "spec_decode_num_steps",
    "spec_mean_accept_length",
    "pre_scheduler_ms",
    "scheduler_ms",
    "tokenizer_ms",
    "queue_ms",
    "prefix_cache_enabled",
    "prefix_cache_hit_rate",
    "gpu_memory_utilization",
    "kv_cache_dtype",
    "cpu_offload_gb",
    "server_command",
    "benchmark_command",
    "raw_result",
    "server_log",
];

fn o<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_record(row: &BenchRow) -> Vec<String> {
    let w = &row.workload;
    let m = &row.metrics;
    let sd = row.spec_decode.as_ref();
    let ph = row.phase_metrics.as_ref();
    let ca = row.cache.as_ref();
    let me = row.memory.as_ref();
    let ar = row.artifacts.as_ref();
    vec![
        row.framework.to_string(),
        o(row.framework_version.as_ref()),
        o(row.framework_commit.as_ref()),
        row.candidate_id.clone(),
        row.model.clone(),
        row.round.to_string(),
        o(row.commit.as_ref()),
        row.repeat.to_string(),
        row.smoke.to_string(),
        row.status.to_string(),
        o(row.failure_reason.as_ref()),
        o(row.hardware.gpu_model.as_ref()),
        o(row.hardware.gpu_count),
        o(row.hardware.visible_devices.as_ref()),
        o(row.precision.as_ref()),
        o(row.quantization.as_ref()),
        o(row.tokenizer.as_ref()),
        o(w.kind.as_ref()),
        row.scenario().to_string(),
        o(w.dataset_path.as_ref()),
        o(w.input_len),
        o(w.output_len),
        o(w.input_len_p50),
        o(w.input_len_p95),
        o(w.output_len_p50),
        o(w.output_len_p95),
        o(w.num_prompts),
        o(w.request_rate),
        o(w.max_concurrency),
        o(w.endpoint.as_ref()),
        o(row.sla.max_p50_ttft_ms),
        o(row.sla.max_p50_tpot_ms),
        o(row.sla.min_success_rate),
        o(row.sla.max_p50_e2e_ms),
        sla_passed(row).to_string(),
        o(m.request_throughput),
        o(m.output_token_throughput),
        o(m.total_token_throughput),
        o(m.p50_ttft_ms),
        o(m.mean_ttft_ms),
        o(m.p99_ttft_ms),
        o(m.p50_tpot_ms),
        o(m.mean_tpot_ms),
        o(m.p99_tpot_ms),
        o(m.p50_e2e_ms),
        o(m.mean_e2e_ms),
        o(m.p99_e2e_ms),
        o(m.success_rate),
        o(sd.and_then(|s| s.enabled)),
        o(sd.and_then(|s| s.algorithm.as_ref())),
        o(sd.and_then(|s| s.num_steps)),
        o(sd.and_then(|s| s.mean_accept_length)),
        o(ph.and_then(|p| p.pre_scheduler_ms)),
        o(ph.and_then(|p| p.scheduler_ms)),
        o(ph.and_then(|p| p.tokenizer_ms)),
        o(ph.and_then(|p| p.queue_ms)),
        o(ca.and_then(|c| c.prefix_cache_enabled)),
        o(ca.and_then(|c| c.prefix_cache_hit_rate)),
        o(me.and_then(|x| x.gpu_memory_utilization)),
        o(me.and_then(|x| x.kv_cache_dtype.as_ref())),
        o(me.and_then(|x| x.cpu_offload_gb)),
        o(row.server_command.as_ref()),
        o(row.benchmark_command.as_ref()),
        o(ar.and_then(|a| a.raw_result.as_ref())),
        o(ar.and_then(|a| a.server_log.as_ref())),
    ]
}

/// Renders every row as one CSV line with [`CSV_COLUMNS`]. Unlike the Markdown reports,
/// a missing value is an empty cell (the CSV convention for null that spreadsheet and
/// dataframe tools read as missing), never 0. `sla_passed` is the recomputed verdict.
pub fn render_csv(rows: &[BenchRow]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let mut write = || -> Result<Vec<u8>, csv::Error> {
        writer.write_record(CSV_COLUMNS)?;
        for row in rows {
            writer.write_record(csv_record(row))?;
        }
        writer.flush()?;
        Ok(writer.get_ref().clone())
    };
    match write() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        // Writing strings into memory cannot fail; keep the message rather than panic.
        Err(e) => format!("csv error: {e}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_row(id: &str) -> BenchRow {
        let mut r = BenchRow::new(Framework::Sglang, id, "m", RunStatus::Ok);
        r.workload.scenario = Some("chat".into());
        r.metrics.request_throughput = Some(1.0);
        r.metrics.success_rate = Some(1.0);
        r
    }

    #[test]
    fn sla_reasons_name_value_and_limit() {
        let mut r = ok_row("a");
        r.sla.max_p50_ttft_ms = Some(2000.0);
        r.sla.min_success_rate = Some(0.99);
        r.sla.max_p50_tpot_ms = Some(50.0);
        r.metrics.p50_ttft_ms = Some(2345.0);
        r.metrics.success_rate = Some(0.95);
        assert_eq!(
            rejection_reason(&r).unwrap(),
            "SLA failed: p50 TTFT 2345.0 ms > 2000 ms; p50 TPOT not measured (limit 50 ms); \
             success rate 95.0% < 99.0%"
        );
        r.sla.passed = Some(true);
        assert!(rejection_reason(&r).is_some(), "input verdict is ignored");
    }

    #[test]
    fn failed_runs_report_their_status_and_reason() {
        let mut r = ok_row("a");
        r.status = RunStatus::Oom;
        assert_eq!(
            rejection_reason(&r).unwrap(),
            "oom: no failure reason recorded"
        );
        r.failure_reason = Some("CUDA out of memory".into());
        assert_eq!(rejection_reason(&r).unwrap(), "oom: CUDA out of memory");
        assert_eq!(rejection_reason(&ok_row("b")), None);
    }

    #[test]
    fn csv_has_one_line_per_row_and_empty_missing_values() {
        let mut a = ok_row("a");
        a.server_command = Some("x | tee \"log\"".into());
        let b = ok_row("b");
        let text = render_csv(&[a, b]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(headers.len(), CSV_COLUMNS.len());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 2);
        let idx = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
        assert_eq!(&records[0][idx("server_command")], "x | tee \"log\"");
        assert_eq!(&records[0][idx("p50_ttft_ms")], "");
        assert_eq!(&records[0][idx("sla_passed")], "true");
    }
}
