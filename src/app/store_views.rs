//! What the dashboard reads from the App's store, next to the routing records: when each
//! campaign's status last changed, whether its repositories are public, the checkpoint last
//! read from its branch, and GPU and agent spend per step. Written as the App works, so a
//! page view never calls GitHub.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::store::{now_text, CampaignRecord, CampaignStore, StoreError};
use crate::campaign::state::CampaignState;
use crate::dashboard::model::{AgentUsage, StepUsage};

/// A campaign as the dashboard reads it from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignView {
    pub record: CampaignRecord,
    /// `None`: the visibility was never learned (treated as private).
    pub private: Option<bool>,
    /// The checkpoint last read from the branch.
    pub checkpoint: Option<Arc<CampaignState>>,
    /// Bumped each time a checkpoint is saved (0: none yet), so readers can keep parsed
    /// checkpoints between page views.
    pub checkpoint_version: i64,
    pub status_since: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub usage: BTreeMap<u32, StepUsage>,
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Rows of `sql`, all of them or those whose `key` column is `id`.
fn select<T>(
    conn: &Connection,
    sql: &str,
    key: &str,
    id: Option<&str>,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let sql = match id {
        Some(_) => format!("{sql} WHERE {key} = ?1"),
        None => sql.to_string(),
    };
    let mut stmt = conn.prepare(&sql)?;
    let rows = match id {
        Some(id) => stmt.query_map([id], map)?.collect::<Result<Vec<T>, _>>()?,
        None => stmt.query_map([], map)?.collect::<Result<Vec<T>, _>>()?,
    };
    Ok(rows)
}

struct ViewRow {
    private: Option<bool>,
    checkpoint_version: i64,
    status_since: Option<String>,
    updated_at: Option<String>,
}

/// A parsed checkpoint a reader already holds for `(campaign, version)`.
pub type KnownCheckpoint<'a> = &'a dyn Fn(&str, i64) -> Option<Arc<CampaignState>>;

impl CampaignStore {
    /// Records whether the campaign's repositories are private.
    pub fn set_private(&self, id: &str, private: bool) -> Result<(), StoreError> {
        self.lock().execute(
            "UPDATE campaign_views SET private = ?2 WHERE id = ?1",
            params![id, i64::from(private)],
        )?;
        Ok(())
    }

    /// Keeps the checkpoint just read from the campaign branch.
    pub fn save_checkpoint(&self, id: &str, state: &CampaignState) -> Result<(), StoreError> {
        let json = serde_json::to_string(state)?;
        self.lock().execute(
            "UPDATE campaign_views SET checkpoint = ?2, checkpoint_version = checkpoint_version + 1,
             updated_at = ?3 WHERE id = ?1",
            params![id, json, now_text()],
        )?;
        Ok(())
    }

    /// Records the GPU minutes one workflow run attempt of `step` took (once per attempt:
    /// a redelivered completion replaces its own row).
    pub fn record_run_minutes(
        &self,
        run_id: u64,
        attempt: u64,
        campaign: &str,
        step: u32,
        gpu_minutes: Option<f64>,
    ) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT OR REPLACE INTO campaign_run_usage (run_id, attempt, campaign, step, gpu_minutes)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![run_id, attempt, campaign, step, gpu_minutes.filter(|m| m.is_finite())],
        )?;
        Ok(())
    }

    /// Records what the agent of round `step` reported about its spend.
    pub fn record_agent_usage(
        &self,
        campaign: &str,
        step: u32,
        usage: &AgentUsage,
    ) -> Result<(), StoreError> {
        let tokens = |n: Option<u64>| n.and_then(|n| i64::try_from(n).ok());
        self.lock().execute(
            "INSERT OR REPLACE INTO campaign_agent_usage
             (campaign, step, cost_usd, turns, input_tokens, output_tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                campaign,
                step,
                usage.cost_usd.filter(|c| c.is_finite()),
                usage.turns,
                tokens(usage.input_tokens),
                tokens(usage.output_tokens)
            ],
        )?;
        Ok(())
    }

    fn views_where(
        &self,
        id: Option<&str>,
        known: KnownCheckpoint<'_>,
    ) -> Result<Vec<CampaignView>, StoreError> {
        let records = match id {
            Some(id) => self.query("id = ?1", &[&id])?,
            None => self.query("1 = 1 ORDER BY rowid", &[])?,
        };
        let conn = self.lock();
        let views: HashMap<String, ViewRow> = select(
            &conn,
            "SELECT id, private, checkpoint_version, status_since, updated_at FROM campaign_views",
            "id",
            id,
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    ViewRow {
                        private: r.get::<_, Option<i64>>(1)?.map(|p| p != 0),
                        checkpoint_version: r.get(2)?,
                        status_since: r.get(3)?,
                        updated_at: r.get(4)?,
                    },
                ))
            },
        )?
        .into_iter()
        .collect();
        let mut usage: HashMap<String, BTreeMap<u32, StepUsage>> = HashMap::new();
        let minutes = select(
            &conn,
            "SELECT campaign, step, gpu_minutes FROM campaign_run_usage",
            "campaign",
            id,
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, Option<f64>>(2)?,
                ))
            },
        )?;
        for (c, step, minutes) in minutes {
            let entry = usage.entry(c).or_default().entry(step).or_default();
            if let Some(m) = minutes {
                entry.gpu_minutes = Some(entry.gpu_minutes.unwrap_or(0.0) + m);
            }
        }
        let agents = select(
            &conn,
            "SELECT campaign, step, cost_usd, turns, input_tokens, output_tokens FROM campaign_agent_usage",
            "campaign",
            id,
            |r| {
                let tokens = |i| -> rusqlite::Result<Option<u64>> {
                    Ok(r.get::<_, Option<i64>>(i)?.and_then(|n| u64::try_from(n).ok()))
                };
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    AgentUsage {
                        cost_usd: r.get(2)?,
                        turns: r.get(3)?,
                        input_tokens: tokens(4)?,
                        output_tokens: tokens(5)?,
                    },
                ))
            },
        )?;
        for (c, step, agent) in agents {
            usage.entry(c).or_default().entry(step).or_default().agent = Some(agent);
        }
        let mut out = Vec::with_capacity(records.len());
        let mut text_of = conn.prepare("SELECT checkpoint FROM campaign_views WHERE id = ?1")?;
        for record in records {
            let v = views.get(&record.id);
            let version = v.map(|v| v.checkpoint_version).unwrap_or(0);
            let checkpoint = match known(&record.id, version) {
                Some(state) => Some(state),
                None if version > 0 => {
                    let text: Option<String> = text_of.query_row([&record.id], |r| r.get(0))?;
                    text.and_then(|j| match serde_json::from_str::<CampaignState>(&j) {
                        Ok(s) => Some(Arc::new(s)),
                        Err(e) => {
                            tracing::warn!(campaign = %record.id, error = %e, "stored checkpoint unreadable; shown without it");
                            None
                        }
                    })
                }
                None => None,
            };
            out.push(CampaignView {
                private: v.and_then(|v| v.private),
                checkpoint,
                checkpoint_version: version,
                status_since: parse_time(v.and_then(|v| v.status_since.as_deref())),
                updated_at: parse_time(v.and_then(|v| v.updated_at.as_deref())),
                usage: usage.remove(&record.id).unwrap_or_default(),
                record,
            });
        }
        Ok(out)
    }

    /// Every campaign, oldest first, with its dashboard data.
    pub fn dashboard_views(&self) -> Result<Vec<CampaignView>, StoreError> {
        self.views_where(None, &|_, _| None)
    }

    /// [`CampaignStore::dashboard_views`], reusing the checkpoints `known` already holds
    /// (a checkpoint is read and parsed only when its version is new to the caller).
    pub fn dashboard_views_reusing(
        &self,
        known: KnownCheckpoint<'_>,
    ) -> Result<Vec<CampaignView>, StoreError> {
        self.views_where(None, known)
    }

    /// One campaign with its dashboard data.
    pub fn dashboard_view(&self, id: &str) -> Result<Option<CampaignView>, StoreError> {
        Ok(self.views_where(Some(id), &|_, _| None)?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::store::tests::record;
    use crate::app::store::AppPhase;

    #[test]
    fn views_carry_visibility_checkpoint_status_time_and_spend() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bot.db");
        let store = CampaignStore::open(&db).unwrap();
        let mut a = record("a", "m1");
        store.insert(&a).unwrap();
        store.insert(&record("b", "m2")).unwrap();
        // A database from before the dashboard (schema version 1, no view for `b`) gets its
        // rows when it is migrated on opening, times unknown.
        store
            .lock()
            .execute_batch(
                "DELETE FROM campaign_views WHERE id = 'b';
                 UPDATE schema_versions SET version = 1 WHERE component = 'campaigns';",
            )
            .unwrap();
        drop(store);
        let store = CampaignStore::open(&db).unwrap();
        let old = store.dashboard_view("b").unwrap().unwrap();
        assert_eq!((old.status_since, old.updated_at), (None, None));
        store.set_private("b", true).unwrap();
        assert_eq!(
            store.dashboard_view("b").unwrap().unwrap().private,
            Some(true)
        );
        let fresh = store.dashboard_view("a").unwrap().unwrap();
        assert_eq!(fresh.private, None, "unknown until learned");
        assert!(fresh.status_since.is_some() && fresh.checkpoint.is_none());

        store.set_private("a", false).unwrap();
        let state = CampaignState::new("a", "m", "sota/a", "runs/a", "abc");
        store.save_checkpoint("a", &state).unwrap();
        store.record_run_minutes(10, 1, "a", 0, Some(30.0)).unwrap();
        store.record_run_minutes(10, 1, "a", 0, Some(30.0)).unwrap();
        store.record_run_minutes(11, 1, "a", 0, Some(12.5)).unwrap();
        store.record_run_minutes(12, 1, "a", 1, None).unwrap();
        let agent = AgentUsage {
            cost_usd: Some(1.25),
            turns: Some(9),
            input_tokens: None,
            output_tokens: None,
        };
        store.record_agent_usage("a", 1, &agent).unwrap();
        // Unchanged status keeps its time; a changed one moves it.
        let since = store.dashboard_view("a").unwrap().unwrap().status_since;
        store.update(&a).unwrap();
        assert_eq!(
            store.dashboard_view("a").unwrap().unwrap().status_since,
            since
        );
        a.phase = AppPhase::Waiting;
        store.update(&a).unwrap();
        drop(store);

        let store = CampaignStore::open(&db).unwrap();
        let all = store.dashboard_views().unwrap();
        assert_eq!(
            all.iter().map(|v| v.record.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let v = &all[0];
        assert_eq!(v.private, Some(false));
        assert_eq!(v.record.phase, AppPhase::Waiting);
        assert_eq!(v.checkpoint.as_deref(), Some(&state));
        assert_eq!(v.checkpoint_version, 1);
        // A reader holding version 1 gets its own copy back; a new version is read afresh.
        let held = Arc::new(CampaignState::new("held", "m", "b", "r", "c"));
        let reuse = |id: &str, version: i64| (id == "a" && version == 1).then(|| held.clone());
        let again = store.dashboard_views_reusing(&reuse).unwrap();
        assert!(Arc::ptr_eq(again[0].checkpoint.as_ref().unwrap(), &held));
        store.save_checkpoint("a", &state).unwrap();
        let fresh = store.dashboard_views_reusing(&reuse).unwrap();
        assert_eq!(fresh[0].checkpoint_version, 2);
        assert_eq!(fresh[0].checkpoint.as_deref(), Some(&state));
        assert_eq!(
            v.usage[&0].gpu_minutes,
            Some(42.5),
            "one row per run attempt"
        );
        assert_eq!(v.usage[&1].gpu_minutes, None);
        assert_eq!(v.usage[&1].agent.as_ref(), Some(&agent));
        assert!(all[1].usage.is_empty() && all[1].private == Some(true));
        assert!(store.dashboard_view("missing").unwrap().is_none());
    }
}
