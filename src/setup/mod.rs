//! Setting the App up: GitHub's manifest flow and writing the new App's credentials.

pub mod credentials;
pub mod manifest_flow;
