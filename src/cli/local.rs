//! `sota-bot local`: run a whole campaign against a local git checkout of SGLang.

use crate::cli::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK, EXIT_UNMEASURABLE};
use crate::engine::config::LocalConfig;
use crate::engine::setup::{build_lane, latest_run, load_input, CampaignInput};
use crate::engine::{progress, Engine, EngineOptions, RunOutcome, RunPaths};
use crate::git::Checkout;
use crate::runner::agent::ShellAgent;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `sota-bot local`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: LocalCommand,
}

/// Local campaign commands.
#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Show where the newest campaign in a checkout stands (from its run directory alone).
    Status {
        /// The SGLang checkout.
        checkout: PathBuf,
    },
    /// Continue the newest campaign in a checkout after an interruption or a pause.
    Resume {
        /// The SGLang checkout.
        checkout: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        agent: AgentArgs,
        /// A note for the next round's agent (like `/sota continue <note>`), quoted in its
        /// prompt and committed with the round (free text, also when it starts with `-`).
        #[arg(long, allow_hyphen_values = true)]
        note: Option<String>,
        /// Continue with a configuration (--config, agent flags) other than the one the
        /// campaign started with; the change is recorded in the checkpoint.
        #[arg(long)]
        new_config: bool,
    },
    /// Start a campaign from a request file against a checkout and run it.
    Run(RunArgs),
    /// Report the newest campaign in a checkout: the dashboard's campaign page as one
    /// self-contained HTML file (`--html`), or its data as JSON on standard output.
    Report(ReportArgs),
    /// Create a toy SGLang checkout and run a whole campaign on the simulator lane.
    Demo {
        /// Folder for the demo (the toy checkout goes to DIR/sglang); a new temp folder
        /// when absent.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Arguments of `sota-bot local run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The campaign request (YAML).
    pub request: PathBuf,
    /// The SGLang checkout (a clean git work tree).
    #[arg(long)]
    pub checkout: PathBuf,
    /// Local config (YAML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Bench plan (YAML); the config's `plan` when absent.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// Agent overrides on the command line.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct AgentArgs {
    /// Agent preset: claude (Claude Code), codex (Codex CLI) or command (a shell line).
    #[arg(long = "agent", value_parser = parse_preset)]
    pub preset: Option<crate::runner::agent::AgentPreset>,
    /// Agent command line (the `command` preset unless --agent says otherwise).
    #[arg(long)]
    pub agent_command: Option<String>,
    /// Model the agent uses.
    #[arg(long)]
    pub agent_model: Option<String>,
    /// Most agent turns per round.
    #[arg(long)]
    pub agent_max_turns: Option<u32>,
}

/// Reads an agent preset name.
pub fn parse_preset(s: &str) -> Result<crate::runner::agent::AgentPreset, String> {
    crate::runner::agent::AgentPreset::parse(s).ok_or_else(|| {
        format!(
            "`{s}` is not an agent preset: expected one of {}",
            crate::runner::agent::AgentPreset::NAMES.join(", ")
        )
    })
}

impl AgentArgs {
    /// The config's agent with these overrides.
    pub fn apply(&self, config: &LocalConfig) -> crate::runner::agent::AgentSpec {
        config.agent.spec().overridden(
            self.preset,
            self.agent_command.clone(),
            self.agent_model.clone(),
            self.agent_max_turns,
        )
    }
}

/// Arguments of `sota-bot local report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The SGLang checkout holding the campaign's run directory.
    pub checkout: PathBuf,
    /// Write the campaign page as one HTML file (no scripts, no external assets).
    #[arg(long)]
    pub html: bool,
    /// Where the HTML goes [default: `<campaign id>.html` in the current folder].
    #[arg(long, requires = "html")]
    pub out: Option<PathBuf>,
}

/// Runs `sota-bot local report`.
pub fn report(a: &ReportArgs) -> anyhow::Result<i32> {
    let snapshot = match crate::dashboard::local::snapshot(&a.checkout) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_FAILURE, e),
    };
    let page = crate::dashboard::view::campaign_page(&snapshot, chrono::Utc::now());
    if !a.html {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(EXIT_OK);
    }
    let html = crate::dashboard::render::page_html(&page, true)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.html", snapshot.id)));
    if let Err(e) = std::fs::write(&out, html) {
        return fail(EXIT_FAILURE, format!("{}: {e}", out.display()));
    }
    println!("{}", out.display());
    Ok(EXIT_OK)
}

/// Engine options from a config file and flags.
pub fn engine_options(config: &LocalConfig, agent: &AgentArgs) -> EngineOptions {
    let mut opts = EngineOptions {
        agent: Some(agent.apply(config)),
        agent_timeout: Duration::from_secs(config.agent.timeout_secs),
        knowledge_root: config.knowledge_root.clone(),
        model_config: config.history.model_config.clone(),
        ..EngineOptions::default()
    };
    if let Some(m) = config.gate.max_rounds {
        opts.gate.max_rounds = m;
    }
    opts.gate.max_agent_cost_usd = config.gate.max_agent_cost_usd;
    opts
}

/// `local demo`: writes the toy checkout and inputs, then starts like `local run`.
fn run_demo(dir: Option<PathBuf>) -> anyhow::Result<i32> {
    let demo = match super::local_demo::prepare_demo(dir)? {
        Ok(demo) => demo,
        Err(code) => return Ok(code),
    };
    let config = match LocalConfig::load(&demo.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_FAILURE);
        }
    };
    start(
        &RunArgs {
            request: demo.request,
            checkout: demo.checkout,
            config: None,
            plan: None,
            agent: Default::default(),
        },
        &config,
    )
}

fn load_config(path: Option<&Path>) -> Result<LocalConfig, i32> {
    match path {
        Some(p) => LocalConfig::load(p).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_INVALID_INPUT
        }),
        None => Ok(LocalConfig::default()),
    }
}

/// Drives an engine over `checkout` (fresh when `fresh` is given, else resumed) and prints
/// the outcome.
pub fn drive(
    checkout: &Path,
    config: &LocalConfig,
    opts: EngineOptions,
    input: CampaignInput,
    paths: RunPaths,
    fresh_branch: Option<String>,
) -> anyhow::Result<i32> {
    let mut progress = progress::for_stderr();
    let _guard =
        match crate::engine::lock::RunGuard::begin(checkout, &mut |line| progress.step(line)) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(EXIT_FAILURE);
            }
        };
    let mut lane = build_lane(checkout, config, &input.campaign);
    let reviewer = if config.gate.llm_reviewer {
        crate::gate::reviewer::from_config(&config.gate.reviewer, checkout)
    } else {
        None
    };
    let mut engine = Engine {
        checkout: checkout.to_path_buf(),
        git: Checkout::open(checkout)?,
        campaign: input.campaign,
        candidates: input.candidates,
        lane: &mut lane,
        agent: &ShellAgent,
        reviewer: reviewer.as_deref(),
        progress: progress.as_mut(),
        opts,
        state: crate::campaign::state::CampaignState::new("", "", "", &paths.rel, ""),
        paths: paths.clone(),
    };
    match fresh_branch {
        Some(branch) => {
            engine.state = engine.initial_state(&branch);
            engine.begin()?;
        }
        None => engine.state = Engine::load_state(&paths)?,
    }
    let outcome = engine.run();
    if let Some(signal) = crate::runner::supervisor::interrupted() {
        let recorded = engine.record_interruption(signal);
        drop(progress);
        eprintln!(
            "interrupted by {}: every process of the run was stopped{}; `sota-bot local resume {}` continues",
            crate::runner::supervisor::signal_name(signal),
            match recorded {
                Ok(()) => String::new(),
                Err(e) => format!(" (the checkpoint could not record it: {e})"),
            },
            checkout.display()
        );
        return Ok(crate::runner::supervisor::exit_code(signal));
    }
    drop(progress);
    match outcome {
        Ok(RunOutcome::Stopped {
            reason,
            reached_sota,
            unmeasurable,
        }) => {
            println!(
                "campaign stopped: {reason} (SGLang reached SOTA: {})\nfinal report: {}",
                if reached_sota { "yes" } else { "no" },
                paths.final_report().display()
            );
            Ok(if unmeasurable {
                EXIT_UNMEASURABLE
            } else {
                EXIT_OK
            })
        }
        Ok(RunOutcome::WaitingForHuman { after_round }) => {
            println!(
                "round {after_round} done; waiting for a human: run `sota-bot local resume {}`",
                checkout.display()
            );
            Ok(EXIT_OK)
        }
        Ok(RunOutcome::Paused { after_round }) => {
            println!("paused after round {after_round}");
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!(
                "error: {e}\n(the run directory is kept; `sota-bot local resume {}` continues)",
                checkout.display()
            );
            Ok(EXIT_FAILURE)
        }
    }
}

/// Runs `sota-bot local`.
pub fn run(args: Args) -> anyhow::Result<i32> {
    match args.command {
        LocalCommand::Status { checkout } => match crate::engine::setup::status_text(&checkout) {
            Ok(text) => {
                print!("{text}");
                Ok(EXIT_OK)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(EXIT_FAILURE)
            }
        },
        LocalCommand::Run(a) => {
            let config = match load_config(a.config.as_deref()) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            start(&a, &config)
        }
        LocalCommand::Report(a) => report(&a),
        LocalCommand::Demo { dir } => run_demo(dir),
        LocalCommand::Resume {
            checkout,
            config,
            agent,
            note,
            new_config,
        } => {
            let checkout = checkout.canonicalize()?;
            put_self_on_path();
            let paths = latest_run(&checkout)?;
            let mut state = Engine::load_state(&paths)?;
            let input = load_input(&paths)?;
            let given = match config.as_deref().map(|p| load_config(Some(p))) {
                Some(Ok(c)) => Some(RunConfig {
                    config_path: config.clone(),
                    config: c,
                    agent: agent.clone(),
                }),
                Some(Err(code)) => return Ok(code),
                None if agent != AgentArgs::default() => Some(RunConfig {
                    config_path: None,
                    config: LocalConfig::default(),
                    agent: agent.clone(),
                }),
                None => None,
            };
            let remembered = RunConfig::load(&checkout, &state.campaign_id);
            let run = match (remembered, given) {
                (Some(old), Some(new)) if old != new => {
                    if !new_config {
                        eprintln!(
                            "error: this campaign started with {}; the configuration given now differs. Run `sota-bot local resume {}` to continue as it started, or add --new-config to continue with the new one (recorded in the checkpoint)",
                            old.describe(),
                            checkout.display()
                        );
                        return Ok(EXIT_INVALID_INPUT);
                    }
                    state.run_events.push(crate::campaign::state::RunEvent {
                        at: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
                        kind: "config_changed".into(),
                        detail: format!(
                            "resumed with {} instead of {}",
                            new.describe(),
                            old.describe()
                        ),
                    });
                    new
                }
                (Some(old), _) => old,
                (None, Some(new)) => new,
                (None, None) => {
                    eprintln!("warning: no configuration was recorded for this campaign; resuming with the defaults");
                    RunConfig::default()
                }
            };
            run.save(&checkout, &state.campaign_id)?;
            if let Some(note) = &note {
                crate::engine::round::record_maintainer_note(&paths, state.next_round(), note)?;
            }
            state.waiting_for_human = false;
            let text = crate::report::render_checkpoint(&state)?;
            std::fs::write(paths.checkpoint(), text)?;
            let opts = engine_options(&run.config, &run.agent);
            drive(&checkout, &run.config, opts, input, paths, None)
        }
    }
}

/// The configuration a campaign runs with (the config file's settings and the agent flags),
/// remembered in the checkout's git directory when it starts so `resume` continues the same
/// way.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub config_path: Option<PathBuf>,
    pub config: LocalConfig,
    pub agent: AgentArgs,
}

impl RunConfig {
    fn path(checkout: &Path, campaign_id: &str) -> Option<PathBuf> {
        let git_dir = git2::Repository::discover(checkout)
            .ok()?
            .path()
            .to_path_buf();
        Some(
            git_dir
                .join("sota-campaigns")
                .join(format!("{campaign_id}.yaml")),
        )
    }

    /// The configuration `campaign_id` started with, if one was recorded.
    pub fn load(checkout: &Path, campaign_id: &str) -> Option<RunConfig> {
        let text = std::fs::read_to_string(Self::path(checkout, campaign_id)?).ok()?;
        serde_yaml_ng::from_str(&text).ok()
    }

    /// Records this configuration for `campaign_id`.
    pub fn save(&self, checkout: &Path, campaign_id: &str) -> anyhow::Result<()> {
        let Some(path) = Self::path(checkout, campaign_id) else {
            anyhow::bail!("{}: not a git checkout", checkout.display());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, serde_yaml_ng::to_string(self)?)?;
        Ok(())
    }

    fn describe(&self) -> String {
        let file = match &self.config_path {
            Some(p) => format!("config {}", p.display()),
            None => "the default configuration".to_string(),
        };
        if self.agent == AgentArgs::default() {
            file
        } else {
            format!("{file} and agent flags {:?}", self.agent)
        }
    }
}

/// Prepends this executable's folder to `PATH` so `sota-bot ...` in agent and lane
/// commands runs this very build.
fn put_self_on_path() {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return;
    };
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut parts = vec![dir];
    parts.extend(std::env::split_paths(&old));
    if let Ok(joined) = std::env::join_paths(parts) {
        std::env::set_var("PATH", joined);
    }
}

/// The upstream PR search of a fresh campaign, when the config names a token variable.
fn upstream_search(
    config: &LocalConfig,
    model: &str,
) -> Result<Option<crate::history::upstream::UpstreamPrs>, i32> {
    let Some(var) = &config.history.github_token_env else {
        return Ok(None);
    };
    let Some(token) = std::env::var(var).ok().filter(|t| !t.is_empty()) else {
        eprintln!("error: history.github_token_env names `{var}`, which is unset or empty");
        return Err(EXIT_INVALID_INPUT);
    };
    let upstream = crate::github::RepoName::parse(&config.history.upstream).map_err(|e| {
        eprintln!("error: history.upstream: {e}");
        EXIT_INVALID_INPUT
    })?;
    crate::cli::history::fetch_upstream(&config.history.github_api_url, &token, &upstream, model)
        .map(Some)
        .map_err(|e| {
            eprintln!("error: upstream PR search: {e}");
            EXIT_FAILURE
        })
}

fn fail(code: i32, msg: impl std::fmt::Display) -> anyhow::Result<i32> {
    eprintln!("error: {msg}");
    Ok(code)
}

/// Starts a fresh campaign (`local run`): request + config + plan -> engine input, then
/// drives the engine.
pub fn start(a: &RunArgs, config: &LocalConfig) -> anyhow::Result<i32> {
    use crate::engine::wiring::{new_campaign_input, NewCampaignError};
    put_self_on_path();
    let checkout = match a.checkout.canonicalize() {
        Ok(c) => c,
        Err(e) => return fail(EXIT_INVALID_INPUT, format!("{}: {e}", a.checkout.display())),
    };
    let text = match std::fs::read_to_string(&a.request) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_INVALID_INPUT, format!("{}: {e}", a.request.display())),
    };
    let Some(plan_path) = a.plan.clone().or_else(|| config.plan.clone()) else {
        return fail(
            EXIT_INVALID_INPUT,
            "no bench plan: pass --plan or set `plan` in the config",
        );
    };
    let plan = match std::fs::read_to_string(&plan_path) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_INVALID_INPUT, format!("{}: {e}", plan_path.display())),
    };
    let date = chrono::Local::now().date_naive();
    let input = match new_campaign_input(
        &text,
        &plan,
        &crate::campaign::RepoConfig::default(),
        config.sim.enabled.then_some(&config.sim),
        date,
    ) {
        Ok(i) => i,
        Err(NewCampaignError::Request(ps)) => {
            let msg = ps
                .iter()
                .map(|p| format!("{}: {p}", a.request.display()))
                .collect::<Vec<_>>()
                .join("\n");
            return fail(EXIT_INVALID_INPUT, msg);
        }
        Err(e) => return fail(EXIT_INVALID_INPUT, format!("{}: {e}", plan_path.display())),
    };
    let campaign = &input.campaign;
    let paths = RunPaths::for_campaign(&checkout, date, &campaign.model_slug);
    let branch = crate::git::campaign_branch(date, &campaign.model_slug);
    let mut opts = engine_options(config, &a.agent);
    opts.upstream_prs = match upstream_search(config, &campaign.model) {
        Ok(u) => u,
        Err(code) => return Ok(code),
    };
    // `resume` continues with what the campaign started with.
    RunConfig {
        config_path: a.config.clone(),
        config: config.clone(),
        agent: a.agent.clone(),
    }
    .save(&checkout, &input.campaign.campaign_id)?;
    let code = drive(
        &checkout,
        config,
        opts,
        input,
        paths.clone(),
        Some(branch.clone()),
    )?;
    println!(
        "branch {branch} in {} · run dir {}",
        checkout.display(),
        paths.root().display()
    );
    Ok(code)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn a_note_starting_with_a_dash_is_a_note() {
        let cli = crate::cli::Cli::try_parse_from([
            "sota-bot",
            "local",
            "resume",
            "/tmp/checkout",
            "--note",
            "-5% is fine",
        ])
        .unwrap();
        let crate::cli::Command::Local(a) = cli.command else {
            panic!("not local");
        };
        let super::LocalCommand::Resume { note, .. } = a.command else {
            panic!("not resume");
        };
        assert_eq!(note.as_deref(), Some("-5% is fine"));
    }
}
