//! Durable delivery queue in an embedded SQLite database (WAL).
//!
//! Ingest: one writer thread owns the write connection; concurrent deliveries are collected
//! and committed in one transaction (group commit), then each caller is answered. A delivery
//! is acknowledged to GitHub only after its commit, so a crash after the 2xx loses nothing.
//! Workers claim jobs with their own connection; jobs left `running` by a crash go back to
//! `queued` at start-up. The `X-GitHub-Delivery` id is unique, so a redelivery is recognised
//! and not processed twice.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::payload_codec::{self, StoredPayload};
use crate::migrate::{migrate, Migration, MigrationError, Step};

/// Most deliveries committed in one transaction.
const MAX_BATCH: usize = 256;

/// Rows looked at per transaction when dropping old payloads.
const PRUNE_BATCH: i64 = 512;

/// A queue failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: {source}")]
    Schema {
        path: PathBuf,
        #[source]
        source: Box<MigrationError>,
    },
    #[error(
        "database {path}: job {job_id} has state {value:?}, which this sota-bot does not know"
    )]
    UnknownState {
        path: PathBuf,
        job_id: i64,
        value: String,
    },
    #[error("the queue writer has stopped")]
    WriterGone,
    #[error("the database task failed: {0}")]
    Task(String),
}

/// A verified delivery to store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub payload: bytes::Bytes,
}

/// Whether a delivery was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New {
        job_id: i64,
    },
    Duplicate {
        job_id: i64,
    },
    /// A redelivery of a dead-lettered delivery (GitHub's "Redeliver" keeps the id): queued
    /// again with a fresh attempt count.
    Requeued {
        job_id: i64,
    },
}

/// Job lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobState {
    /// Column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// All states, for metrics.
    pub const ALL: [JobState; 4] = [Self::Queued, Self::Running, Self::Done, Self::Dead];

    /// The state a column value names, if it is one.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<u64>,
    pub payload: Vec<u8>,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Unix milliseconds.
    pub received_at: i64,
}

/// A stored job row, for inspection (tests, admin tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: i64,
    pub delivery_id: String,
    pub event: String,
    pub state: JobState,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// A job row as stored, before its state is checked.
type RawJobRow = (i64, String, String, String, u32, Option<String>);

fn raw_job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawJobRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// The queue's schema, oldest change first (see [`crate::migrate`]); append, never edit.
pub(crate) const MIGRATIONS: [Migration; 2] = [
    Migration {
        name: "jobs table",
        step: Step::Sql(
            "CREATE TABLE IF NOT EXISTS jobs (
                id              INTEGER PRIMARY KEY AUTOINCREMENT,
                delivery_id     TEXT NOT NULL UNIQUE,
                event           TEXT NOT NULL,
                action          TEXT,
                installation_id INTEGER,
                payload         BLOB NOT NULL,
                received_at     INTEGER NOT NULL,
                state           TEXT NOT NULL DEFAULT 'queued',
                attempts        INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER NOT NULL,
                last_error      TEXT,
                updated_at      INTEGER NOT NULL
            );
            CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, next_attempt_at, id);",
        ),
    },
    // Payload compression: rows without a codec hold the payload as it came and stay
    // readable.
    Migration {
        name: "payload codec",
        step: Step::AddColumn {
            table: "jobs",
            column: "payload_codec",
            definition: "TEXT",
        },
    },
];

/// The component name of the queue's schema version.
const COMPONENT: &str = "queue";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Opens (creating if needed) the database with the queue settings.
pub fn open_connection(path: &Path) -> Result<Connection, QueueError> {
    let err = |source| QueueError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    // WAL: readers never block the writer. synchronous=FULL: a commit is on disk (fsync)
    // before the 2xx goes out; group commit amortises the fsync over many deliveries.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    // Checkpoint every 256 pages (1 MB) instead of SQLite's 1,000: a checkpoint runs inside
    // the commit that crosses the mark and holds up every delivery waiting on it, so smaller
    // ones keep the tail latency down (measured: p99 about 20% lower, same throughput).
    conn.pragma_update(None, "wal_autocheckpoint", 256)
        .map_err(err)?;
    migrate(&mut conn, COMPONENT, &MIGRATIONS).map_err(|source| QueueError::Schema {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    Ok(conn)
}

type Reply = oneshot::Sender<Result<Enqueued, QueueError>>;

/// A delivery with its payload already encoded for storage (done by the caller, so the one
/// writer thread only moves bytes).
struct Prepared {
    delivery_id: String,
    event: String,
    action: Option<String>,
    installation_id: Option<u64>,
    payload: StoredPayload,
}

/// Handle to the ingest writer thread. Cheap to clone.
#[derive(Clone)]
pub struct IngestWriter {
    sender: mpsc::Sender<(Prepared, Reply)>,
}

impl IngestWriter {
    /// Starts the writer thread on its own connection.
    pub fn start(path: &Path) -> Result<Self, QueueError> {
        let conn = open_connection(path)?;
        let (sender, receiver) = mpsc::channel(4096);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("sota-queue-writer".into())
            .spawn(move || writer_loop(conn, path, receiver))
            .map_err(|e| QueueError::Task(e.to_string()))?;
        Ok(Self { sender })
    }

    /// Stores a delivery durably; returns after its transaction committed.
    pub async fn enqueue(&self, delivery: NewDelivery) -> Result<Enqueued, QueueError> {
        let (reply, answer) = oneshot::channel();
        let prepared = Prepared {
            payload: payload_codec::encode(&delivery.payload),
            delivery_id: delivery.delivery_id,
            event: delivery.event,
            action: delivery.action,
            installation_id: delivery.installation_id,
        };
        self.sender
            .send((prepared, reply))
            .await
            .map_err(|_| QueueError::WriterGone)?;
        answer.await.map_err(|_| QueueError::WriterGone)?
    }
}

fn writer_loop(
    mut conn: Connection,
    path: PathBuf,
    mut receiver: mpsc::Receiver<(Prepared, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        match commit_batch(&mut conn, &batch) {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(source) => {
                tracing::error!(error = %source, size = batch.len(), "queue commit failed");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(QueueError::Sqlite {
                        path: path.clone(),
                        source: rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                            Some(source.to_string()),
                        ),
                    }));
                }
            }
        }
    }
}

fn commit_batch(
    conn: &mut Connection,
    batch: &[(Prepared, Reply)],
) -> Result<Vec<Enqueued>, rusqlite::Error> {
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO jobs (delivery_id, event, action, installation_id, payload, payload_codec,
                               received_at, next_attempt_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7)
             ON CONFLICT(delivery_id) DO NOTHING RETURNING id",
        )?;
        let mut existing = tx.prepare_cached("SELECT id FROM jobs WHERE delivery_id = ?1")?;
        let mut revive = tx.prepare_cached(
            "UPDATE jobs SET state = 'queued', attempts = 0, payload = ?2, payload_codec = ?3,
                             next_attempt_at = ?4, updated_at = ?4, last_error = NULL
             WHERE delivery_id = ?1 AND state = 'dead' RETURNING id",
        )?;
        let now = now_ms();
        for (d, _) in batch {
            let installation = d.installation_id.and_then(|i| i64::try_from(i).ok());
            let new_id: Option<i64> = insert
                .query_row(
                    params![
                        d.delivery_id,
                        d.event,
                        d.action,
                        installation,
                        &d.payload.bytes[..],
                        d.payload.codec,
                        now
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            let outcome = match new_id {
                Some(job_id) => Enqueued::New { job_id },
                None => match revive
                    .query_row(
                        params![d.delivery_id, &d.payload.bytes[..], d.payload.codec, now],
                        |r| r.get(0),
                    )
                    .optional()?
                {
                    Some(job_id) => Enqueued::Requeued { job_id },
                    None => Enqueued::Duplicate {
                        job_id: existing.query_row([&d.delivery_id], |r| r.get(0))?,
                    },
                },
            };
            outcomes.push(outcome);
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Worker-side access: claim, complete, retry, dead-letter, counts.
pub struct JobStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl JobStore {
    /// Opens the worker connection.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        Ok(Self {
            conn: Mutex::new(open_connection(path)?),
            path: path.to_path_buf(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, QueueError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| QueueError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    /// Puts jobs a crashed process left `running` back in the queue. Returns how many.
    pub fn recover_running(&self) -> Result<usize, QueueError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = 'queued', updated_at = ?1 WHERE state = 'running'",
                [now_ms()],
            )
        })
    }

    /// Claims the oldest ready job, marking it `running`. A job whose stored payload cannot
    /// be read back goes to the dead-letter state with the reason, and the next one is tried.
    pub fn claim(&self) -> Result<Option<Job>, QueueError> {
        loop {
            let now = now_ms();
            let claimed = self.with(|c| {
                c.query_row(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, updated_at = ?1
                     WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND next_attempt_at <= ?1
                                 ORDER BY next_attempt_at, id LIMIT 1)
                     RETURNING id, delivery_id, event, action, installation_id, payload,
                               payload_codec, attempts, received_at",
                    [now],
                    |r| {
                        let job = Job {
                            id: r.get(0)?,
                            delivery_id: r.get(1)?,
                            event: r.get(2)?,
                            action: r.get(3)?,
                            installation_id: r
                                .get::<_, Option<i64>>(4)?
                                .and_then(|v| u64::try_from(v).ok()),
                            payload: r.get(5)?,
                            attempts: r.get(7)?,
                            received_at: r.get(8)?,
                        };
                        Ok((job, r.get::<_, Option<String>>(6)?))
                    },
                )
                .optional()
            })?;
            let Some((mut job, codec)) = claimed else {
                return Ok(None);
            };
            match payload_codec::decode(std::mem::take(&mut job.payload), codec.as_deref()) {
                Ok(payload) => {
                    job.payload = payload;
                    return Ok(Some(job));
                }
                Err(e) => {
                    tracing::error!(job = job.id, delivery = %job.delivery_id, error = %e, "stored payload unreadable; dead-lettered");
                    self.dead_letter(job.id, &format!("stored payload unreadable: {e}"))?;
                }
            }
        }
    }

    /// Marks a job done.
    pub fn complete(&self, job_id: i64) -> Result<(), QueueError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = 'done', last_error = NULL, updated_at = ?2 WHERE id = ?1",
                params![job_id, now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Puts a job back for another attempt after `delay`.
    pub fn retry_later(&self, job_id: i64, error: &str, delay: Duration) -> Result<(), QueueError> {
        let now = now_ms();
        let at = now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2));
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = 'queued', last_error = ?2, next_attempt_at = ?3, updated_at = ?4 WHERE id = ?1",
                params![job_id, error, at, now],
            )
            .map(|_| ())
        })
    }

    /// Moves a job to the dead-letter state (kept for inspection and manual requeue).
    pub fn dead_letter(&self, job_id: i64, error: &str) -> Result<(), QueueError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = 'dead', last_error = ?2, updated_at = ?3 WHERE id = ?1",
                params![job_id, error, now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Puts a dead job back in the queue with a fresh attempt count.
    pub fn requeue_dead(&self, job_id: i64) -> Result<bool, QueueError> {
        let now = now_ms();
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = ?2, updated_at = ?2
                 WHERE id = ?1 AND state = 'dead'",
                params![job_id, now],
            )
            .map(|n| n == 1)
        })
    }

    /// Drops the payloads of jobs that finished (`done`) before `finished_before` (Unix
    /// milliseconds), keeping each row so that a replayed delivery id is still recognised.
    /// Queued, running and dead jobs keep theirs. Works through the table in short
    /// transactions so the ingest writer is never held up for long. Returns how many.
    pub fn prune_payloads(&self, finished_before: i64) -> Result<usize, QueueError> {
        let mut after = 0i64;
        let mut pruned = 0;
        loop {
            let (last, n) = self.with(|c| {
                let last: Option<i64> = c.query_row(
                    "SELECT max(id) FROM (SELECT id FROM jobs WHERE id > ?1 ORDER BY id LIMIT ?2)",
                    params![after, PRUNE_BATCH],
                    |r| r.get(0),
                )?;
                let Some(last) = last else {
                    return Ok((None, 0));
                };
                let n = c.execute(
                    "UPDATE jobs SET payload = x'', payload_codec = ?4
                     WHERE id > ?1 AND id <= ?2 AND state = 'done' AND updated_at < ?3
                       AND payload_codec IS NOT ?4",
                    params![after, last, finished_before, payload_codec::PRUNED],
                )?;
                Ok((Some(last), n))
            })?;
            pruned += n;
            match last {
                Some(last) => after = last,
                None => return Ok(pruned),
            }
        }
    }

    /// Number of jobs per state.
    pub fn counts(&self) -> Result<Vec<(String, u64)>, QueueError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            rows.map(|r| r.map(|(s, n)| (s, u64::try_from(n).unwrap_or(0))))
                .collect()
        })
    }

    /// Puts every dead job back in the queue; returns their ids.
    pub fn requeue_all_dead(&self) -> Result<Vec<i64>, QueueError> {
        let now = now_ms();
        self.with(|c| {
            let mut stmt = c.prepare(
                "UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = ?1, updated_at = ?1
                 WHERE state = 'dead' RETURNING id",
            )?;
            let ids = stmt.query_map([now], |r| r.get(0))?;
            ids.collect()
        })
    }

    /// The most recent dead-lettered jobs, newest first (for `sota-bot doctor`).
    pub fn dead_letters(&self, limit: u32) -> Result<Vec<JobRow>, QueueError> {
        self.job_rows(
            "WHERE state = 'dead' ORDER BY updated_at DESC, id DESC LIMIT ?1",
            [limit],
        )
    }

    /// All rows, oldest first (for tests and inspection).
    pub fn rows(&self) -> Result<Vec<JobRow>, QueueError> {
        self.job_rows("ORDER BY id", [])
    }

    /// The rows `tail` selects; a state this release does not know is an error naming it.
    fn job_rows(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<JobRow>, QueueError> {
        let raw = self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT id, delivery_id, event, state, attempts, last_error FROM jobs {tail}"
            ))?;
            let rows = stmt.query_map(args, raw_job_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        raw.into_iter()
            .map(|(id, delivery_id, event, state, attempts, last_error)| {
                Ok(JobRow {
                    state: JobState::parse(&state).ok_or_else(|| QueueError::UnknownState {
                        path: self.path.clone(),
                        job_id: id,
                        value: state,
                    })?,
                    id,
                    delivery_id,
                    event,
                    attempts,
                    last_error,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: &str) -> NewDelivery {
        NewDelivery {
            delivery_id: id.into(),
            event: "ping".into(),
            action: None,
            installation_id: Some(7),
            payload: bytes::Bytes::from_static(b"{}"),
        }
    }

    fn large_delivery(id: &str) -> NewDelivery {
        let body: String = (0..300)
            .map(|i| format!(r#""k{i}":"https://api.github.com/repos/o/r/pulls/{i}","#))
            .collect();
        NewDelivery {
            payload: bytes::Bytes::from(format!("{{{body}\"end\":1}}")),
            ..delivery(id)
        }
    }

    /// `(delivery id, stored payload length, codec)` of the rows matching `filter`, by id.
    fn stored_payloads(conn: &Connection, filter: &str) -> Vec<(String, i64, Option<String>)> {
        conn.prepare(&format!(
            "SELECT delivery_id, length(payload), payload_codec FROM jobs WHERE {filter} ORDER BY id"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    #[tokio::test]
    async fn payloads_are_stored_compressed_and_read_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let writer = IngestWriter::start(&path).unwrap();
        let big = large_delivery("big");
        writer.enqueue(big.clone()).await.unwrap();
        writer.enqueue(delivery("small")).await.unwrap();

        let stored = stored_payloads(&Connection::open(&path).unwrap(), "1");
        assert_eq!(stored[0].2.as_deref(), Some(payload_codec::LZ4));
        assert!((stored[0].1 as usize) * 3 < big.payload.len(), "{stored:?}");
        assert_eq!((stored[1].1, stored[1].2.as_deref()), (2, None));

        let store = JobStore::open(&path).unwrap();
        assert_eq!(
            store.claim().unwrap().unwrap().payload,
            big.payload.to_vec()
        );
        assert_eq!(store.claim().unwrap().unwrap().payload, b"{}".to_vec());
    }

    #[tokio::test]
    async fn old_processed_payloads_are_dropped_but_replays_still_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let writer = IngestWriter::start(&path).unwrap();
        for id in ["old-done", "new-done", "old-dead", "waiting"] {
            writer.enqueue(large_delivery(id)).await.unwrap();
        }
        // More rows than one pruning transaction looks at.
        for i in 0..(PRUNE_BATCH as usize + 40) {
            writer
                .enqueue(delivery(&format!("bulk-{i}")))
                .await
                .unwrap();
        }
        let store = JobStore::open(&path).unwrap();
        let mut ids = std::collections::HashMap::new();
        while let Some(job) = store.claim().unwrap() {
            ids.insert(job.delivery_id.clone(), job.id);
            match job.delivery_id.as_str() {
                "old-dead" => store.dead_letter(job.id, "fatal").unwrap(),
                "waiting" => store
                    .retry_later(job.id, "later", Duration::from_secs(3600))
                    .unwrap(),
                _ => store.complete(job.id).unwrap(),
            }
        }
        let raw = Connection::open(&path).unwrap();
        raw.execute("UPDATE jobs SET updated_at = 1000", [])
            .unwrap();
        raw.execute(
            "UPDATE jobs SET updated_at = 5000 WHERE delivery_id = 'new-done'",
            [],
        )
        .unwrap();

        let pruned = store.prune_payloads(2000).unwrap();
        assert_eq!(
            pruned,
            1 + PRUNE_BATCH as usize + 40,
            "old-done and the bulk rows"
        );
        assert_eq!(store.prune_payloads(2000).unwrap(), 0, "nothing twice");
        let kept = stored_payloads(&raw, "delivery_id NOT LIKE 'bulk-%'");
        let pruned_ids: Vec<_> = kept
            .iter()
            .filter(|(_, len, codec)| *len == 0 && codec.as_deref() == Some(payload_codec::PRUNED))
            .map(|(id, ..)| id.as_str())
            .collect();
        assert_eq!(pruned_ids, ["old-done"], "{kept:?}");

        // The dead job keeps its payload and can still be requeued and processed.
        assert!(store.requeue_dead(ids["old-dead"]).unwrap());
        let again = store.claim().unwrap().unwrap();
        assert_eq!(again.payload, large_delivery("x").payload.to_vec());
        // A replay of a pruned delivery is still recognised.
        assert_eq!(
            writer.enqueue(large_delivery("old-done")).await.unwrap(),
            Enqueued::Duplicate {
                job_id: ids["old-done"]
            }
        );
    }

    #[test]
    fn a_database_from_before_compression_is_migrated_and_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        // Releases before payload compression and schema versions wrote migration 1's table
        // (the migrations are never edited) and no version row.
        let Step::Sql(jobs_table) = MIGRATIONS[0].step else {
            panic!("migration 1 is the jobs table");
        };
        let old = Connection::open(&path).unwrap();
        old.execute_batch(jobs_table).unwrap();
        old.execute(
            "INSERT INTO jobs (delivery_id, event, payload, received_at, next_attempt_at, updated_at)
             VALUES ('old-1', 'ping', CAST('{\"zen\":1}' AS BLOB), 1, 1, 1)",
            [],
        )
        .unwrap();
        drop(old);
        let store = JobStore::open(&path).unwrap();
        let job = store.claim().unwrap().unwrap();
        assert_eq!(
            (job.delivery_id.as_str(), &job.payload[..]),
            ("old-1", &b"{\"zen\":1}"[..])
        );
        drop(store);
        // Opening again finds the current version and changes nothing.
        JobStore::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(
            crate::migrate::stored_version(&conn, COMPONENT).unwrap(),
            MIGRATIONS.len() as i64
        );
        assert_eq!(stored_payloads(&conn, "1")[0].2, None, "codec column added");
    }

    #[test]
    fn a_database_from_a_newer_release_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite");
        JobStore::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE schema_versions SET version = 9 WHERE component = 'queue'",
                [],
            )
            .unwrap();
        let err = JobStore::open(&path).err().expect("refused");
        assert!(matches!(
            err,
            QueueError::Schema { ref source, .. }
                if matches!(**source, MigrationError::TooNew { stored: 9, .. })
        ));
        assert!(
            err.to_string().contains(
                "the queue schema is at version 9, newer than this sota-bot knows (up to 2)"
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unknown_stored_job_state_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let writer = IngestWriter::start(&path).unwrap();
        writer.enqueue(delivery("odd")).await.unwrap();
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE jobs SET state = 'paused'", [])
            .unwrap();
        let err = JobStore::open(&path).unwrap().rows().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "database {}: job 1 has state \"paused\", which this sota-bot does not know",
                path.display()
            )
        );
    }

    #[tokio::test]
    async fn an_unreadable_stored_payload_is_dead_lettered_and_the_queue_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let writer = IngestWriter::start(&path).unwrap();
        writer.enqueue(large_delivery("damaged")).await.unwrap();
        writer.enqueue(large_delivery("fine")).await.unwrap();
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE jobs SET payload = substr(payload, 1, 40) WHERE delivery_id = 'damaged'",
                [],
            )
            .unwrap();

        let store = JobStore::open(&path).unwrap();
        let job = store.claim().unwrap().unwrap();
        assert_eq!(job.delivery_id, "fine");
        let damaged = store
            .rows()
            .unwrap()
            .into_iter()
            .find(|r| r.delivery_id == "damaged")
            .unwrap();
        assert_eq!(damaged.state, JobState::Dead);
        let reason = damaged.last_error.unwrap();
        assert!(
            reason.starts_with("stored payload unreadable: "),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn group_commit_dedupes_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sqlite");
        let writer = IngestWriter::start(&path).unwrap();
        let results = futures::future::join_all(
            ["a", "b", "a", "c"]
                .iter()
                .map(|id| writer.enqueue(delivery(id))),
        )
        .await;
        let outcomes: Vec<_> = results.into_iter().map(Result::unwrap).collect();
        let new = outcomes
            .iter()
            .filter(|o| matches!(o, Enqueued::New { .. }))
            .count();
        assert_eq!(new, 3);
        assert!(matches!(
            writer.enqueue(delivery("b")).await.unwrap(),
            Enqueued::Duplicate { .. }
        ));

        let store = JobStore::open(&path).unwrap();
        let job = store.claim().unwrap().unwrap();
        assert_eq!(
            (job.delivery_id.as_str(), job.attempts, job.installation_id),
            ("a", 1, Some(7))
        );
        // Simulated crash: a fresh store recovers the running job.
        drop(store);
        let store = JobStore::open(&path).unwrap();
        assert_eq!(store.recover_running().unwrap(), 1);
        let again = store.claim().unwrap().unwrap();
        assert_eq!((again.delivery_id.as_str(), again.attempts), ("a", 2));
        store.complete(again.id).unwrap();

        let b = store.claim().unwrap().unwrap();
        store
            .retry_later(b.id, "boom", Duration::from_secs(3600))
            .unwrap();
        let c = store.claim().unwrap().unwrap();
        assert_eq!(c.delivery_id, "c", "b is delayed");
        store.dead_letter(c.id, "fatal").unwrap();
        assert!(store.claim().unwrap().is_none());
        let mut counts = store.counts().unwrap();
        counts.sort();
        assert_eq!(
            counts,
            vec![("dead".into(), 1), ("done".into(), 1), ("queued".into(), 1)]
        );
        assert!(store.requeue_dead(c.id).unwrap());
        assert_eq!(store.claim().unwrap().unwrap().delivery_id, "c");
    }
}
