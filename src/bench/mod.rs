//! Benchmark domain: normalized rows, raw-output parsers, plans, SLA, ranking, gap (pure).

pub mod candidates;
pub mod command;
pub mod fairness;
pub mod gap;
pub mod help_flags;
pub mod md;
pub mod measured;
pub mod parse;
pub mod plan;
pub mod rank;
pub mod row;
pub mod sla;
pub mod summary;

pub use rank::RankMetric;
pub use row::{BenchRow, RunStatus};
pub use sla::Sla;
