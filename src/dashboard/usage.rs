//! An agent's spend, read from its own output: the runner's reading of the whole output
//! (the round's gate input), else the committed agent log tail.
//!
//! Coding agents report their usage only when asked for machine-readable output: Claude
//! Code's `--output-format json` / `stream-json` ends with a `result` object carrying
//! `total_cost_usd`, `num_turns` and `usage`; Codex's `exec --json` prints a
//! `turn.completed` event with token `usage` per turn (no cost). Anything else (plain text
//! output) reports nothing, and the dashboard says so rather than guessing.

use serde_json::Value;

use super::model::AgentUsage;
use crate::gate::GateInput;

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// Claude Code's final `result` object.
fn claude_result(v: &Value) -> Option<AgentUsage> {
    if v.get("type").and_then(Value::as_str) != Some("result") {
        return None;
    }
    let cost = v
        .get("total_cost_usd")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite() && *c >= 0.0);
    let turns = u64_at(v, "num_turns").and_then(|t| u32::try_from(t).ok());
    let usage = v.get("usage");
    let input = usage.and_then(|u| {
        let parts = [
            u64_at(u, "input_tokens"),
            u64_at(u, "cache_creation_input_tokens"),
            u64_at(u, "cache_read_input_tokens"),
        ];
        parts.iter().any(Option::is_some).then(|| {
            parts
                .iter()
                .flatten()
                .fold(0u64, |a, b| a.saturating_add(*b))
        })
    });
    let output = usage.and_then(|u| u64_at(u, "output_tokens"));
    if cost.is_none() && turns.is_none() && input.is_none() && output.is_none() {
        return None;
    }
    Some(AgentUsage {
        cost_usd: cost,
        turns,
        input_tokens: input,
        output_tokens: output,
    })
}

/// The agent's usage report: what the runner read from the agent's whole output (the gate
/// input's agent report), else the round's committed agent log as the gate input carries
/// it. The log is a tail whose long lines are cut, and Claude Code's `--output-format json`
/// report is one line longer than the cut, so the log alone misses it.
pub fn round_agent_usage(input: &GateInput, round: u32) -> Option<AgentUsage> {
    if let Some(u) = input.evidence.agent.as_ref().map(|a| &a.usage) {
        let reported = [u.input_tokens, u.output_tokens]
            .iter()
            .any(Option::is_some);
        if reported || u.turns.is_some() || u.cost_usd.is_some() {
            return Some(AgentUsage {
                cost_usd: u.cost_usd,
                turns: u.turns,
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
            });
        }
    }
    let suffix = format!("rounds/round-{round}/agent-log-tail.txt");
    input
        .evidence
        .added_text
        .iter()
        .find(|t| t.path.ends_with(&suffix))
        .and_then(|t| agent_usage(&t.text))
}

/// Reads an agent's usage from its log; `None` when the log reports none.
///
/// The last Claude Code `result` object wins (a log may hold several runs); Codex turns
/// are summed.
pub fn agent_usage(log: &str) -> Option<AgentUsage> {
    let mut codex: Option<AgentUsage> = None;
    for line in log.lines().rev() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(u) = claude_result(&v) {
            return Some(u);
        }
        if v.get("type").and_then(Value::as_str) == Some("turn.completed") {
            let usage = v.get("usage");
            let c = codex.get_or_insert_with(AgentUsage::default);
            c.turns = Some(c.turns.unwrap_or(0).saturating_add(1));
            let add = |acc: Option<u64>, key: &str| match usage.and_then(|u| u64_at(u, key)) {
                Some(n) => Some(acc.unwrap_or(0).saturating_add(n)),
                None => acc,
            };
            c.input_tokens = add(c.input_tokens, "input_tokens");
            c.output_tokens = add(c.output_tokens, "output_tokens");
        }
    }
    codex
}

/// The sum of several steps' usage: a number is known when any step reported it.
pub fn total<'a>(usages: impl IntoIterator<Item = &'a AgentUsage>) -> Option<AgentUsage> {
    let mut out: Option<AgentUsage> = None;
    for u in usages {
        let t = out.get_or_insert_with(AgentUsage::default);
        t.cost_usd = match (t.cost_usd, u.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        t.turns = match (t.turns, u.turns) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
        t.input_tokens = match (t.input_tokens, u.input_tokens) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
        t.output_tokens = match (t.output_tokens, u.output_tokens) {
            (Some(a), Some(b)) => Some(a.saturating_add(b)),
            (a, b) => a.or(b),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_reports_nothing() {
        assert_eq!(
            agent_usage("simulated agent round 1: changed [\"x\"]"),
            None
        );
        assert_eq!(agent_usage(""), None);
        assert_eq!(agent_usage("{\"type\":\"result\"}"), None);
        assert_eq!(agent_usage("{not json"), None);
    }

    #[test]
    fn the_last_result_wins_and_codex_turns_add_up() {
        let log = "{\"type\":\"result\",\"total_cost_usd\":1.5,\"num_turns\":3}\nnoise\n{\"type\":\"result\",\"total_cost_usd\":0.25,\"num_turns\":7,\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":2}}\n";
        assert_eq!(
            agent_usage(log),
            Some(AgentUsage {
                cost_usd: Some(0.25),
                turns: Some(7),
                input_tokens: Some(15),
                output_tokens: Some(2),
            })
        );
        let codex = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":100,\"output_tokens\":5}}\n{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":50,\"output_tokens\":1}}";
        assert_eq!(
            agent_usage(codex),
            Some(AgentUsage {
                cost_usd: None,
                turns: Some(2),
                input_tokens: Some(150),
                output_tokens: Some(6),
            })
        );
    }

    #[test]
    fn totals_keep_what_any_step_reported() {
        let a = AgentUsage {
            cost_usd: Some(1.0),
            turns: Some(2),
            ..AgentUsage::default()
        };
        let b = AgentUsage {
            turns: Some(3),
            output_tokens: Some(9),
            ..AgentUsage::default()
        };
        let t = total([&a, &b]).unwrap();
        assert_eq!(t.cost_usd, Some(1.0));
        assert_eq!(t.turns, Some(5));
        assert_eq!(t.output_tokens, Some(9));
        assert_eq!(total(std::iter::empty()), None);
    }

    proptest! {
        #[test]
        fn never_panics_on_any_log(s in ".*", n in any::<u64>(), c in any::<f64>()) {
            let _ = agent_usage(&s);
            let line = format!("{{\"type\":\"result\",\"num_turns\":{n},\"total_cost_usd\":{}}}", if c.is_finite() { c } else { 0.0 });
            let _ = agent_usage(&format!("{s}\n{line}"));
            let _ = agent_usage(&format!("{{\"type\":\"turn.completed\",\"usage\":{{\"input_tokens\":{n}}}}}\n{line}"));
        }
    }
}
