//! Raw benchmark-client output -> normalized [`BenchRow`]s (ARCHITECTURE.md, *Benchmark rows, SLA
//! and ranking*).
//!
//! Nobody else turns the frameworks' benchmark output into rows, so these parsers know the
//! real formats and their quirks (learned from the tools' source and from real files):
//!
//! - SGLang `bench_serving --output-file`: one JSON object per line per run; no `failed`
//!   key (failures = `num_prompts - completed`); e2e keys are `*_e2e_latency_ms`, the total
//!   throughput key is `total_throughput`; `accept_length` and `cache_report` are optional;
//!   an unbounded rate is the bare token `Infinity`. The late-2024 format has 18 keys only
//!   (no `request_throughput`, no p99).
//! - `vllm bench serve --save-result`: one object (more with `--append-result`, one a line);
//!   `failed` only in newer versions; e2e keys `*_e2el_ms`; `total_token_throughput`;
//!   `"request_goodput:"` with a colon in 2025 versions; `request_rate` a number or `"inf"`;
//!   metadata values are strings. `spec_decode_acceptance_rate` is a **percentage**
//!   (0..100) and is stored as written; the row's `acceptance_rate_unit` says so.
//! - TensorRT-LLM `benchmark_serving` (a vLLM fork) saves no `failed` key; its console
//!   prints `Mean Request AR` (a fraction, stored as written with unit `fraction`).
//! - TokenSpeed `bench serve` (a trimmed vLLM copy) saves `failed` and `mean_accept_length`.
//! - Every tool's console "Serving Benchmark Result" block (see [`stdout`]).
//!
//! Normalisation rules: latencies in ms, throughputs per second, `success_rate` always a
//! fraction in 0..1 (from `failed` when present, else from `num_prompts`, else absent). A
//! run where no request completed is `failed` with a concrete reason and its 0.0 latencies
//! and throughputs become absent (they measured nothing). Unknown scalar keys of the raw
//! record are kept under the row's `raw_result`.

pub mod json_text;
mod result_json;
pub mod stdout;

use crate::bench::row::{BenchRow, Hardware};
use crate::framework::Framework;
use std::fmt;
use std::str::FromStr;

/// Layout of the raw text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RawFormat {
    /// JSON when the text starts with `{` or `[`, else console blocks.
    #[default]
    Auto,
    /// One JSON object per non-blank line (errors name the exact line).
    Jsonl,
    /// Any JSON layout: one object, objects appended, or an array.
    Json,
    /// Console "Serving Benchmark Result" blocks.
    Stdout,
}

impl FromStr for RawFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(RawFormat::Auto),
            "jsonl" => Ok(RawFormat::Jsonl),
            "json" => Ok(RawFormat::Json),
            "stdout" | "text" | "log" => Ok(RawFormat::Stdout),
            other => Err(format!(
                "unknown raw format `{other}`: expected auto, jsonl, json or stdout"
            )),
        }
    }
}

/// What the caller knows about the run; it fills what the raw output lacks and wins over
/// guesses from the output (never over measured values).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParseContext {
    pub model: Option<String>,
    pub candidate_id: Option<String>,
    pub scenario: Option<String>,
    pub num_prompts: Option<u64>,
    pub input_len: Option<u64>,
    pub output_len: Option<u64>,
    pub server_command: Option<String>,
    pub benchmark_command: Option<String>,
    pub hardware: Option<Hardware>,
    /// Path of the raw file, recorded under `artifacts.raw_result`.
    pub raw_result_path: Option<String>,
}

/// What kind of problem the input has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    InvalidJson,
    NotAnObject,
    WrongType,
    NoRecords,
    NoMetrics,
    Inconsistent,
}

/// Input that could not be turned into rows: what and where (record, line, column, key).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// 1-based index of the run object.
    pub record: Option<usize>,
    /// 1-based line in the raw text.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        ParseError {
            kind,
            record: None,
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }
    pub(crate) fn at_record(mut self, record: usize) -> Self {
        self.record = Some(record);
        self
    }
    pub(crate) fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
    pub(crate) fn at_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }
    pub(crate) fn at_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_string());
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(l) = self.line {
            match self.column {
                Some(c) => parts.push(format!("line {l}, column {c}")),
                None => parts.push(format!("line {l}")),
            }
        }
        if let Some(r) = self.record {
            parts.push(format!("record {r}"));
        }
        if let Some(k) = &self.key {
            parts.push(format!("key `{k}`"));
        }
        if parts.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.message)
        }
    }
}

/// Parses raw benchmark output into one row per run object found.
pub fn parse_raw(
    framework: Framework,
    format: RawFormat,
    text: &str,
    ctx: &ParseContext,
) -> Result<Vec<BenchRow>, ParseError> {
    let trimmed = text.trim_start();
    let format = match format {
        RawFormat::Auto if trimmed.starts_with('{') || trimmed.starts_with('[') => RawFormat::Json,
        RawFormat::Auto if stdout::has_block(text) => RawFormat::Stdout,
        RawFormat::Auto => {
            return Err(ParseError::new(
                ParseErrorKind::NoRecords,
                "input is neither JSON nor a console log with a `Serving Benchmark Result` block",
            ))
        }
        other => other,
    };
    let records = match format {
        RawFormat::Jsonl => json_text::read_lines(text)?,
        RawFormat::Json | RawFormat::Auto => json_text::read_stream(text)?,
        RawFormat::Stdout => stdout::read_blocks(text),
    };
    if records.is_empty() {
        let what = match format {
            RawFormat::Stdout => "no `Serving Benchmark Result` block found",
            _ => "no JSON result object found",
        };
        return Err(ParseError::new(ParseErrorKind::NoRecords, what));
    }
    let many = records.len() > 1;
    records
        .iter()
        .enumerate()
        .map(|(i, rec)| {
            result_json::to_row(framework, rec, i + 1, many, ctx).map_err(|e| {
                let line = e.line.unwrap_or(rec.line);
                e.at_record(i + 1).at_line(line)
            })
        })
        .collect()
}
