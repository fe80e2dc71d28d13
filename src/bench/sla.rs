//! The campaign SLA (ARCHITECTURE.md, *Benchmark rows, SLA and ranking*): thresholds on p50
//! latencies and success rate.
//!
//! Only p50-based keys exist. Older tools used `max_ttft_ms`-style or p99 keys; those are
//! rejected with a message naming the replacement rather than silently misread, because a
//! p99 threshold read as p50 would change which candidates pass.

use super::row::{BenchRow, Metrics, RunStatus, SlaBlock};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// SLA thresholds. `None` means "no limit on this metric".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p50_ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p50_tpot_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_success_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p50_e2e_ms: Option<f64>,
}

/// A problem with one SLA key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SlaError {
    #[error("SLA key `{key}` is not supported: use `{replacement}` instead")]
    Deprecated { key: String, replacement: String },
    #[error("SLA key `{key}` is unknown: expected max_p50_ttft_ms, max_p50_tpot_ms, min_success_rate or max_p50_e2e_ms")]
    Unknown { key: String },
    #[error("SLA key `{key}` must be a non-negative number, got {got}")]
    NotANumber { key: String, got: String },
    #[error("SLA key `min_success_rate` must be within 0..=1 (a fraction), got {got}")]
    SuccessRateRange { got: f64 },
    #[error("the SLA must be a mapping of key: number, got {got}")]
    NotAMapping { got: String },
}

fn replacement_for(key: &str) -> Option<&'static str> {
    match key {
        "max_ttft_ms" | "max_p99_ttft_ms" | "max_p90_ttft_ms" | "max_mean_ttft_ms" => {
            Some("max_p50_ttft_ms")
        }
        "max_tpot_ms" | "max_p99_tpot_ms" | "max_p90_tpot_ms" | "max_mean_tpot_ms" => {
            Some("max_p50_tpot_ms")
        }
        "max_e2e_ms" | "max_p99_e2e_ms" | "max_p90_e2e_ms" | "max_mean_e2e_ms" | "max_e2el_ms"
        | "max_p99_e2el_ms" => Some("max_p50_e2e_ms"),
        "success_rate" | "min_success" => Some("min_success_rate"),
        _ if key.starts_with("max_p99_") => Some("a max_p50_* key"),
        _ => None,
    }
}

impl Sla {
    /// Reads an SLA from a JSON/YAML mapping, reporting every bad key at once.
    pub fn from_value(value: &Value) -> Result<Sla, Vec<SlaError>> {
        let Value::Object(map) = value else {
            return Err(vec![SlaError::NotAMapping {
                got: value.to_string(),
            }]);
        };
        let mut sla = Sla::default();
        let mut errors = Vec::new();
        for (key, v) in map {
            let slot = match key.as_str() {
                "max_p50_ttft_ms" => &mut sla.max_p50_ttft_ms,
                "max_p50_tpot_ms" => &mut sla.max_p50_tpot_ms,
                "min_success_rate" => &mut sla.min_success_rate,
                "max_p50_e2e_ms" => &mut sla.max_p50_e2e_ms,
                other => {
                    errors.push(match replacement_for(other) {
                        Some(r) => SlaError::Deprecated {
                            key: other.to_string(),
                            replacement: r.to_string(),
                        },
                        None => SlaError::Unknown {
                            key: other.to_string(),
                        },
                    });
                    continue;
                }
            };
            if v.is_null() {
                continue;
            }
            match v.as_f64() {
                Some(n) if n.is_finite() && n >= 0.0 => *slot = Some(n),
                _ => errors.push(SlaError::NotANumber {
                    key: key.clone(),
                    got: v.to_string(),
                }),
            }
        }
        if let Some(rate) = sla.min_success_rate {
            if rate > 1.0 {
                errors.push(SlaError::SuccessRateRange { got: rate });
            }
        }
        if errors.is_empty() {
            Ok(sla)
        } else {
            Err(errors)
        }
    }

    /// Whether the metrics meet every threshold. A threshold on a metric that was not
    /// measured fails: an unknown latency cannot be claimed to be within the SLA.
    pub fn passes(&self, metrics: &Metrics) -> bool {
        fn under(limit: Option<f64>, value: Option<f64>) -> bool {
            match limit {
                None => true,
                Some(l) => value.is_some_and(|v| v <= l),
            }
        }
        let success_ok = match self.min_success_rate {
            None => true,
            Some(min) => metrics.success_rate.is_some_and(|v| v >= min),
        };
        under(self.max_p50_ttft_ms, metrics.p50_ttft_ms)
            && under(self.max_p50_tpot_ms, metrics.p50_tpot_ms)
            && under(self.max_p50_e2e_ms, metrics.p50_e2e_ms)
            && success_ok
    }

    /// Writes the thresholds and the computed verdict into a row, ignoring any `passed`
    /// value that came with the input. Rows that did not run OK never pass.
    pub fn apply(&self, row: &mut BenchRow) {
        row.sla = SlaBlock {
            max_p50_ttft_ms: self.max_p50_ttft_ms,
            max_p50_tpot_ms: self.max_p50_tpot_ms,
            min_success_rate: self.min_success_rate,
            max_p50_e2e_ms: self.max_p50_e2e_ms,
            passed: Some(row.status == RunStatus::Ok && self.passes(&row.metrics)),
        };
    }

    /// The SLA recorded in a row (to check that a round did not change it).
    pub fn from_row(row: &BenchRow) -> Sla {
        Sla {
            max_p50_ttft_ms: row.sla.max_p50_ttft_ms,
            max_p50_tpot_ms: row.sla.max_p50_tpot_ms,
            min_success_rate: row.sla.min_success_rate,
            max_p50_e2e_ms: row.sla.max_p50_e2e_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deprecated_keys_name_their_replacement() {
        let errs = Sla::from_value(&json!({"max_ttft_ms": 100, "max_p99_tpot_ms": 5, "bogus": 1}))
            .unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(text[0].contains("use `max_p50_ttft_ms`"), "{text:?}");
        assert!(text[1].contains("use `max_p50_tpot_ms`"), "{text:?}");
        assert!(text[2].contains("unknown"), "{text:?}");
    }

    #[test]
    fn passed_is_computed_not_trusted() {
        let sla =
            Sla::from_value(&json!({"max_p50_ttft_ms": 100, "min_success_rate": 0.99})).unwrap();
        let mut row = BenchRow::new(crate::framework::Framework::Sglang, "c", "m", RunStatus::Ok);
        row.sla.passed = Some(true);
        row.metrics.p50_ttft_ms = Some(150.0);
        row.metrics.success_rate = Some(1.0);
        sla.apply(&mut row);
        assert_eq!(row.sla.passed, Some(false));
        row.metrics.p50_ttft_ms = Some(90.0);
        sla.apply(&mut row);
        assert_eq!(row.sla.passed, Some(true));
        row.metrics.p50_ttft_ms = None;
        sla.apply(&mut row);
        assert_eq!(
            row.sla.passed,
            Some(false),
            "an unmeasured latency cannot pass"
        );
    }
}
