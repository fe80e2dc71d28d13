//! Setting sota-bot up: GitHub's manifest flow and writing the new App's credentials, and the
//! files `sota-bot init` installs in a fork.

pub mod credentials;
pub mod fork_files;
pub mod manifest_flow;
