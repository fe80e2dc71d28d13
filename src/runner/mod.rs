//! What runs on the GPU host: serving-engine processes, readiness checks, benchmark
//! execution, failure classification, help/version snapshots, launch groups and the
//! built-in benchmark client. Process spawning sits behind [`process::ProcessLauncher`].

pub mod agent;
pub mod agent_preset;
pub mod agent_usage;
pub mod bench;
pub mod classify;
pub mod client;
pub mod group;
pub mod help;
pub mod preflight;
pub mod process;
pub mod server;
pub mod supervisor;
