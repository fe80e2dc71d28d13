//! `sota-bot runner baseline|round`: one campaign phase inside a GitHub Actions job on a
//! checked-out fork. The same engine as `sota-bot local`, one phase per job: it writes
//! `commit-sha=` and `decision-file=` lines to the step outputs file, appends the phase's
//! tables to the job summary, and lists large raw files for artifact upload.

use crate::cli::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::engine::config::LocalConfig;
use crate::engine::setup::{build_lane, load_input};
use crate::engine::{progress::PlainProgress, Engine, EngineOptions, RunOutcome, RunPaths};
use crate::git::Checkout;
use crate::runner::agent::ShellAgent;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `sota-bot runner`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub phase: RunnerPhase,
}

/// The phase a job runs.
#[derive(Debug, clap::Subcommand)]
pub enum RunnerPhase {
    /// Phase 0.5 + 1 + 2: history notes, the fixed benchmark (exactly once) and the plan.
    Baseline(PhaseArgs),
    /// Phase 3: one RLCR round, ending in one round commit and a gate decision.
    Round(PhaseArgs),
    /// Checks the visible GPUs (model, count, free memory, no foreign process) before a phase.
    Preflight(crate::runner::preflight::PreflightArgs),
}

/// Shared arguments of a runner phase.
#[derive(Debug, clap::Args)]
pub struct PhaseArgs {
    #[arg(long)]
    pub campaign_id: String,
    /// Run directory relative to the checkout.
    #[arg(long)]
    pub run_dir: String,
    /// Campaign branch (checked out before the phase).
    #[arg(long)]
    pub branch: String,
    /// Expected round number (refuses to run a different one).
    #[arg(long)]
    pub round: Option<u32>,
    #[command(flatten)]
    pub agent: crate::cli::local::AgentArgs,
    /// The campaign's agent cost budget in USD (the campaign stops once it is spent).
    #[arg(long)]
    pub agent_max_cost_usd: Option<f64>,
    /// A maintainer's note for this round (`/sota continue <note>`), quoted in its prompt.
    #[arg(long)]
    pub maintainer_note: Option<String>,
    #[arg(long)]
    pub phase_timeout_minutes: Option<u64>,
    /// Local-style config (lane commands, knowledge root, reviewer).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Checkout root (default: the current directory).
    #[arg(long, default_value = ".")]
    pub checkout: PathBuf,
    #[arg(long)]
    pub force_baseline: bool,
    #[arg(long)]
    pub outputs_file: PathBuf,
    #[arg(long)]
    pub summary_file: PathBuf,
    #[arg(long)]
    pub artifacts_list: PathBuf,
    /// Remote the campaign branch is pushed to (a remote name, URL or path).
    #[arg(long, default_value = "origin")]
    pub remote: String,
    /// Leave the phase's commits local (no compare-and-swap push).
    #[arg(long)]
    pub no_push: bool,
}

/// The token https pushes authenticate with (the workflow's `GITHUB_TOKEN`); never logged.
fn push_token() -> Option<String> {
    std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty())
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Runs one runner phase.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let (is_round, a) = match args.phase {
        RunnerPhase::Baseline(a) => (false, a),
        RunnerPhase::Round(a) => (true, a),
        RunnerPhase::Preflight(a) => return crate::runner::preflight::preflight_main(a),
    };
    let checkout = a.checkout.canonicalize()?;
    let config = match &a.config {
        Some(p) => match LocalConfig::load(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_INVALID_INPUT);
            }
        },
        None => LocalConfig::default(),
    };
    let git = Checkout::open(&checkout)?;
    git.checkout_new_or_existing(&a.branch)?;
    let token = push_token();
    // The remote head this phase starts from: the push below succeeds only while the
    // branch still points there (or its replay onto what moved is safe).
    let repo = git2::Repository::open(&checkout)?;
    let remote_head_at_start = if a.no_push {
        None
    } else {
        match crate::git::push::fetch_remote_head(&repo, &a.remote, &a.branch, token.as_deref()) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: cannot read {} on {}: {e}", a.branch, a.remote);
                return Ok(EXIT_FAILURE);
            }
        }
    };
    let paths = RunPaths::from_rel(&checkout, &a.run_dir);
    let input = load_input(&paths)?;
    if input.campaign.campaign_id != a.campaign_id {
        eprintln!(
            "error: run dir {} belongs to campaign {}, not {}",
            a.run_dir, input.campaign.campaign_id, a.campaign_id
        );
        return Ok(EXIT_INVALID_INPUT);
    }
    let state_exists = paths.checkpoint().is_file();
    let mut lane = build_lane(&checkout, &config, &input.campaign);
    let mut progress = PlainProgress;
    let mut opts = EngineOptions {
        agent: Some(a.agent.apply(&config)),
        agent_timeout: Duration::from_secs(
            a.phase_timeout_minutes
                .map(|m| m.saturating_mul(60))
                .unwrap_or(config.agent.timeout_secs),
        ),
        knowledge_root: config.knowledge_root.clone(),
        model_config: config.history.model_config.clone(),
        force_baseline: a.force_baseline,
        rounds_this_run: Some(if is_round { 1 } else { 0 }),
        ..EngineOptions::default()
    };
    if let Some(m) = config.gate.max_rounds {
        opts.gate.max_rounds = m;
    }
    opts.gate.max_agent_cost_usd = a
        .agent_max_cost_usd
        .filter(|c| c.is_finite() && *c > 0.0)
        .or(config.gate.max_agent_cost_usd);
    let reviewer = if config.gate.llm_reviewer {
        crate::gate::reviewer::from_config(&config.gate.reviewer, &checkout)
    } else {
        None
    };
    let mut engine = Engine {
        checkout: checkout.clone(),
        git,
        campaign: input.campaign.clone(),
        candidates: input.candidates.clone(),
        lane: &mut lane,
        agent: &ShellAgent,
        reviewer: reviewer.as_deref(),
        progress: &mut progress,
        opts,
        state: crate::campaign::state::CampaignState::new(
            &a.campaign_id,
            "",
            &a.branch,
            &a.run_dir,
            "",
        ),
        paths: paths.clone(),
    };
    if state_exists {
        engine.state = Engine::load_state(&paths)?;
    } else {
        engine.state = engine.initial_state(&a.branch);
        engine.begin()?;
    }
    use crate::campaign::state::Phase;
    if !is_round && engine.state.phase as u8 >= Phase::BaselineDone as u8 && !a.force_baseline {
        eprintln!("error: the fixed baseline already exists (use --force-baseline to redo it)");
        return Ok(EXIT_INVALID_INPUT);
    }
    if is_round {
        if (engine.state.phase as u8) < Phase::PlanDone as u8 {
            eprintln!("error: refusing to start a round: the baseline and plan are incomplete");
            return Ok(EXIT_INVALID_INPUT);
        }
        if let Some(n) = a.round {
            if engine.state.next_round() != n {
                eprintln!(
                    "error: round {n} requested but the campaign's next round is {}",
                    engine.state.next_round()
                );
                return Ok(EXIT_INVALID_INPUT);
            }
        }
    }
    if a.force_baseline && !is_round {
        engine.state.phase = Phase::HistoryDone;
    }
    if is_round {
        // A dispatched round is the maintainer's go-ahead (`/sota continue`, `/sota retry`).
        engine.state.waiting_for_human = false;
    }
    let round = engine.state.next_round();
    if let (true, Some(note)) = (is_round, &a.maintainer_note) {
        crate::engine::round::record_maintainer_note(&paths, round, note)?;
    }
    let outcome = engine.run();
    let mut head = engine.git.head_commit().unwrap_or_default();
    drop(engine);
    let mut push_error = None;
    if outcome.is_ok() && !a.no_push {
        match publish(&repo, &a, &head, remote_head_at_start, token.as_deref()) {
            Ok(published) => head = published,
            Err(e) => push_error = Some(e),
        }
    }
    let mut outputs = String::new();
    if push_error.is_none() {
        outputs.push_str(&format!("commit-sha={head}\n"));
    }
    let summary_src = if is_round {
        // Relative to the checkout: the same path names the file in the pushed commit.
        let gate = paths.repo_rel(&format!("{}/gate.json", RunPaths::round_rel(round)));
        outputs.push_str(&format!("decision-file={gate}\n"));
        paths.round_dir(round).join("report.md")
    } else {
        paths.summary()
    };
    append(&a.outputs_file, &outputs)?;
    if let Ok(text) = std::fs::read_to_string(&summary_src) {
        append(&a.summary_file, &format!("{text}\n"))?;
    }
    let mut raw = Vec::new();
    if let Ok(rd) = std::fs::read_dir(checkout.join(".sota/logs")) {
        for e in rd.flatten() {
            raw.push(e.path().display().to_string());
        }
    }
    raw.sort();
    append(
        &a.artifacts_list,
        &raw.iter().map(|p| format!("{p}\n")).collect::<String>(),
    )?;
    if let Some(e) = push_error {
        eprintln!("error: the phase's commits were not pushed: {e}");
        return Ok(EXIT_FAILURE);
    }
    match outcome {
        Ok(RunOutcome::Stopped { reason, .. }) => {
            eprintln!("campaign stopped: {reason}");
            Ok(EXIT_OK)
        }
        Ok(_) => Ok(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}

/// Pushes the phase's commits to the campaign branch with a compare-and-swap on the remote
/// head seen at the start (never a force push). Returns the commit now at the branch head.
fn publish(
    repo: &git2::Repository,
    a: &PhaseArgs,
    head: &str,
    expected: Option<git2::Oid>,
    token: Option<&str>,
) -> Result<String, crate::git::push::PushError> {
    use crate::git::push::{push_with_cas, CasPush, PushError};
    let local_commit = git2::Oid::from_str(head).map_err(|source| PushError::Git {
        context: format!("reading the phase head {head}"),
        source,
    })?;
    if Some(local_commit) == expected {
        return Ok(head.to_string());
    }
    let outcome = push_with_cas(
        repo,
        &CasPush {
            remote: &a.remote,
            branch: &a.branch,
            local_commit,
            expected_remote_head: expected,
            run_dir: Path::new(&a.run_dir),
            max_attempts: 3,
            token,
            local_branch: Some(&a.branch),
        },
    )?;
    if let Some(onto) = outcome.rebased_onto {
        eprintln!(
            "the campaign branch moved during the phase; the run commits were replayed onto {onto}"
        );
    }
    Ok(outcome.commit.to_string())
}
