//! sota-bot: review-gated SGLang performance campaigns, on GitHub or locally.
//!
//! The domain core (`campaign`, `bench`, `gate`, `profile`) does no I/O; the edges
//! (`github`, `server`, `runner`, `git`, `sim`) talk to the world behind small traits.

pub mod app;
pub mod bench;
pub mod campaign;
pub mod cli;
pub mod dashboard;
pub mod doctor;
pub mod engine;
pub mod exit;
pub mod framework;
pub mod gate;
pub mod git;
pub mod github;
pub mod history;
pub mod migrate;
pub mod profile;
pub mod report;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod setup;
pub mod sim;
pub mod tokenizer;
