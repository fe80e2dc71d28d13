//! `sota-bot backup --out FILE`: a consistent copy of the service database (queue and
//! campaigns) while `serve` runs.

use std::path::PathBuf;

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::server::backup::{backup, BackupError};

/// Arguments of `sota-bot backup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database `serve` uses.
    #[arg(long, env = "SOTA_BOT_DATABASE", default_value = "./sota-bot.sqlite")]
    pub database: PathBuf,
    /// The backup file to create (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> anyhow::Result<i32> {
    match backup(&a.database, &a.out) {
        Ok(()) => {
            println!("backed up {} to {}", a.database.display(), a.out.display());
            Ok(EXIT_OK)
        }
        Err(e @ (BackupError::Missing(_) | BackupError::Exists(_))) => {
            eprintln!("error: {e}");
            Ok(EXIT_INVALID_INPUT)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}
