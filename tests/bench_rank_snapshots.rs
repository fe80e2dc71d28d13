//! Snapshot and behaviour tests of summary.md, winning-commands.md and the CSV export on
//! the example candidates (examples/candidates/).

use sota_bot::bench::rank::{apply_sla, winners, RankMetric};
use sota_bot::bench::row::{parse_jsonl, BenchRow};
use sota_bot::bench::summary::{render_csv, render_summary_md, render_winning_commands_md};
use sota_bot::bench::Sla;
use sota_bot::framework::Framework;

fn baseline() -> Vec<BenchRow> {
    let text = include_str!("../examples/candidates/llama8b-h100-baseline.jsonl");
    let mut rows = parse_jsonl(text).expect("example rows parse");
    apply_sla(&mut rows, None);
    rows
}

#[test]
fn example_winners_follow_the_rule() {
    let rows = baseline();
    let w = winners(&rows);
    let id = |fw: Framework, s: &str| w.get(&(fw, s.to_string())).map(|r| r.candidate_id.as_str());
    // The smoke row is faster but never wins.
    assert_eq!(id(Framework::Sglang, "chat"), Some("sglang-1"));
    // sglang-2 is faster on summarization but fails the TTFT SLA.
    assert_eq!(id(Framework::Sglang, "summarization"), Some("sglang-1"));
    assert_eq!(id(Framework::Vllm, "chat"), Some("vllm-1"));
    assert_eq!(id(Framework::TensorrtLlm, "chat"), Some("tensorrt_llm-0"));
    // The only TensorRT-LLM summarization run that finished misses the success-rate SLA.
    assert_eq!(id(Framework::TensorrtLlm, "summarization"), None);
    assert_eq!(id(Framework::Tokenspeed, "chat"), Some("tokenspeed-1"));
    assert_eq!(
        id(Framework::Tokenspeed, "summarization"),
        Some("tokenspeed-0")
    );
}

#[test]
fn summary_lists_concrete_reasons_and_escapes_pipes() {
    let rows = baseline();
    let md = render_summary_md(&rows, RankMetric::RequestThroughput);
    for section in [
        "## Best commands by framework",
        "## Cross-framework best comparison",
        "## Failed or SLA-failing candidates",
    ] {
        assert!(md.contains(section), "missing {section}");
    }
    assert!(md.contains("SLA failed: p50 TTFT 2345.0 ms > 2000 ms"));
    assert!(md.contains("SLA failed: success rate 98.8% < 99.0%"));
    assert!(md.contains("oom: torch.OutOfMemoryError"));
    assert!(md.contains("2>&1 \\| tee logs/tokenspeed-1.log"));
    assert!(
        !md.contains("2>&1 | tee"),
        "an unescaped pipe would split the table"
    );
    // Every table row has the same number of unescaped cell separators as its header.
    for table in md.split("\n\n").filter(|b| b.starts_with('|')) {
        let counts: Vec<usize> = table
            .lines()
            .map(|l| l.replace("\\|", "").matches('|').count())
            .collect();
        assert!(
            counts.windows(2).all(|w| w[0] == w[1]),
            "ragged table:\n{table}"
        );
    }
    insta::assert_snapshot!("summary_md", md);
}

#[test]
fn campaign_sla_replaces_row_thresholds() {
    let mut rows = baseline();
    let strict = Sla {
        max_p50_ttft_ms: Some(170.0),
        ..Sla::default()
    };
    apply_sla(&mut rows, Some(&strict));
    let w = winners(&rows);
    // sglang-1 chat (165.2 ms) still passes; vllm-1 chat (171.0 ms) no longer does.
    assert_eq!(
        w[&(Framework::Sglang, "chat".to_string())].candidate_id,
        "sglang-1"
    );
    assert_eq!(
        w[&(Framework::Vllm, "chat".to_string())].candidate_id,
        "vllm-0"
    );
    assert!(!w.contains_key(&(Framework::Sglang, "summarization".to_string())));
}

#[test]
fn winning_commands_snapshot() {
    let md = render_winning_commands_md(&baseline(), RankMetric::RequestThroughput);
    assert!(md.contains("```bash\npython -m sglang.launch_server"));
    assert!(md.contains("No ok + SLA-passing candidate; see summary.md."));
    insta::assert_snapshot!("winning_commands_md", md);
}

#[test]
fn csv_snapshot_has_one_line_per_row() {
    let rows = baseline();
    let csv = render_csv(&rows);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(reader.records().count(), rows.len());
    insta::assert_snapshot!("candidates_csv", csv);
}

#[test]
fn output_token_metric_changes_the_comparison_header() {
    let md = render_summary_md(&baseline(), RankMetric::OutputTokenThroughput);
    assert!(md.contains("difference in output token throughput (tok/s)"));
}
