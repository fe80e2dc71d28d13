//! Pure builders from [`CampaignSnapshot`]s to the views the pages and the JSON API show.
//! Every text that came from a branch (titles, reasons) is scrubbed of secret shapes; no
//! log or artifact content is carried, only numbers derived from it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::model::{AgentUsage, CampaignSnapshot, Location, Status, StepUsage};
use super::svg::GapPoint;
use super::usage;
use crate::campaign::state::CampaignState;
use crate::gate::{GapStatus, ScenarioGapView};
use crate::report::gap_series;

/// Links of a campaign (absent where the source has no such page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Links {
    pub issue: Option<String>,
    pub pr: Option<String>,
    pub branch: Option<String>,
}

/// A campaign's status, with when it began.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    pub key: &'static str,
    pub label: &'static str,
    /// RFC 3339.
    pub since: Option<String>,
    pub since_text: Option<String>,
}

/// One scenario's current gap and its trend over rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioGap {
    pub scenario: String,
    pub gap_pct: Option<f64>,
    pub gap_text: String,
    /// `ahead`, `tied`, `behind`, `sla_fail`, `no_competitor`, `no_sglang`, `unknown`.
    pub status: &'static str,
    pub label: String,
    pub leader: Option<String>,
    /// Round 0 (the baseline) and every finished round.
    pub trend: Vec<GapPoint>,
}

/// Agent and GPU spend, with the texts the pages show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spend {
    /// Whether the agent reported any number at all.
    pub agent_reported: bool,
    pub agent_cost_usd: Option<f64>,
    pub agent_turns: Option<u32>,
    pub agent_input_tokens: Option<u64>,
    pub agent_output_tokens: Option<u64>,
    pub gpu_minutes: Option<f64>,
    pub cost_text: String,
    pub turns_text: String,
    pub gpu_text: String,
}

/// One row of the campaign list (and the head of a campaign page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRow {
    pub id: String,
    /// The campaign page, relative to the site root.
    pub href: String,
    pub model: String,
    pub gpu: String,
    pub private: bool,
    pub status: StatusView,
    /// The step dispatched or run last (0: the baseline).
    pub round: u32,
    pub max_rounds: u32,
    pub round_text: String,
    pub gaps: Vec<ScenarioGap>,
    pub noise_pct: f64,
    pub spend: Spend,
    pub updated_at: Option<String>,
    pub updated_text: Option<String>,
    pub updated_ago: Option<String>,
    pub links: Links,
}

/// How many campaigns have one status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusCount {
    pub key: &'static str,
    pub label: &'static str,
    pub count: usize,
}

/// The campaign list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignList {
    pub generated_at: String,
    pub counts: Vec<StatusCount>,
    pub campaigns: Vec<CampaignRow>,
}

/// One scenario's chart on a campaign page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartView {
    pub scenario: String,
    pub noise_pct: f64,
    pub points: Vec<GapPoint>,
}

/// A winning command of the fixed baseline (commands themselves stay on the branch).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WinnerView {
    pub scenario: String,
    pub framework: String,
    pub candidate_id: String,
    pub value: Option<f64>,
    pub value_text: String,
    /// The best value of its scenario.
    pub best: bool,
}

/// A scenario's gap after a round, and how it moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapDelta {
    pub scenario: String,
    pub gap_pct: Option<f64>,
    pub gap_text: String,
    /// Change against the previous measured point (the baseline for round 1).
    pub delta_pct: Option<f64>,
    pub delta_text: String,
    /// `better`, `worse` or `same`, for styling.
    pub trend: &'static str,
}

/// One finished round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundView {
    pub round: u32,
    pub title: String,
    pub verdict: &'static str,
    pub decision: String,
    pub reason: String,
    pub accepted: bool,
    pub geomean_pct: Option<f64>,
    pub geomean_text: String,
    pub gaps: Vec<GapDelta>,
    pub spend: Spend,
    pub commit: Option<String>,
    pub commit_short: Option<String>,
    pub commit_url: Option<String>,
    pub report_url: Option<String>,
}

/// Why and when the loop ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StopView {
    pub after_round: u32,
    pub reason: String,
    pub reached_sota: bool,
}

/// A campaign page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignPage {
    pub campaign: CampaignRow,
    /// Where the campaign stands, in words (commands in backticks).
    pub state_words: String,
    pub hardware: String,
    pub workload: String,
    pub sla: String,
    pub branch: String,
    pub run_dir: String,
    pub charts: Vec<ChartView>,
    pub winners: Vec<WinnerView>,
    /// Newest first.
    pub rounds: Vec<RoundView>,
    /// Spend of the fixed baseline (step 0).
    pub baseline_spend: Spend,
    pub gpu_basis: String,
    pub stop: Option<StopView>,
    pub generated_at: String,
}

fn scrub(s: &str) -> String {
    crate::secrets::scrub(s, &[]).into_owned()
}

/// `2026-01-02 10:00 UTC`.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `just now`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago_text(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 2 * 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

fn pct_text(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:+.2}%"))
        .unwrap_or_else(|| "n/a".into())
}

/// Percent-encodes a URL path segment (keeps `/` when `keep_slash`).
fn encode_path(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The campaign page's path on the dashboard.
pub fn campaign_href(id: &str) -> String {
    format!("/campaigns/{}", encode_path(id, false))
}

fn spend(gpu_minutes: Option<f64>, agent: Option<&AgentUsage>) -> Spend {
    let gpu = gpu_minutes.filter(|m| m.is_finite() && *m >= 0.0);
    Spend {
        agent_reported: agent.is_some(),
        agent_cost_usd: agent.and_then(|a| a.cost_usd),
        agent_turns: agent.and_then(|a| a.turns),
        agent_input_tokens: agent.and_then(|a| a.input_tokens),
        agent_output_tokens: agent.and_then(|a| a.output_tokens),
        gpu_minutes: gpu,
        cost_text: agent
            .and_then(|a| a.cost_usd)
            .map(|c| {
                if c < 1.0 {
                    format!("${c:.3}")
                } else {
                    format!("${c:.2}")
                }
            })
            .unwrap_or_else(|| "n/a".into()),
        turns_text: agent
            .and_then(|a| a.turns)
            .map(|t| t.to_string())
            .unwrap_or_else(|| "n/a".into()),
        gpu_text: gpu
            .map(|m| {
                if m >= 120.0 {
                    format!("{:.1} h", m / 60.0)
                } else {
                    format!("{m:.1} min")
                }
            })
            .unwrap_or_else(|| "n/a".into()),
    }
}

fn total_spend(usage: &BTreeMap<u32, StepUsage>) -> Spend {
    let gpu = usage
        .values()
        .filter_map(|u| u.gpu_minutes)
        .fold(None, |acc: Option<f64>, m| Some(acc.unwrap_or(0.0) + m));
    let agent = usage::total(usage.values().filter_map(|u| u.agent.as_ref()));
    spend(gpu, agent.as_ref())
}

fn step_spend(usage: &BTreeMap<u32, StepUsage>, step: u32) -> Spend {
    let u = usage.get(&step);
    spend(
        u.and_then(|u| u.gpu_minutes),
        u.and_then(|u| u.agent.as_ref()),
    )
}

fn status_key(g: &GapStatus) -> &'static str {
    match g {
        GapStatus::Ahead { .. } => "ahead",
        GapStatus::Tied { .. } => "tied",
        GapStatus::Behind { .. } => "behind",
        GapStatus::SlaFail => "sla_fail",
        GapStatus::NoCompetitor => "no_competitor",
        GapStatus::NoSglang => "no_sglang",
    }
}

fn links(s: &CampaignSnapshot) -> Links {
    match &s.location {
        Location::GitHub {
            web_url,
            repo,
            issue,
            fork,
            pr,
        } => {
            let web = web_url.trim_end_matches('/');
            Links {
                issue: Some(format!("{web}/{repo}/issues/{issue}")),
                pr: pr.map(|n| format!("{web}/{fork}/pull/{n}")),
                branch: Some(format!(
                    "{web}/{fork}/tree/{}",
                    encode_path(&s.branch, true)
                )),
            }
        }
        Location::Local { .. } => Links {
            issue: None,
            pr: None,
            branch: None,
        },
    }
}

fn commit_url(s: &CampaignSnapshot, sha: &str) -> Option<String> {
    match &s.location {
        Location::GitHub { web_url, fork, .. } => Some(format!(
            "{}/{fork}/commit/{}",
            web_url.trim_end_matches('/'),
            encode_path(sha, false)
        )),
        Location::Local { .. } => None,
    }
}

fn report_url(s: &CampaignSnapshot, round: u32) -> Option<String> {
    let rel = format!("{}/rounds/round-{round}/report.md", s.run_dir);
    match &s.location {
        Location::GitHub { web_url, fork, .. } => Some(format!(
            "{}/{fork}/blob/{}/{}",
            web_url.trim_end_matches('/'),
            encode_path(&s.branch, true),
            encode_path(&rel, true)
        )),
        Location::Local { checkout } => url::Url::from_file_path(checkout.join(&rel))
            .ok()
            .map(String::from),
    }
}

/// Gap series per scenario: the scenarios of the current gaps first, then any other.
fn series(state: &CampaignState) -> Vec<(String, Vec<GapPoint>)> {
    gap_series(state)
        .into_iter()
        .map(|s| {
            let points = s
                .points
                .into_iter()
                .map(|(round, gap_pct)| GapPoint {
                    round,
                    gap_pct: gap_pct.filter(|v| v.is_finite()),
                })
                .collect();
            (s.scenario, points)
        })
        .collect()
}

fn scenario_gap(g: Option<&ScenarioGapView>, scenario: &str, trend: Vec<GapPoint>) -> ScenarioGap {
    let gap_pct = g.and_then(|g| g.status.gap_pct()).filter(|v| v.is_finite());
    ScenarioGap {
        scenario: scenario.to_string(),
        gap_pct,
        gap_text: pct_text(gap_pct),
        status: g.map(|g| status_key(&g.status)).unwrap_or("unknown"),
        label: g
            .map(|g| g.status.label())
            .unwrap_or_else(|| "not measured".into()),
        leader: g.and_then(|g| g.leader.as_deref()).map(scrub),
        trend,
    }
}

fn current_gaps(s: &CampaignSnapshot) -> Vec<ScenarioGap> {
    let Some(state) = &s.state else {
        return Vec::new();
    };
    series(state)
        .into_iter()
        .map(|(name, trend)| {
            let g = state.gaps.iter().find(|g| g.scenario == name);
            scenario_gap(g, &name, trend)
        })
        .collect()
}

/// The last round that finished, when any.
fn last_round(s: &CampaignSnapshot) -> u32 {
    s.state
        .as_ref()
        .and_then(|st| st.rounds.last().map(|r| r.round))
        .unwrap_or(0)
}

fn round_text(s: &CampaignSnapshot) -> String {
    let round = s.step.max(last_round(s));
    if round == 0 {
        format!("baseline · budget {} rounds", s.max_rounds)
    } else {
        format!("round {round} of {}", s.max_rounds)
    }
}

/// One row of the list, from one snapshot.
pub fn campaign_row(s: &CampaignSnapshot, now: DateTime<Utc>) -> CampaignRow {
    CampaignRow {
        id: s.id.clone(),
        href: campaign_href(&s.id),
        model: scrub(&s.model),
        gpu: scrub(&s.gpu),
        private: s.private,
        status: StatusView {
            key: s.status.key(),
            label: s.status.label(),
            since: s.status_since.map(|t| t.to_rfc3339()),
            since_text: s.status_since.map(time_text),
        },
        round: s.step.max(last_round(s)),
        max_rounds: s.max_rounds,
        round_text: round_text(s),
        gaps: current_gaps(s),
        noise_pct: s.noise_pct,
        spend: total_spend(&s.usage),
        updated_at: s.updated_at.map(|t| t.to_rfc3339()),
        updated_text: s.updated_at.map(time_text),
        updated_ago: s.updated_at.map(|t| ago_text(now, t)),
        links: links(s),
    }
}

fn status_rank(s: Status) -> usize {
    Status::ALL
        .iter()
        .position(|x| *x == s)
        .unwrap_or(usize::MAX)
}

/// The list of campaigns: by status (running first, stopped last), each group newest
/// update first.
pub fn campaign_list(snapshots: &[CampaignSnapshot], now: DateTime<Utc>) -> CampaignList {
    let mut order: Vec<&CampaignSnapshot> = snapshots.iter().collect();
    order.sort_by(|a, b| {
        status_rank(a.status)
            .cmp(&status_rank(b.status))
            .then(b.updated_at.cmp(&a.updated_at))
            .then(a.id.cmp(&b.id))
    });
    let counts = Status::ALL
        .iter()
        .map(|st| StatusCount {
            key: st.key(),
            label: st.label(),
            count: snapshots.iter().filter(|s| s.status == *st).count(),
        })
        .filter(|c| c.count > 0)
        .collect();
    CampaignList {
        generated_at: time_text(now),
        counts,
        campaigns: order.into_iter().map(|s| campaign_row(s, now)).collect(),
    }
}

fn since(s: &CampaignSnapshot) -> String {
    s.status_since
        .map(|t| format!(" since {}", time_text(t)))
        .unwrap_or_default()
}

fn on(s: &CampaignSnapshot) -> String {
    s.status_since
        .map(|t| format!(" on {}", time_text(t)))
        .unwrap_or_default()
}

fn step_words(step: u32) -> String {
    if step == 0 {
        "the fixed baseline".into()
    } else {
        format!("round {step}")
    }
}

/// Where the campaign stands, in words.
pub fn state_words(s: &CampaignSnapshot) -> String {
    let local = matches!(s.location, Location::Local { .. });
    let next = s
        .state
        .as_ref()
        .map(|st| st.next_round())
        .unwrap_or(s.step + 1);
    match s.status {
        Status::Running if s.step == 0 => {
            format!("The fixed baseline benchmark is running{}.", since(s))
        }
        Status::Running if local => format!(
            "Round {} of {} is in progress{}; if no `sota-bot local` process is running it, `sota-bot local resume` continues it.",
            s.step.max(1),
            s.max_rounds,
            since(s)
        ),
        Status::Running => format!(
            "Round {} of {} is running{}.",
            s.step.max(1),
            s.max_rounds,
            since(s)
        ),
        Status::Waiting => {
            let command = if local {
                "`sota-bot local resume`"
            } else {
                "`/sota continue`"
            };
            let why = s
                .waiting_reason
                .as_deref()
                .map(|r| format!(" ({})", scrub(r)))
                .unwrap_or_default();
            format!(
                "Waiting for {command}{}{why}; round {next} is next.",
                since(s)
            )
        }
        Status::Held => format!(
            "On hold{}: {} finishes, then the campaign waits for `/sota resume`.",
            since(s),
            step_words(s.step)
        ),
        Status::Failed => {
            let command = if local {
                "`sota-bot local resume`"
            } else {
                "`/sota retry`"
            };
            format!(
                "The {} workflow failed past its retries{}; {command} runs it again.",
                step_words(s.step),
                on(s)
            )
        }
        Status::Finished => {
            let when = on(s);
            match s.state.as_ref().and_then(|st| st.stop.as_ref()) {
                Some(stop) => format!(
                    "Finished{when} after round {}: {}. SGLang reached SOTA: {}.",
                    stop.after_round,
                    scrub(&stop.reason),
                    if stop.reached_sota { "yes" } else { "no" }
                ),
                None => format!("Finished{when}."),
            }
        }
        Status::Stopped => format!("Stopped by a maintainer{}.", on(s)),
    }
}

fn winners(state: &CampaignState) -> Vec<WinnerView> {
    let mut out: Vec<WinnerView> = state
        .winners
        .iter()
        .map(|w| WinnerView {
            scenario: w.scenario.clone(),
            framework: w.framework.clone(),
            candidate_id: w.candidate_id.clone(),
            value: w.value.filter(|v| v.is_finite()),
            value_text: w
                .value
                .filter(|v| v.is_finite())
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "n/a".into()),
            best: false,
        })
        .collect();
    let mut best: BTreeMap<String, f64> = BTreeMap::new();
    for w in &out {
        if let Some(v) = w.value {
            let e = best.entry(w.scenario.clone()).or_insert(v);
            *e = e.max(v);
        }
    }
    for w in &mut out {
        w.best = w.value.is_some() && w.value == best.get(&w.scenario).copied();
    }
    out.sort_by(|a, b| {
        a.scenario
            .cmp(&b.scenario)
            .then(a.framework.cmp(&b.framework))
    });
    out
}

fn round_views(s: &CampaignSnapshot, state: &CampaignState) -> Vec<RoundView> {
    let series = series(state);
    let mut out: Vec<RoundView> = state
        .rounds
        .iter()
        .map(|r| {
            let gaps = series
                .iter()
                .map(|(name, points)| {
                    let gap = points
                        .iter()
                        .find(|p| p.round == r.round)
                        .and_then(|p| p.gap_pct);
                    let previous = points
                        .iter()
                        .filter(|p| p.round < r.round)
                        .filter_map(|p| p.gap_pct)
                        .next_back();
                    let delta = gap.zip(previous).map(|(g, p)| g - p);
                    GapDelta {
                        scenario: name.clone(),
                        gap_pct: gap,
                        gap_text: pct_text(gap),
                        delta_pct: delta,
                        delta_text: delta
                            .map(|d| format!("{d:+.2} pp"))
                            .unwrap_or_else(|| "n/a".into()),
                        trend: match delta {
                            Some(d) if d > 0.005 => "better",
                            Some(d) if d < -0.005 => "worse",
                            _ => "same",
                        },
                    }
                })
                .collect();
            RoundView {
                round: r.round,
                title: scrub(&r.title),
                verdict: r.verdict.as_str(),
                decision: scrub(&r.decision),
                reason: scrub(&r.reason),
                accepted: r.accepted,
                geomean_pct: r.geomean_pct.filter(|v| v.is_finite()),
                geomean_text: pct_text(r.geomean_pct),
                gaps,
                spend: step_spend(&s.usage, r.round),
                commit: r.commit.clone(),
                commit_short: r.commit.as_ref().map(|c| c.chars().take(10).collect()),
                commit_url: r.commit.as_deref().and_then(|c| commit_url(s, c)),
                report_url: report_url(s, r.round),
            }
        })
        .collect();
    out.reverse();
    out
}

/// A campaign page, from one snapshot.
pub fn campaign_page(s: &CampaignSnapshot, now: DateTime<Utc>) -> CampaignPage {
    let state = s.state.as_deref();
    CampaignPage {
        campaign: campaign_row(s, now),
        state_words: state_words(s),
        hardware: state.map(|st| scrub(&st.hardware)).unwrap_or_default(),
        workload: state.map(|st| scrub(&st.workload)).unwrap_or_default(),
        sla: state.map(|st| scrub(&st.sla)).unwrap_or_default(),
        branch: s.branch.clone(),
        run_dir: s.run_dir.clone(),
        charts: state
            .map(|st| {
                series(st)
                    .into_iter()
                    .map(|(scenario, points)| ChartView {
                        scenario,
                        noise_pct: s.noise_pct,
                        points,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        winners: state.map(winners).unwrap_or_default(),
        rounds: state.map(|st| round_views(s, st)).unwrap_or_default(),
        baseline_spend: step_spend(&s.usage, 0),
        gpu_basis: s.gpu_basis.clone(),
        stop: state.and_then(|st| st.stop.as_ref()).map(|stop| StopView {
            after_round: stop.after_round,
            reason: scrub(&stop.reason),
            reached_sota: stop.reached_sota,
        }),
        generated_at: time_text(now),
    }
}
