//! The bench lane port: launches a candidate's server once, runs every requested scenario
//! against it, and produces normalized rows; also help snapshots and profiles.

use super::{CandidateSpec, ScenarioSpec};
use crate::bench::BenchRow;
use std::path::{Path, PathBuf};

/// Which run of the campaign a row belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTag {
    /// 0: fixed baseline; N: revalidation of round N.
    pub round: u32,
    /// SGLang commit measured (rounds only).
    pub commit: Option<String>,
    pub repeat: u32,
}

/// A lane failure that is not a candidate failure (candidate failures are rows).
#[derive(Debug, thiserror::Error)]
#[error("bench lane: {0}")]
pub struct LaneError(pub String);

/// What runs servers and benchmark clients.
pub trait BenchLane {
    /// Launches `cand`'s server once and benchmarks each scenario, calling `on_row` as soon
    /// as each row is known. Failed, OOM and timed-out runs are rows, not errors.
    fn run_candidate(
        &mut self,
        cand: &CandidateSpec,
        scenarios: &[ScenarioSpec],
        tag: &RunTag,
        on_row: &mut dyn FnMut(BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError>;

    /// Runs several candidates that share one server configuration (they differ only in
    /// benchmark-side knobs) against a single server launch. `on_row` gets the index of the
    /// candidate in `runs` with each row. The default launches once per candidate.
    fn run_shared(
        &mut self,
        runs: &[(CandidateSpec, Vec<ScenarioSpec>)],
        tag: &RunTag,
        on_row: &mut dyn FnMut(usize, BenchRow) -> Result<(), LaneError>,
    ) -> Result<(), LaneError> {
        for (i, (cand, scenarios)) in runs.iter().enumerate() {
            self.run_candidate(cand, scenarios, tag, &mut |row| on_row(i, row))?;
        }
        Ok(())
    }

    /// Checks what every measurement needs (the model's tokenizer) before any server
    /// starts, so a campaign that cannot measure stops with the reason and no GPU time.
    fn preflight(&mut self) -> Result<(), LaneError> {
        Ok(())
    }

    /// `--help` (and version) text of a framework's server and benchmark CLIs, as
    /// (file name, text) pairs, captured for the installed version that `cand` (one of the
    /// framework's candidates) would run.
    fn help_snapshots(&mut self, cand: &CandidateSpec) -> Vec<(String, String)>;

    /// Profiles `cand` in `scenario` (prefill: input -> 1 token; decode: 1 token -> output)
    /// and writes the kernel, overlap and fuse tables (markdown) under `out_dir`. Returns the
    /// written paths; the layer-pipeline markdown, when produced, is named
    /// `layer-pipeline.md`.
    fn profile(
        &mut self,
        cand: &CandidateSpec,
        scenario: &ScenarioSpec,
        out_dir: &Path,
    ) -> Result<Vec<PathBuf>, LaneError>;

    /// Number of server launches so far (the baseline's GPU cost).
    fn server_launches(&self) -> u64;
}
