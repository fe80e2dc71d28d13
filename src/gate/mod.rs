//! The review gate (ARCHITECTURE.md, *The review gate*): deterministic contract checks, an optional
//! LLM reviewer, and the decision that ends a round (continue, wait for a human, replan, stop).
//!
//! Everything here is pure over [`RoundEvidence`] so that the local engine, the GPU runner
//! and the GitHub App run the very same rules. The only I/O is the [`Reviewer`] port, which
//! [`run_gate`] calls before handing its answer to the pure [`review_round`].

pub mod agent;
pub mod checks;
pub mod cli_reviewer;
pub mod config;
pub mod decide;
pub mod evidence;
pub mod reviewer;
pub mod reviewer_port;
pub mod verdict;

pub use agent::{AgentFailure, AgentReport};
pub use checks::{contract_checks, CheckResult};
pub use config::GateConfig;
pub use decide::{
    derive_measured_verdict, review_round, stagnation_required, Decision, GateOutcome, StopReason,
    VerdictSource,
};
pub use evidence::{ChangedText, GapStatus, RoundEvidence, ScenarioGapView, StopClaim};
pub use reviewer::{OpenAiReviewer, ReviewerConfig};
pub use reviewer_port::{Reviewer, ReviewerError, ReviewerPrompt};
pub use verdict::{parse_review, ParsedReview, Verdict};

/// Everything the pure gate decides from, committed with each round as
/// `rounds/round-N/gate-input.json` so the GitHub App re-runs the same decision server-side
/// (the reviewer's answer, if any, is inside the evidence: no second LLM call).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GateInput {
    pub evidence: RoundEvidence,
    pub config: GateConfig,
}

impl GateInput {
    /// The gate's answer for this input.
    pub fn decide(&self) -> GateOutcome {
        review_round(&self.evidence, &self.config)
    }
}

/// Runs the checks, asks the reviewer (when one is configured and the contract holds), and
/// decides. A reviewer failure is recorded as a failed check, never hidden.
pub fn run_gate(
    evidence: &RoundEvidence,
    config: &GateConfig,
    reviewer: Option<&dyn Reviewer>,
) -> GateOutcome {
    gate_input(evidence, config, reviewer).decide()
}

/// The reviewed evidence and config [`run_gate`] decides from (to be committed).
pub fn gate_input(
    evidence: &RoundEvidence,
    config: &GateConfig,
    reviewer: Option<&dyn Reviewer>,
) -> GateInput {
    let mut evidence = evidence.clone();
    if let Some(reviewer) = reviewer {
        let prompt = reviewer::build_prompt(&evidence, config);
        match reviewer.review(&prompt) {
            Ok(text) => evidence.reviewer_response = Some(text),
            Err(e) => evidence.reviewer_error = Some(e.to_string()),
        }
    }
    GateInput {
        evidence,
        config: config.clone(),
    }
}
