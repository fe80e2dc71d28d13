//! Not wired yet: owned by the issue that delivers this command.

/// Arguments of this command.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("this command is not available in this build yet")
}
