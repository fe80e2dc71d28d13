//! Canonical framework names. Every module speaks of frameworks through this enum so that
//! aliases typed by users never leak past the parsers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A serving engine that takes part in a campaign. `Sglang` is always the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    Sglang,
    Vllm,
    TensorrtLlm,
    Tokenspeed,
}

impl Framework {
    /// Every framework, target first, then the default comparison order.
    pub const ALL: [Framework; 4] = [
        Framework::Sglang,
        Framework::Vllm,
        Framework::TensorrtLlm,
        Framework::Tokenspeed,
    ];
    /// The default comparison set (all competitors).
    pub const COMPETITORS: [Framework; 3] = [
        Framework::Vllm,
        Framework::TensorrtLlm,
        Framework::Tokenspeed,
    ];

    /// The canonical name used in files, rows and commands.
    pub fn canonical(self) -> &'static str {
        match self {
            Framework::Sglang => "sglang",
            Framework::Vllm => "vllm",
            Framework::TensorrtLlm => "tensorrt_llm",
            Framework::Tokenspeed => "tokenspeed",
        }
    }

    /// A human-facing name for reports.
    pub fn display_name(self) -> &'static str {
        match self {
            Framework::Sglang => "SGLang",
            Framework::Vllm => "vLLM",
            Framework::TensorrtLlm => "TensorRT-LLM",
            Framework::Tokenspeed => "TokenSpeed",
        }
    }

    /// Resolves a user-typed name or alias (case-insensitive; `-`, `_`, spaces and dots ignored).
    pub fn from_alias(input: &str) -> Option<Framework> {
        let key: String = input
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' ' | '.'))
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "sglang" | "sgl" => Some(Framework::Sglang),
            "vllm" => Some(Framework::Vllm),
            "tensorrtllm" | "trtllm" | "trt" | "tensorrt" | "trtllmserve" => {
                Some(Framework::TensorrtLlm)
            }
            "tokenspeed" | "ts" => Some(Framework::Tokenspeed),
            _ => None,
        }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.canonical())
    }
}

/// Error for a name that is no known framework.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown framework `{0}`: expected one of sglang, vllm, tensorrt_llm, tokenspeed")]
pub struct UnknownFramework(pub String);

impl FromStr for Framework {
    type Err = UnknownFramework;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Framework::from_alias(s).ok_or_else(|| UnknownFramework(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_canonical_names() {
        for (alias, fw) in [
            ("trt", Framework::TensorrtLlm),
            ("TRTLLM", Framework::TensorrtLlm),
            ("tensorrt-llm", Framework::TensorrtLlm),
            ("TensorRT-LLM", Framework::TensorrtLlm),
            ("token-speed", Framework::Tokenspeed),
            ("vLLM", Framework::Vllm),
            ("sglang", Framework::Sglang),
        ] {
            assert_eq!(Framework::from_alias(alias), Some(fw), "{alias}");
        }
        assert_eq!(Framework::from_alias("llama.cpp"), None);
        assert_eq!(Framework::TensorrtLlm.canonical(), "tensorrt_llm");
    }

    #[test]
    fn serde_uses_canonical_names() {
        let json = serde_json::to_string(&Framework::TensorrtLlm).unwrap();
        assert_eq!(json, "\"tensorrt_llm\"");
        let back: Framework = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Framework::TensorrtLlm);
    }
}
