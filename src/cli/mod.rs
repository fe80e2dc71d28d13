//! Command-line front end. Each subcommand lives in its own file and returns an exit code.
//!
//! Exit codes (documented in the README, defined in [`crate::exit`]): 0 success, 1 runtime
//! failure (I/O, process, network), 2 invalid input (a file or argument that failed to parse
//! or validate), 3 a domain verdict that is not "ok" (for example a gate that blocks), 4 a
//! campaign that cannot be measured.

use clap::{Parser, Subcommand};

pub mod app;
pub mod backup;
pub mod bench;
pub mod doctor;
pub mod healthz;
pub mod history;
pub mod init;
pub mod local;
pub mod local_demo;
pub mod profile;
pub mod queue;
pub mod recover;
pub mod request;
pub mod runner;
pub mod serve;
pub mod sim;

pub use crate::exit::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK, EXIT_UNMEASURABLE, EXIT_VERDICT};

#[derive(Debug, Parser)]
#[command(
    name = "sota-bot",
    version,
    about = "Review-gated SGLang performance campaigns, on GitHub or locally"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate a campaign request (issue-form body or YAML).
    Request(request::Args),
    /// Benchmark plans, raw-output parsing, summaries and gap decisions.
    Bench(bench::Args),
    /// Phase 0.5 on its own: the model's SGLang history from a checkout, verified.
    History(history::Args),
    /// Torch-profiler trace analysis and NCU digests.
    Profile(profile::Args),
    /// Run a whole campaign locally against a git checkout.
    Local(local::Args),
    /// Simulators for machines without GPUs (serving engine, scripted agent).
    Sim(sim::Args),
    /// Run one campaign phase inside a GitHub Actions workflow on a GPU runner.
    Runner(runner::Args),
    /// Install the campaign workflows, issue form and config into a fork checkout.
    Init(init::Args),
    /// Run the GitHub App service.
    Serve(serve::Args),
    /// Rebuild the App's campaign database from a fork's campaign branches.
    Recover(recover::Args),
    /// Inspect the App's delivery queue; requeue dead-lettered deliveries.
    Queue(queue::Args),
    /// The GitHub App's manifest; create the App through GitHub's manifest flow.
    App(app::Args),
    /// Check an App installation, repository, runners and database; print each fix.
    Doctor(doctor::Args),
    /// Ask a running `serve` for /healthz (the container's health check).
    Healthz(healthz::Args),
    /// Copy the service database consistently while `serve` runs.
    Backup(backup::Args),
}

/// Parses arguments, runs the command, and maps errors to exit codes.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Request(a) => request::run(a),
        Command::Bench(a) => bench::run(a),
        Command::History(a) => history::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Local(a) => local::run(a),
        Command::Sim(a) => sim::run(a),
        Command::Runner(a) => runner::run(a),
        Command::Init(a) => init::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Recover(a) => recover::run(a),
        Command::Queue(a) => queue::run(a),
        Command::App(a) => app::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Healthz(a) => healthz::run(a),
        Command::Backup(a) => backup::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            EXIT_FAILURE
        }
    }
}
