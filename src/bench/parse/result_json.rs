//! One result object (from JSON or a console block) -> one [`BenchRow`].
//!
//! Key names differ across tools and versions; each metric is read through a list of
//! aliases (`e2el` vs `e2e_latency`, `median` vs `p50`, `total_token_throughput` vs
//! `total_throughput`, `output_throughput` vs `output_token_throughput`).

use super::json_text::{kind_name, Record};
use super::{ParseContext, ParseError, ParseErrorKind};
use crate::bench::row::{
    ArtifactPaths, BenchRow, CacheBlock, Metrics, RequestRate, RunStatus, SpecDecode, Workload,
};
use crate::framework::Framework;
use serde_json::{Map, Value};

type Obj = Map<String, Value>;

/// A numeric field: `Ok(None)` when absent, null, `"None"`, or non-finite.
fn num(obj: &Obj, keys: &[&str]) -> Result<Option<f64>, ParseError> {
    for key in keys {
        let Some(v) = obj.get(*key) else { continue };
        let parsed = match v {
            Value::Null => None,
            Value::Number(n) => n.as_f64(),
            Value::String(s) => {
                let t = s.trim();
                if t.is_empty() || t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("null")
                {
                    None
                } else {
                    Some(t.parse::<f64>().map_err(|_| {
                        ParseError::new(
                            ParseErrorKind::WrongType,
                            format!("expected a number, found the string {s:?}"),
                        )
                        .at_key(key)
                    })?)
                }
            }
            other => {
                return Err(ParseError::new(
                    ParseErrorKind::WrongType,
                    format!("expected a number, found {}", kind_name(other)),
                )
                .at_key(key))
            }
        };
        // Python's `-0.00` and `nan`/`inf` placeholders: keep finite values, fold -0 to 0.
        return Ok(parsed
            .filter(|f| f.is_finite())
            .map(|f| if f == 0.0 { 0.0 } else { f }));
    }
    Ok(None)
}

/// A non-negative count (tokens, requests); fractional or negative values are errors.
fn count(obj: &Obj, keys: &[&str]) -> Result<Option<u64>, ParseError> {
    let Some(v) = num(obj, keys)? else {
        return Ok(None);
    };
    if v < 0.0 || v.fract() != 0.0 || v > 1e18 {
        let key = keys
            .iter()
            .find(|k| obj.contains_key(**k))
            .copied()
            .unwrap_or("");
        return Err(ParseError::new(
            ParseErrorKind::WrongType,
            format!("expected a non-negative whole number, found {v}"),
        )
        .at_key(key));
    }
    Ok(Some(v as u64))
}

fn string(obj: &Obj, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match obj.get(*k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    })
}

const METRIC_NAMES: [(&str, &[&str]); 4] = [
    ("ttft", &["ttft"]),
    ("tpot", &["tpot"]),
    ("itl", &["itl"]),
    ("e2e", &["e2e_latency", "e2el"]),
];

fn stat_keys(stat: &str) -> Vec<&str> {
    match stat {
        "p50" => vec!["median", "p50"],
        other => vec![other],
    }
}

/// Reads `{stat}_{metric}_ms` through the aliases.
fn latency(obj: &Obj, stat: &str, metric: &str) -> Result<Option<f64>, ParseError> {
    let names = METRIC_NAMES
        .iter()
        .find(|(m, _)| *m == metric)
        .map(|(_, n)| *n)
        .unwrap_or(&[]);
    let keys: Vec<String> = stat_keys(stat)
        .iter()
        .flat_map(|s| names.iter().map(move |n| format!("{s}_{n}_ms")))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    num(obj, &refs)
}

fn f64_value(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Builds the row of record `index` (1-based).
pub(super) fn to_row(
    framework: Framework,
    rec: &Record,
    index: usize,
    many: bool,
    ctx: &ParseContext,
) -> Result<BenchRow, ParseError> {
    let o = &rec.object;
    let base_id = ctx
        .candidate_id
        .clone()
        .unwrap_or_else(|| format!("{framework}-raw"));
    let candidate_id = if many {
        format!("{base_id}.{index}")
    } else {
        base_id
    };
    let model = ctx
        .model
        .clone()
        .or_else(|| string(o, &["model_id", "model", "tokenizer_id"]))
        .unwrap_or_else(|| "unknown".to_string());

    let completed = count(o, &["completed"])?;
    let failed = count(o, &["failed"])?;
    let num_prompts = count(o, &["num_prompts"])?.or(ctx.num_prompts);
    let duration = num(o, &["duration"])?;

    let mut m = Metrics {
        request_throughput: num(o, &["request_throughput"])?,
        output_token_throughput: num(o, &["output_throughput", "output_token_throughput"])?,
        total_token_throughput: num(o, &["total_token_throughput", "total_throughput"])?,
        ..Metrics::default()
    };
    let mut derived: Vec<&str> = Vec::new();
    // The late-2024 SGLang format lacks these; the tools compute them exactly this way.
    if m.request_throughput.is_none() {
        if let (Some(c), Some(d)) = (completed, duration.filter(|d| *d > 0.0)) {
            m.request_throughput = Some(c as f64 / d);
            derived.push("request_throughput");
        }
    }
    if m.total_token_throughput.is_none() {
        let tin = count(o, &["total_input_tokens"])?;
        let tout = count(o, &["total_output_tokens"])?;
        if let (Some(i), Some(t), Some(d)) = (tin, tout, duration.filter(|d| *d > 0.0)) {
            m.total_token_throughput = Some((i + t) as f64 / d);
            derived.push("total_token_throughput");
        }
    }
    m.p50_ttft_ms = latency(o, "p50", "ttft")?;
    m.mean_ttft_ms = latency(o, "mean", "ttft")?;
    m.p99_ttft_ms = latency(o, "p99", "ttft")?;
    m.p50_tpot_ms = latency(o, "p50", "tpot")?;
    m.mean_tpot_ms = latency(o, "mean", "tpot")?;
    m.p99_tpot_ms = latency(o, "p99", "tpot")?;
    m.p50_e2e_ms = latency(o, "p50", "e2e")?;
    m.mean_e2e_ms = latency(o, "mean", "e2e")?;
    m.p99_e2e_ms = latency(o, "p99", "e2e")?;
    // Other statistics are kept under normalized names (ITL, p90/p95, std).
    for (metric, _) in METRIC_NAMES {
        for stat in ["mean", "p50", "p90", "p95", "p99", "std"] {
            let is_core = metric != "itl" && matches!(stat, "mean" | "p50" | "p99");
            if is_core {
                continue;
            }
            if let Some(v) = latency(o, stat, metric)? {
                m.extra.insert(format!("{stat}_{metric}_ms"), f64_value(v));
            }
        }
    }
    if let Some(v) = num(o, &["input_throughput"])? {
        m.extra
            .insert("input_token_throughput".into(), f64_value(v));
    }
    if let Some(v) = num(o, &["concurrency"])? {
        m.extra.insert("concurrency".into(), f64_value(v));
    }
    if let Some(v) = num(o, &["request_goodput", "request_goodput:"])? {
        m.extra.insert("request_goodput".into(), f64_value(v));
    }
    if let Some(c) = completed {
        m.extra.insert("completed".into(), Value::from(c));
    }
    if let Some(d) = duration {
        m.extra.insert("duration_s".into(), f64_value(d));
    }

    // Success is a fraction: from `failed` when written, else from the prompts asked for.
    let failures = match (completed, failed, num_prompts) {
        (Some(c), Some(f), _) => {
            if c + f > 0 {
                m.success_rate = Some(c as f64 / (c + f) as f64);
            }
            Some(f)
        }
        (Some(c), None, Some(p)) if p > 0 => {
            if c > p {
                return Err(ParseError::new(
                    ParseErrorKind::Inconsistent,
                    format!("completed {c} exceeds num_prompts {p}"),
                )
                .at_key("completed"));
            }
            m.success_rate = Some(c as f64 / p as f64);
            Some(p - c)
        }
        _ => None,
    };
    if let Some(f) = failures {
        m.extra.insert("failed".into(), Value::from(f));
    }

    let has_any_metric = completed.is_some()
        || m.request_throughput.is_some()
        || m.output_token_throughput.is_some()
        || m.p50_ttft_ms.is_some()
        || m.mean_ttft_ms.is_some()
        || m.mean_e2e_ms.is_some();
    if !has_any_metric {
        return Err(ParseError::new(
            ParseErrorKind::NoMetrics,
            "no benchmark result keys found (expected `completed`, `request_throughput`, `output_throughput` or `*_ttft_ms`)",
        ));
    }

    let mut status = RunStatus::Ok;
    let mut failure_reason = None;
    if completed == Some(0) {
        status = RunStatus::Failed;
        failure_reason = Some(match (failures, num_prompts) {
            (Some(f), _) if f > 0 => {
                format!("all {f} requests failed: no request completed, throughput is 0")
            }
            (_, Some(p)) => format!("no request completed out of {p}: throughput is 0"),
            _ => "no request completed: throughput is 0".to_string(),
        });
        // Nothing was measured: the tools' 0.0 placeholders become absent.
        let rate = m.success_rate;
        let extra = std::mem::take(&mut m.extra);
        m = Metrics {
            success_rate: rate,
            ..Metrics::default()
        };
        for k in ["completed", "failed", "duration_s"] {
            if let Some(v) = extra.get(k) {
                m.extra.insert(k.into(), v.clone());
            }
        }
    }
    if !derived.is_empty() && status == RunStatus::Ok {
        m.extra.insert(
            "derived".into(),
            Value::Array(derived.iter().map(|d| Value::from(*d)).collect()),
        );
    }

    let mut row = BenchRow::new(framework, candidate_id, model, status);
    row.failure_reason = failure_reason;
    row.metrics = m;
    row.server_command = ctx.server_command.clone();
    row.benchmark_command = ctx.benchmark_command.clone();
    if let Some(h) = &ctx.hardware {
        row.hardware = h.clone();
    }
    row.workload = Workload {
        kind: string(o, &["dataset_name"]),
        scenario: ctx.scenario.clone(),
        input_len: ctx
            .input_len
            .or(count(o, &["random_input_len", "input_len"]).ok().flatten()),
        output_len: ctx
            .output_len
            .or(count(o, &["random_output_len", "output_len"])
                .ok()
                .flatten()),
        num_prompts,
        request_rate: o.get("request_rate").and_then(RequestRate::from_json),
        max_concurrency: count(o, &["max_concurrency"]).ok().flatten(),
        ..Workload::default()
    };
    measured_lengths(o, completed, &mut row.workload);
    spec_decode(o, &mut row)?;
    cache(o, &mut row)?;
    if let Some(p) = &ctx.raw_result_path {
        row.artifacts = Some(ArtifactPaths {
            raw_result: Some(p.clone()),
            ..ArtifactPaths::default()
        });
    }
    // Scalars of the raw record survive verbatim; per-request arrays are dropped.
    let raw: Map<String, Value> = o
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Array(_)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    row.extra.insert("raw_result".into(), Value::Object(raw));
    Ok(row)
}

/// The lengths the client measured: per-request `input_lens`/`output_lens` of the requests
/// that completed (an empty `errors` entry, else a non-zero output), or the means of the
/// totals when the client saved no per-request counts.
fn measured_lengths(o: &Obj, completed: Option<u64>, w: &mut Workload) {
    let lens = |key: &str| -> Option<Vec<u64>> {
        o.get(key)?
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()
    };
    if let (Some(input), Some(output)) = (lens("input_lens"), lens("output_lens")) {
        let errors = o.get("errors").and_then(Value::as_array);
        let done = |i: usize| match errors {
            Some(e) => e.get(i).and_then(Value::as_str).is_some_and(str::is_empty),
            None => output[i] > 0,
        };
        let kept: Vec<usize> = (0..input.len().min(output.len()))
            .filter(|i| done(*i))
            .collect();
        let pick = |v: &[u64]| kept.iter().map(|i| v[*i]).collect::<Vec<u64>>();
        crate::bench::measured::record_lengths(w, &pick(&input), &pick(&output), "client");
        return;
    }
    let Some(c) = completed.filter(|c| *c > 0) else {
        return;
    };
    let mean = |key: &str| {
        o.get(key)
            .and_then(Value::as_u64)
            .map(|t| t as f64 / c as f64)
    };
    w.input_len_mean = mean("total_input_tokens");
    w.output_len_mean = mean("total_output_tokens");
    if w.input_len_mean.is_some() || w.output_len_mean.is_some() {
        w.token_counts = Some("client (means of totals)".into());
    }
}

fn spec_decode(o: &Obj, row: &mut BenchRow) -> Result<(), ParseError> {
    let accept_len = num(
        o,
        &[
            "accept_length",
            "spec_decode_acceptance_length",
            "mean_accept_length",
        ],
    )?;
    let (rate, unit) = match num(o, &["spec_decode_acceptance_rate"])? {
        Some(r) => (Some(r), Some("percent")),
        None => match num(o, &["mean_request_ar"])? {
            Some(r) => (Some(r), Some("fraction")),
            None => (None, None),
        },
    };
    if accept_len.is_none() && rate.is_none() {
        return Ok(());
    }
    if row.status != RunStatus::Ok {
        return Ok(());
    }
    row.spec_decode = Some(SpecDecode {
        mean_accept_length: accept_len,
        acceptance_rate: rate,
        ..SpecDecode::default()
    });
    if let Some(u) = unit {
        row.extra
            .insert("spec_decode_acceptance_rate_unit".into(), Value::from(u));
    }
    Ok(())
}

fn cache(o: &Obj, row: &mut BenchRow) -> Result<(), ParseError> {
    let Some(report) = o.get("cache_report") else {
        return Ok(());
    };
    let Value::Object(r) = report else {
        if report.is_null() {
            return Ok(());
        }
        return Err(ParseError::new(
            ParseErrorKind::WrongType,
            format!("expected an object, found {}", kind_name(report)),
        )
        .at_key("cache_report"));
    };
    // SGLang reports a percentage; the row stores a fraction.
    let hit = num(r, &["cache_hit_rate_pct"])?
        .map(|p| p / 100.0)
        .or(num(r, &["cache_hit_rate"])?);
    if hit.is_some() {
        row.cache = Some(CacheBlock {
            prefix_cache_hit_rate: hit,
            ..CacheBlock::default()
        });
    }
    Ok(())
}
