//! The console summary every serving benchmark prints:
//!
//! ```text
//! ============ Serving Benchmark Result ============
//! Successful requests:                     1
//! Benchmark duration (s):                  1.64
//! ...
//! ---------------Time to First Token----------------
//! Mean TTFT (ms):                          12.83
//! ==================================================
//! ```
//!
//! SGLang, vLLM, TensorRT-LLM and TokenSpeed all print this shape with slightly different
//! labels. Each block becomes one record whose keys are the JSON result keys of the same
//! tools, so the JSON row mapper handles both. `Traffic request rate:` and `Maximum request
//! concurrency:` printed just before a block (vLLM does this) are attached to it.

use super::json_text::Record;
use regex::Regex;
use serde_json::{Map, Number, Value};
use std::sync::OnceLock;

fn line_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^\s*([^:]+?):\s*(\S.*?)\s*$").expect("static regex is valid"))
}

fn latency_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"^(mean|median|std|max|min|p\d+(?:\.\d+)?) (ttft|tpot|itl|e2el|e2e latency) \(ms\)$",
        )
        .expect("static regex is valid")
    })
}

/// Whether a text holds at least one result block.
pub fn has_block(text: &str) -> bool {
    text.contains("Serving Benchmark Result")
}

/// Maps a printed label to the key the tools use in their JSON results.
pub fn label_key(label: &str) -> String {
    let l = label.trim().to_ascii_lowercase();
    if let Some(c) = latency_re().captures(&l) {
        let stat = c.get(1).map_or("", |m| m.as_str()).replace('.', "_");
        let metric = match c.get(2).map_or("", |m| m.as_str()) {
            "e2e latency" => "e2e_latency",
            other => other,
        };
        return format!("{stat}_{metric}_ms");
    }
    let fixed = match l.as_str() {
        "successful requests" => "completed",
        "failed requests" => "failed",
        "benchmark duration (s)" => "duration",
        "total input tokens" => "total_input_tokens",
        "total generated tokens" => "total_output_tokens",
        "total generated tokens (retokenized)" => "total_output_tokens_retokenized",
        "request throughput (req/s)" => "request_throughput",
        "request goodput (req/s)" => "request_goodput",
        "input token throughput (tok/s)" => "input_throughput",
        "output token throughput (tok/s)" => "output_throughput",
        "total token throughput (tok/s)" | "total throughput (tok/s)" => "total_token_throughput",
        "peak output token throughput (tok/s)" => "max_output_tokens_per_s",
        "peak concurrent requests" => "max_concurrent_requests",
        "traffic request rate" | "request rate configured (rps)" => "request_rate",
        "maximum request concurrency" | "max request concurrency" | "max concurrency" => {
            "max_concurrency"
        }
        "accept length" => "accept_length",
        "mean accept length (tok/step)" => "mean_accept_length",
        "mean request ar" => "mean_request_ar",
        "median request ar" => "median_request_ar",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    let slug: String = l
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    slug.split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A printed value as JSON: integers and floats as numbers, anything else as a string.
fn value_of(raw: &str) -> Value {
    let t = raw.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Ok(f) = t.parse::<f64>() {
        if let Some(n) = Number::from_f64(f) {
            return Value::Number(n);
        }
        return Value::String(t.to_ascii_lowercase());
    }
    Value::String(t.to_string())
}

fn is_closing(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 10 && t.chars().all(|c| c == '=')
}

fn strip_comment(line: &str) -> &str {
    line.trim_start().trim_start_matches('#')
}

fn label_value(line: &str) -> Option<(String, Value)> {
    let c = line_re().captures(strip_comment(line))?;
    let label = c.get(1)?.as_str();
    let value = c.get(2)?.as_str();
    Some((label_key(label), value_of(value)))
}

/// Every result block of a console log, as records (line = the block's header line).
pub fn read_blocks(text: &str) -> Vec<Record> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut preamble_start = 0usize;
    let mut i = 0usize;
    while i < lines.len() {
        let Some(header) = lines.get(i) else { break };
        if !header.contains("Serving Benchmark Result") {
            i += 1;
            continue;
        }
        let mut object = Map::new();
        let mut j = i + 1;
        while let Some(line) = lines.get(j) {
            if is_closing(strip_comment(line)) || line.contains("Serving Benchmark Result") {
                break;
            }
            if let Some((k, v)) = label_value(line) {
                object.entry(k).or_insert(v);
            }
            j += 1;
        }
        for line in lines.get(preamble_start..i).unwrap_or(&[]) {
            if let Some((k, v)) = label_value(line) {
                if k == "request_rate" || k == "max_concurrency" {
                    object.entry(k).or_insert(v);
                }
            }
        }
        out.push(Record {
            line: i + 1,
            object,
        });
        // Continue after the closing line (or at the next header).
        i = if lines.get(j).is_some_and(|l| is_closing(strip_comment(l))) {
            j + 1
        } else {
            j
        };
        preamble_start = i;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_to_json_keys() {
        assert_eq!(
            label_key("Median E2E Latency (ms)"),
            "median_e2e_latency_ms"
        );
        assert_eq!(label_key("P99 E2EL (ms)"), "p99_e2el_ms");
        assert_eq!(label_key("P99.9 TTFT (ms)"), "p99_9_ttft_ms");
        assert_eq!(
            label_key("Total Token throughput (tok/s)"),
            "total_token_throughput"
        );
        assert_eq!(
            label_key("Total throughput (tok/s)"),
            "total_token_throughput"
        );
        assert_eq!(
            label_key("User throughput (tok/s)"),
            "user_throughput_tok_s"
        );
    }

    #[test]
    fn preamble_rate_and_concurrency_attach_to_the_block() {
        let text = "Traffic request rate: inf\nMaximum request concurrency: 32\n\
                    ============ Serving Benchmark Result ============\n\
                    Successful requests:                     32\n\
                    Mean TTFT (ms):                          7279.56\n\
                    ==================================================\n";
        let recs = read_blocks(text);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].line, 3);
        assert_eq!(recs[0].object["request_rate"], "inf");
        assert_eq!(recs[0].object["max_concurrency"], 32);
        assert_eq!(recs[0].object["completed"], 32);
    }
}
