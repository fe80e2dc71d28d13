//! The fixed benchmark workload (ARCHITECTURE.md, *The fixed workload*): dataset kind, prompt count
//! and aligned scenarios.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which prompts the benchmark client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Synthetic random tokens of the scenario's input/output lengths (the default).
    Random,
    /// ShareGPT conversations; `dataset_path` optional (clients may download it).
    Sharegpt,
    /// A user-provided JSONL file at `dataset_path` (required).
    Custom,
}

impl DatasetKind {
    /// The name benchmark clients take for `--dataset-name`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Random => "random",
            DatasetKind::Sharegpt => "sharegpt",
            DatasetKind::Custom => "custom",
        }
    }

    /// Reads a user-typed kind (case-insensitive; `share-gpt` and `file` accepted).
    pub fn parse(text: &str) -> Option<DatasetKind> {
        match text
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "random" => Some(DatasetKind::Random),
            "sharegpt" | "share_gpt" => Some(DatasetKind::Sharegpt),
            "custom" | "file" | "jsonl" => Some(DatasetKind::Custom),
            _ => None,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One benchmark shape. Input and output lengths are aligned pairs, never crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub input_len: u64,
    pub output_len: u64,
}

impl Scenario {
    /// Builds a scenario (convenience for defaults and tests).
    pub fn new(name: &str, input_len: u64, output_len: u64) -> Scenario {
        Scenario {
            name: name.to_string(),
            input_len,
            output_len,
        }
    }
}

/// The workload every framework is measured with; fixed for the whole campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    pub dataset_kind: DatasetKind,
    pub dataset_path: Option<String>,
    pub num_prompts: u64,
    pub scenarios: Vec<Scenario>,
}

/// Default number of prompts per scenario.
pub const DEFAULT_NUM_PROMPTS: u64 = 80;

impl Default for WorkloadSpec {
    /// `random`, 80 prompts, `chat` (1000 in / 1000 out) and `summarization`
    /// (8000 in / 1000 out).
    fn default() -> Self {
        WorkloadSpec {
            dataset_kind: DatasetKind::Random,
            dataset_path: None,
            num_prompts: DEFAULT_NUM_PROMPTS,
            scenarios: vec![
                Scenario::new("chat", 1000, 1000),
                Scenario::new("summarization", 8000, 1000),
            ],
        }
    }
}

impl WorkloadSpec {
    /// Consistency problems as `(field suffix, message)` pairs, all at once.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.num_prompts == 0 {
            out.push((
                "num_prompts".into(),
                "expected a positive number of prompts".into(),
            ));
        }
        if self.dataset_kind == DatasetKind::Custom && self.dataset_path.is_none() {
            out.push((
                "dataset_path".into(),
                "dataset `custom` needs `dataset_path` (a JSONL file on the runner)".into(),
            ));
        }
        if self.dataset_kind == DatasetKind::Random && self.dataset_path.is_some() {
            out.push((
                "dataset_path".into(),
                "dataset `random` takes no `dataset_path`: set `dataset: custom` to use a file"
                    .into(),
            ));
        }
        if self.scenarios.is_empty() {
            out.push(("scenarios".into(), "expected at least one scenario".into()));
        }
        for (i, s) in self.scenarios.iter().enumerate() {
            let field = format!("scenarios[{i}]");
            let name_ok = !s.name.is_empty()
                && s.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                out.push((
                    format!("{field}.name"),
                    format!(
                        "scenario name `{}` must be non-empty and use only letters, digits, `_` or `-` (it names files)",
                        s.name
                    ),
                ));
            }
            if s.input_len == 0 || s.output_len == 0 {
                out.push((
                    field.clone(),
                    format!(
                        "scenario `{}` needs positive input_len and output_len",
                        s.name
                    ),
                ));
            }
            if self.scenarios[..i].iter().any(|p| p.name == s.name) {
                out.push((
                    format!("{field}.name"),
                    format!("scenario name `{}` is used twice", s.name),
                ));
            }
        }
        out
    }

    /// One line for reports: `random, 80 prompts: chat 1000/1000, summarization 8000/1000`.
    pub fn describe(&self) -> String {
        let shapes: Vec<String> = self
            .scenarios
            .iter()
            .map(|s| format!("{} {}/{}", s.name, s.input_len, s.output_len))
            .collect();
        let path = self
            .dataset_path
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        format!(
            "{}{path}, {} prompts: {}",
            self.dataset_kind,
            self.num_prompts,
            shapes.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_two_aligned_scenarios() {
        let w = WorkloadSpec::default();
        assert_eq!(
            w.scenarios.len(),
            2,
            "aligned pairs, not a cartesian product"
        );
        assert_eq!(w.scenarios[1], Scenario::new("summarization", 8000, 1000));
        assert!(w.problems().is_empty());
        assert_eq!(
            w.describe(),
            "random, 80 prompts: chat 1000/1000, summarization 8000/1000"
        );
    }

    #[test]
    fn reports_every_inconsistency() {
        let w = WorkloadSpec {
            dataset_kind: DatasetKind::Custom,
            dataset_path: None,
            num_prompts: 0,
            scenarios: vec![Scenario::new("a b", 0, 1), Scenario::new("a b", 1, 1)],
        };
        let fields: Vec<String> = w.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "num_prompts",
                "dataset_path",
                "scenarios[0].name",
                "scenarios[0]",
                "scenarios[1].name",
                "scenarios[1].name"
            ]
        );
    }
}
