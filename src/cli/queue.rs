//! `sota-bot queue`: inspect the App's durable delivery queue and requeue dead-lettered
//! deliveries (a GitHub redelivery of a dead delivery also queues it again).

use std::path::PathBuf;

use super::{EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_OK};
use crate::server::queue::{JobRow, JobState, JobStore};

/// Arguments of `sota-bot queue`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database `serve` uses.
    #[arg(
        long,
        env = "SOTA_BOT_DATABASE",
        default_value = "sota-bot.sqlite",
        global = true
    )]
    pub database: PathBuf,
    #[command(subcommand)]
    pub command: QueueCommand,
}

/// Queue commands.
#[derive(Debug, clap::Subcommand)]
pub enum QueueCommand {
    /// List deliveries (oldest first) with their state, attempts and last error.
    List {
        /// Only deliveries in this state: queued, running, done or dead.
        #[arg(long)]
        state: Option<String>,
    },
    /// Queue dead-lettered deliveries again with a fresh attempt count.
    Requeue {
        /// Job ids (as `list` shows them).
        ids: Vec<i64>,
        /// Every dead delivery.
        #[arg(long, conflicts_with = "ids")]
        all_dead: bool,
    },
}

/// One line of `queue list`.
pub fn render_row(r: &JobRow) -> String {
    let error: String = r
        .last_error
        .as_deref()
        .unwrap_or("")
        .replace('\n', " ")
        .chars()
        .take(120)
        .collect();
    format!(
        "{:>6}  {:<7} {:>3}  {:<14} {:<38} {}",
        r.id,
        r.state.as_str(),
        r.attempts,
        r.event.chars().take(14).collect::<String>(),
        r.delivery_id.chars().take(38).collect::<String>(),
        crate::secrets::redact(&error)
    )
}

/// Runs the command.
pub fn run(a: Args) -> anyhow::Result<i32> {
    if !a.database.is_file() {
        eprintln!("error: no queue database at {}", a.database.display());
        return Ok(EXIT_INVALID_INPUT);
    }
    let store = match JobStore::open(&a.database) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_FAILURE);
        }
    };
    match a.command {
        QueueCommand::List { state } => {
            let wanted = match state.as_deref().map(|s| (s, JobState::parse(s))) {
                None => None,
                Some((_, Some(wanted))) => Some(wanted),
                Some((s, None)) => {
                    let states: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                    eprintln!("error: --state {s:?} is not one of {}", states.join(", "));
                    return Ok(EXIT_INVALID_INPUT);
                }
            };
            let rows = store.rows()?;
            println!(
                "{:>6}  {:<7} {:>3}  {:<14} {:<38} last error",
                "job", "state", "try", "event", "delivery"
            );
            for r in rows.iter().filter(|r| wanted.is_none_or(|s| r.state == s)) {
                println!("{}", render_row(r));
            }
            Ok(EXIT_OK)
        }
        QueueCommand::Requeue { ids, all_dead } => {
            if all_dead {
                let ids = store.requeue_all_dead()?;
                println!("requeued {} dead deliver(ies)", ids.len());
                return Ok(EXIT_OK);
            }
            if ids.is_empty() {
                eprintln!("error: name the job ids to requeue, or --all-dead");
                return Ok(EXIT_INVALID_INPUT);
            }
            let mut refused = 0;
            for id in ids {
                if store.requeue_dead(id)? {
                    println!("requeued job {id}");
                } else {
                    refused += 1;
                    eprintln!("error: job {id} is not a dead delivery (see `sota-bot queue list`)");
                }
            }
            Ok(if refused > 0 {
                EXIT_INVALID_INPUT
            } else {
                EXIT_OK
            })
        }
    }
}
