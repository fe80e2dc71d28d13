//! The App's record of campaigns, in the same SQLite file as the delivery queue: which
//! issue asked for a campaign, where it runs, what was last dispatched, and which workflow
//! runs were already handled (so a redelivered or reconciled completion never dispatches
//! twice). The campaign branch stays the source of truth for results; this is routing.

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::migrate::{migrate, Migration, MigrationError, Step};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;

/// The campaign records' schema, oldest change first (see [`crate::migrate`]); append, never
/// edit.
const MIGRATIONS: [Migration; 2] = [
    Migration {
        name: "campaigns and handled runs",
        step: Step::Sql(ROUTING_SCHEMA),
    },
    Migration {
        name: "dashboard views and spend",
        step: Step::Sql(DASHBOARD_SCHEMA),
    },
];

/// The component name of the campaign records' schema version.
const COMPONENT: &str = "campaigns";

const ROUTING_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    issue INTEGER NOT NULL,
    fork TEXT NOT NULL,
    model TEXT NOT NULL,
    branch TEXT NOT NULL,
    base_branch TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    installation_id INTEGER NOT NULL,
    pr_number INTEGER,
    pr_node_id TEXT,
    phase TEXT NOT NULL,
    round INTEGER NOT NULL DEFAULT 0,
    held INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    dispatch TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS campaigns_one_active
    ON campaigns(fork, model) WHERE phase NOT IN ('finished', 'stopped');
CREATE INDEX IF NOT EXISTS campaigns_by_issue ON campaigns(repo, issue);
CREATE TABLE IF NOT EXISTS handled_runs (
    run_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    campaign TEXT NOT NULL,
    PRIMARY KEY (run_id, attempt)
);
";

/// Per-campaign data the dashboard shows: when the status last changed, the visibility of
/// the repositories, the last checkpoint read from the branch, and spend per step.
const DASHBOARD_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS campaign_views (
    id TEXT PRIMARY KEY,
    private INTEGER,
    checkpoint TEXT,
    checkpoint_version INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    status_since TEXT,
    updated_at TEXT
);
-- Campaigns recorded before the dashboard existed: known status, unknown times.
INSERT OR IGNORE INTO campaign_views (id, status)
    SELECT id, phase || CASE WHEN held != 0 THEN '+held' ELSE '' END FROM campaigns;
CREATE TABLE IF NOT EXISTS campaign_run_usage (
    run_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    campaign TEXT NOT NULL,
    step INTEGER NOT NULL,
    gpu_minutes REAL,
    PRIMARY KEY (run_id, attempt)
);
CREATE INDEX IF NOT EXISTS campaign_run_usage_by_campaign ON campaign_run_usage(campaign);
CREATE TABLE IF NOT EXISTS campaign_agent_usage (
    campaign TEXT NOT NULL,
    step INTEGER NOT NULL,
    cost_usd REAL,
    turns INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    PRIMARY KEY (campaign, step)
);
";

/// Where a campaign stands, as the App routes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppPhase {
    /// Recorded with its branch; the PR, labels or baseline dispatch are not all done yet
    /// (a retried job or reconciliation finishes them).
    Starting,
    /// The baseline workflow is dispatched or running.
    Baseline,
    /// A round workflow is dispatched or running.
    Round,
    /// Waiting for `/sota continue` (autonomy, a hold, or the gate asked for a human).
    Waiting,
    /// A workflow failed more often than the retry budget; `/sota retry` re-dispatches.
    Failed,
    /// The loop ended (final report posted).
    Finished,
    /// Stopped by a user.
    Stopped,
}

impl AppPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            AppPhase::Starting => "starting",
            AppPhase::Baseline => "baseline",
            AppPhase::Round => "round",
            AppPhase::Waiting => "waiting",
            AppPhase::Failed => "failed",
            AppPhase::Finished => "finished",
            AppPhase::Stopped => "stopped",
        }
    }

    /// Every phase.
    pub const ALL: [AppPhase; 7] = [
        AppPhase::Starting,
        AppPhase::Baseline,
        AppPhase::Round,
        AppPhase::Waiting,
        AppPhase::Failed,
        AppPhase::Finished,
        AppPhase::Stopped,
    ];

    /// The phase a column value names, if it is one.
    pub fn parse(value: &str) -> Option<AppPhase> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }

    /// Whether the campaign still occupies its model on the fork.
    pub fn is_active(self) -> bool {
        !matches!(self, AppPhase::Finished | AppPhase::Stopped)
    }
}

/// Inputs every dispatch of a campaign repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchSettings {
    pub runner_labels: Vec<String>,
    pub gpu_model: String,
    pub gpu_count: u32,
    pub visible_devices: String,
    /// Runner config path in the fork, when it has one.
    pub runner_config: Option<String>,
    pub max_rounds: u32,
    pub wait_for_human: bool,
    /// The coding agent's preset (`claude`, `codex`, `command`; `.github/sota-bot.yml`
    /// `agent.preset`).
    #[serde(default)]
    pub agent_preset: Option<String>,
    /// The agent's command line (`command` preset) or executable.
    #[serde(default)]
    pub agent_command: Option<String>,
    #[serde(default)]
    pub agent_model: Option<String>,
    #[serde(default)]
    pub agent_max_turns: Option<u32>,
    /// The campaign's agent cost budget (USD).
    #[serde(default)]
    pub agent_max_cost_usd: Option<f64>,
    /// Names (never values) of the job variables holding the agent's secrets.
    #[serde(default)]
    pub agent_secret_names: Vec<String>,
    /// Minutes a campaign job may run (`budget.job_timeout_minutes`); the phase inside it
    /// gets 30 minutes less, for set-up and the push.
    #[serde(default)]
    pub job_timeout_minutes: Option<u32>,
    /// The `/sota continue <note>` for one round: sent with that round's dispatches (retries
    /// included) and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintainer_note: Option<RoundNote>,
}

/// A maintainer's note and the round it was given for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundNote {
    pub round: u32,
    pub text: String,
}

/// One campaign as the App routes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRecord {
    pub id: String,
    /// Repository of the request issue.
    pub repo: String,
    pub issue: u64,
    /// Repository the campaign branch, PR and workflows live in.
    pub fork: String,
    pub model: String,
    pub branch: String,
    pub base_branch: String,
    pub run_dir: String,
    pub installation_id: u64,
    pub pr_number: Option<u64>,
    pub pr_node_id: Option<String>,
    pub phase: AppPhase,
    /// Last dispatched phase: 0 the baseline, N round N.
    pub round: u32,
    pub held: bool,
    /// Failed runs re-dispatched for the current phase.
    pub retries: u32,
    pub dispatch: DispatchSettings,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("campaign database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("campaign database: stored dispatch settings are unreadable: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("campaign database: {0}")]
    Schema(Box<MigrationError>),
    #[error("campaign database: campaign {campaign} has phase {value:?}, which this sota-bot does not know")]
    UnknownPhase { campaign: String, value: String },
    #[error("a campaign for {model} is already active on {fork}")]
    AlreadyActive { model: String, fork: String },
}

/// Campaign records in SQLite.
pub struct CampaignStore {
    conn: Mutex<Connection>,
}

const COLUMNS: &str =
    "id, repo, issue, fork, model, branch, base_branch, run_dir, installation_id, \
     pr_number, pr_node_id, phase, round, held, retries, dispatch";

/// A stored row: the record with its phase and dispatch settings still as stored.
struct StoredRow {
    record: CampaignRecord,
    phase: String,
    dispatch: String,
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        phase: row.get(11)?,
        dispatch: row.get(15)?,
        record: CampaignRecord {
            id: row.get(0)?,
            repo: row.get(1)?,
            issue: row.get(2)?,
            fork: row.get(3)?,
            model: row.get(4)?,
            branch: row.get(5)?,
            base_branch: row.get(6)?,
            run_dir: row.get(7)?,
            installation_id: row.get(8)?,
            pr_number: row.get(9)?,
            pr_node_id: row.get(10)?,
            phase: AppPhase::Stopped,
            round: row.get(12)?,
            held: row.get::<_, i64>(13)? != 0,
            retries: row.get(14)?,
            dispatch: DispatchSettings {
                runner_labels: Vec::new(),
                gpu_model: String::new(),
                gpu_count: 0,
                visible_devices: String::new(),
                runner_config: None,
                max_rounds: 0,
                wait_for_human: false,
                agent_preset: None,
                agent_command: None,
                agent_model: None,
                agent_max_turns: None,
                agent_max_cost_usd: None,
                agent_secret_names: Vec::new(),
                job_timeout_minutes: None,
                maintainer_note: None,
            },
        },
    })
}

impl CampaignStore {
    /// Opens the database file at `path`, creating or migrating the tables.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrate(&mut conn, COMPONENT, &MIGRATIONS).map_err(|e| StoreError::Schema(Box::new(e)))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn query(
        &self,
        where_clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<CampaignRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM campaigns WHERE {where_clause}"
        ))?;
        let rows = stmt.query_map(args, from_row)?;
        let mut out = Vec::new();
        for r in rows {
            let StoredRow {
                mut record,
                phase,
                dispatch,
            } = r?;
            record.phase = AppPhase::parse(&phase).ok_or_else(|| StoreError::UnknownPhase {
                campaign: record.id.clone(),
                value: phase,
            })?;
            record.dispatch = serde_json::from_str(&dispatch)?;
            out.push(record);
        }
        Ok(out)
    }

    /// Inserts a new campaign; refuses a second active campaign for the model on the fork.
    pub fn insert(&self, c: &CampaignRecord) -> Result<(), StoreError> {
        let dispatch = serde_json::to_string(&c.dispatch)?;
        let conn = self.lock();
        let result = conn.execute(
            &format!("INSERT INTO campaigns ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
            params![
                c.id, c.repo, c.issue, c.fork, c.model, c.branch, c.base_branch, c.run_dir,
                c.installation_id, c.pr_number, c.pr_node_id, c.phase.as_str(), c.round,
                i64::from(c.held), c.retries, dispatch
            ],
        );
        match result {
            Ok(_) => Ok(touch_view(&conn, c)?),
            // Only the one-active-campaign index says "already active"; any other failure
            // (a trigger, a duplicate id, a full disk) is the database's own error.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                Err(StoreError::AlreadyActive {
                    model: c.model.clone(),
                    fork: c.fork.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Saves every mutable field of `c`.
    pub fn update(&self, c: &CampaignRecord) -> Result<(), StoreError> {
        let dispatch = serde_json::to_string(&c.dispatch)?;
        let conn = self.lock();
        conn.execute(
            "UPDATE campaigns SET pr_number = ?2, pr_node_id = ?3, phase = ?4, round = ?5, held = ?6, \
             retries = ?7, dispatch = ?8 WHERE id = ?1",
            params![
                c.id, c.pr_number, c.pr_node_id, c.phase.as_str(), c.round, i64::from(c.held),
                c.retries, dispatch
            ],
        )?;
        touch_view(&conn, c)?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<CampaignRecord>, StoreError> {
        Ok(self.query("id = ?1", &[&id])?.into_iter().next())
    }

    /// The newest campaign started from `repo#issue`.
    pub fn by_issue(&self, repo: &str, issue: u64) -> Result<Option<CampaignRecord>, StoreError> {
        Ok(self
            .query(
                "repo = ?1 AND issue = ?2 ORDER BY rowid DESC",
                &[&repo, &issue],
            )?
            .into_iter()
            .next())
    }

    /// The campaign whose PR is `fork#pr`.
    pub fn by_pull(&self, fork: &str, pr: u64) -> Result<Option<CampaignRecord>, StoreError> {
        Ok(self
            .query("fork = ?1 AND pr_number = ?2", &[&fork, &pr])?
            .into_iter()
            .next())
    }

    /// The campaign running on `fork`'s `branch`.
    pub fn by_branch(
        &self,
        fork: &str,
        branch: &str,
    ) -> Result<Option<CampaignRecord>, StoreError> {
        Ok(self
            .query(
                "fork = ?1 AND branch = ?2 ORDER BY rowid DESC",
                &[&fork, &branch],
            )?
            .into_iter()
            .next())
    }

    /// Campaigns not finished or stopped (reconciliation walks these).
    pub fn active(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        self.query("phase NOT IN ('finished', 'stopped') ORDER BY rowid", &[])
    }

    /// Campaign counts per phase (the `/metrics` gauge).
    pub fn count_by_phase(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT phase, COUNT(*) FROM campaigns GROUP BY phase ORDER BY phase")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that a workflow run attempt was handled; `false` when it already was.
    pub fn claim_run(&self, run_id: u64, attempt: u64, campaign: &str) -> Result<bool, StoreError> {
        let n = self.lock().execute(
            "INSERT OR IGNORE INTO handled_runs (run_id, attempt, campaign) VALUES (?1, ?2, ?3)",
            params![run_id, attempt, campaign],
        )?;
        Ok(n == 1)
    }

    /// Forgets a claim (the handling failed and must be retried).
    pub fn release_run(&self, run_id: u64, attempt: u64) -> Result<(), StoreError> {
        self.lock().execute(
            "DELETE FROM handled_runs WHERE run_id = ?1 AND attempt = ?2",
            params![run_id, attempt],
        )?;
        Ok(())
    }

    /// Whether a run attempt was handled.
    pub fn run_handled(&self, run_id: u64, attempt: u64) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT 1 FROM handled_runs WHERE run_id = ?1 AND attempt = ?2",
                params![run_id, attempt],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

/// Now, as the views store times.
pub(super) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn status_key(c: &CampaignRecord) -> String {
    format!("{}{}", c.phase.as_str(), if c.held { "+held" } else { "" })
}

/// Marks `c`'s dashboard view as changed now (on every save, so the dashboard never asks
/// GitHub); its status time moves only when its status changed.
fn touch_view(conn: &Connection, c: &CampaignRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO campaign_views (id, status, status_since, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(id) DO UPDATE SET
           updated_at = excluded.updated_at,
           status_since = CASE WHEN campaign_views.status = excluded.status
                                    AND campaign_views.status_since IS NOT NULL
                               THEN campaign_views.status_since ELSE excluded.status_since END,
           status = excluded.status",
        params![c.id, status_key(c), now_text()],
    )?;
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A campaign record for tests.
    pub(in crate::app) fn record(id: &str, model: &str) -> CampaignRecord {
        CampaignRecord {
            id: id.into(),
            repo: "o/r".into(),
            issue: 7,
            fork: "o/sglang".into(),
            model: model.into(),
            branch: format!("sota/{id}"),
            base_branch: "main".into(),
            run_dir: format!("runs/{id}"),
            installation_id: 1,
            pr_number: None,
            pr_node_id: None,
            phase: AppPhase::Baseline,
            round: 0,
            held: false,
            retries: 0,
            dispatch: DispatchSettings {
                runner_labels: vec!["self-hosted".into(), "1-gpu-h100".into()],
                gpu_model: "h100".into(),
                gpu_count: 1,
                visible_devices: String::new(),
                runner_config: None,
                max_rounds: 8,
                wait_for_human: false,
                agent_preset: Some("claude".into()),
                agent_command: None,
                agent_model: Some("claude-sonnet-4-5".into()),
                agent_max_turns: Some(100),
                agent_max_cost_usd: Some(25.0),
                agent_secret_names: vec!["ANTHROPIC_API_KEY".into()],
                job_timeout_minutes: None,
                maintainer_note: Some(RoundNote {
                    round: 3,
                    text: "try the \"fused\" MoE gate".into(),
                }),
            },
        }
    }

    #[test]
    fn one_active_campaign_per_model_and_fork_and_records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bot.db");
        let store = CampaignStore::open(&db).unwrap();
        let mut a = record("a", "m");
        store.insert(&a).unwrap();
        assert!(matches!(
            store.insert(&record("b", "m")),
            Err(StoreError::AlreadyActive { .. })
        ));
        store.insert(&record("c", "other")).unwrap();
        a.phase = AppPhase::Finished;
        a.pr_number = Some(12);
        store.update(&a).unwrap();
        store.insert(&record("d", "m")).unwrap();
        drop(store);

        let store = CampaignStore::open(&db).unwrap();
        assert_eq!(store.get("a").unwrap(), Some(a.clone()));
        assert_eq!(store.by_pull("o/sglang", 12).unwrap(), Some(a));
        assert_eq!(store.by_issue("o/r", 7).unwrap().unwrap().id, "d");
        assert_eq!(
            store.by_branch("o/sglang", "sota/c").unwrap().unwrap().id,
            "c"
        );
        assert_eq!(
            store
                .active()
                .unwrap()
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            vec!["c", "d"]
        );
        assert_eq!(
            store.count_by_phase().unwrap(),
            vec![("baseline".into(), 2), ("finished".into(), 1)]
        );
    }

    #[test]
    fn a_database_from_before_the_dashboard_is_migrated_with_its_campaigns() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bot.db");
        // The layout releases before the dashboard and schema versions wrote, with a held
        // campaign in it.
        let old = Connection::open(&db).unwrap();
        old.execute_batch(ROUTING_SCHEMA).unwrap();
        let dispatch = serde_json::to_string(&record("a", "m").dispatch).unwrap();
        old.execute(
            &format!(
                "INSERT INTO campaigns ({COLUMNS}) VALUES ('a', 'o/r', 7, 'o/sglang', 'm', \
                 'sota/a', 'main', 'runs/a', 1, NULL, NULL, 'waiting', 2, 1, 0, ?1)"
            ),
            [dispatch],
        )
        .unwrap();
        drop(old);

        let store = CampaignStore::open(&db).unwrap();
        let a = store.get("a").unwrap().unwrap();
        assert_eq!((a.phase, a.round, a.held), (AppPhase::Waiting, 2, true));
        let views = store.dashboard_views().unwrap();
        assert_eq!(views.len(), 1, "the campaign has a dashboard view");
        assert_eq!(views[0].status_since, None, "its times are unknown");
        assert_eq!(
            crate::migrate::stored_version(&store.lock(), COMPONENT).unwrap(),
            MIGRATIONS.len() as i64
        );
    }

    #[test]
    fn a_newer_schema_and_an_unknown_phase_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bot.db");
        let store = CampaignStore::open(&db).unwrap();
        store.insert(&record("a", "m")).unwrap();
        store
            .lock()
            .execute("UPDATE campaigns SET phase = 'paused'", [])
            .unwrap();
        assert_eq!(
            store.get("a").unwrap_err().to_string(),
            "campaign database: campaign a has phase \"paused\", which this sota-bot does not know"
        );
        store
            .lock()
            .execute(
                "UPDATE schema_versions SET version = 3 WHERE component = 'campaigns'",
                [],
            )
            .unwrap();
        drop(store);
        let err = CampaignStore::open(&db).err().expect("refused");
        assert_eq!(
            err.to_string(),
            "campaign database: the campaigns schema is at version 3, newer than this sota-bot \
             knows (up to 2); run the sota-bot release that wrote it, or restore a backup"
        );
    }

    #[test]
    fn a_run_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = CampaignStore::open(&dir.path().join("bot.db")).unwrap();
        assert!(store.claim_run(5, 1, "a").unwrap());
        assert!(!store.claim_run(5, 1, "a").unwrap());
        assert!(store.claim_run(5, 2, "a").unwrap());
        assert!(store.run_handled(5, 1).unwrap());
        store.release_run(5, 1).unwrap();
        assert!(!store.run_handled(5, 1).unwrap());
    }
}
