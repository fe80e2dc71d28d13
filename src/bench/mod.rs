//! Benchmark domain: normalized rows, raw-output parsers, plans, SLA, ranking, gap (pure).

pub mod row;
pub mod sla;

pub use row::{BenchRow, RunStatus};
pub use sla::Sla;
