//! Small closed sets of campaign options, each with the spellings users type.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Weight/activation dtype every framework is launched with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    Bf16,
    Fp16,
    Fp32,
    /// The dtype in the model's config (same for every framework).
    Auto,
}

impl Precision {
    /// Canonical short name (`bf16`).
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::Fp32 => "fp32",
            Precision::Auto => "auto",
        }
    }

    /// The value serving engines take for `--dtype` (`bfloat16`).
    pub fn dtype_flag(self) -> &'static str {
        match self {
            Precision::Bf16 => "bfloat16",
            Precision::Fp16 => "float16",
            Precision::Fp32 => "float32",
            Precision::Auto => "auto",
        }
    }

    /// Reads `bf16`, `bfloat16`, `fp16`, `half`, `float16`, `fp32`, `float`, `auto`.
    pub fn parse(text: &str) -> Option<Precision> {
        match text
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_', ' '], "")
            .as_str()
        {
            "bf16" | "bfloat16" => Some(Precision::Bf16),
            "fp16" | "float16" | "half" => Some(Precision::Fp16),
            "fp32" | "float32" | "float" => Some(Precision::Fp32),
            "auto" => Some(Precision::Auto),
            _ => None,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens after a round passes the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Autonomy {
    /// Dispatch the next round at once.
    #[default]
    AutoContinue,
    /// Wait for `/sota continue` from a maintainer.
    WaitForHuman,
}

impl Autonomy {
    /// Canonical spelling (`auto-continue`).
    pub fn as_str(self) -> &'static str {
        match self {
            Autonomy::AutoContinue => "auto-continue",
            Autonomy::WaitForHuman => "wait-for-human",
        }
    }

    /// Reads `auto-continue`, `auto`, `continue`, `wait-for-human`, `wait`, `manual`, `human`.
    pub fn parse(text: &str) -> Option<Autonomy> {
        let key = text.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        let first = key
            .split(['(', ':'])
            .next()
            .unwrap_or("")
            .trim_end_matches('-');
        match first.trim() {
            "auto-continue" | "auto" | "continue" | "autonomous" => Some(Autonomy::AutoContinue),
            "wait-for-human" | "wait" | "manual" | "human" | "wait-for-a-human" => {
                Some(Autonomy::WaitForHuman)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Autonomy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The throughput the gap decision compares first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryMetric {
    #[default]
    RequestThroughput,
    OutputTokenThroughput,
}

impl PrimaryMetric {
    /// Canonical spelling (a `metrics` key of the normalized row).
    pub fn as_str(self) -> &'static str {
        match self {
            PrimaryMetric::RequestThroughput => "request_throughput",
            PrimaryMetric::OutputTokenThroughput => "output_token_throughput",
        }
    }

    /// Reads the canonical names (dashes or spaces accepted).
    pub fn parse(text: &str) -> Option<PrimaryMetric> {
        match text
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "request_throughput" => Some(PrimaryMetric::RequestThroughput),
            "output_token_throughput" | "output_throughput" => {
                Some(PrimaryMetric::OutputTokenThroughput)
            }
            _ => None,
        }
    }
}

impl fmt::Display for PrimaryMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(Precision::parse("BFloat16"), Some(Precision::Bf16));
        assert_eq!(Precision::parse("half"), Some(Precision::Fp16));
        assert_eq!(Precision::parse("fp8"), None, "fp8 is a quantization");
        assert_eq!(
            Autonomy::parse("Wait for human"),
            Some(Autonomy::WaitForHuman)
        );
        assert_eq!(
            Autonomy::parse("auto-continue (default)"),
            Some(Autonomy::AutoContinue)
        );
        assert_eq!(Autonomy::parse("sometimes"), None);
        assert_eq!(
            PrimaryMetric::parse("output-token-throughput"),
            Some(PrimaryMetric::OutputTokenThroughput)
        );
        assert_eq!(
            serde_json::to_string(&Autonomy::WaitForHuman).unwrap(),
            "\"wait-for-human\""
        );
        assert_eq!(
            serde_json::to_string(&PrimaryMetric::RequestThroughput).unwrap(),
            "\"request_throughput\""
        );
    }
}
