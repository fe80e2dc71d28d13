//! Campaign domain: request, frameworks, run directory, manifest, state (pure, no I/O).

pub mod framework;

pub use framework::Framework;
