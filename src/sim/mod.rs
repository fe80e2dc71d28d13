//! The simulator lane: a SIMULATED serving engine, simulated profiler traces and a scripted
//! coding-agent simulator, for machines without GPUs (tests and the local demo).
//!
//! Nothing here measures a real engine. The simulated engine's speed comes from an engine
//! profile (YAML cost model) that the scripted agent patches, so a local campaign can
//! genuinely move its gap.

pub mod agent;
pub mod flags;
pub mod profile;
pub mod scheduler;
pub mod server;
pub mod trace;

pub use profile::{load_profile, EngineProfile};
