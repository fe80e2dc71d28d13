//! Campaign domain: request, frameworks, run directory, manifest, state (pure, no I/O).

pub mod framework;
pub mod ledger;
pub mod state;

pub use framework::Framework;
