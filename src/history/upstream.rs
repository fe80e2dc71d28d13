//! The upstream repository's open and recently merged pull requests for the model family,
//! from GitHub's search API. The App fetches them when a campaign starts and commits them as
//! `history/upstream-prs.json` in the run directory; `sota-bot history` and local campaigns
//! fetch them when a token is given. Phase 0.5 marks them in flight unless the checkout
//! already holds them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::family::Family;
use super::notes::UpstreamPr;
use crate::github::api::SearchedPull;
use crate::github::{GitHubApi, RepoName};

/// Where the App leaves the search result, relative to the run directory.
pub const UPSTREAM_FILE: &str = "history/upstream-prs.json";
/// How far back "recently merged" reaches.
pub const MERGED_WITHIN_DAYS: i64 = 30;
/// Results asked for per query.
const PER_QUERY: u32 = 50;

/// What one search produced, as committed for Phase 0.5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UpstreamPrs {
    pub repo: String,
    /// The queries sent, for the record.
    pub queries: Vec<String>,
    pub prs: Vec<UpstreamPr>,
    /// Why a query failed (the campaign goes on without it).
    pub blockers: Vec<String>,
}

/// The two queries: open PRs naming the family, and PRs merged since `since`.
pub fn search_queries(upstream: &RepoName, family: &Family, since: NaiveDate) -> [String; 2] {
    let word = &family.search_word;
    [
        format!("repo:{upstream} is:pr is:open {word} in:title"),
        format!(
            "repo:{upstream} is:pr is:merged merged:>={} {word} in:title",
            since.format("%Y-%m-%d")
        ),
    ]
}

/// Keeps the hits that are pull requests of `upstream` whose title names the family (the
/// search matches one word; the family's own rule decides).
pub fn select(upstream: &RepoName, family: &Family, hits: Vec<SearchedPull>) -> Vec<UpstreamPr> {
    let repo_suffix = format!("/repos/{upstream}");
    let mut out: Vec<UpstreamPr> = Vec::new();
    for h in hits {
        let Some(pull) = h.pull_request else { continue };
        if !h.repository_url.ends_with(&repo_suffix) || !family.named_in(&h.title) {
            continue;
        }
        if out.iter().any(|p| p.number == h.number) {
            continue;
        }
        let merged = pull.merged_at.is_some();
        if h.state != "open" && !merged {
            continue;
        }
        out.push(UpstreamPr {
            number: h.number,
            title: h.title,
            url: h.html_url,
            state: if merged { "merged" } else { "open" }.to_string(),
            merged_at: pull.merged_at,
            in_checkout: None,
            in_flight: false,
        });
    }
    out
}

/// Runs both searches; a failed query becomes a blocker, not an error.
pub async fn fetch(
    api: &dyn GitHubApi,
    upstream: &RepoName,
    family: &Family,
    today: NaiveDate,
) -> UpstreamPrs {
    let since = today - chrono::Duration::days(MERGED_WITHIN_DAYS);
    let mut out = UpstreamPrs {
        repo: upstream.to_string(),
        ..Default::default()
    };
    for q in search_queries(upstream, family, since) {
        match api.search_pull_requests(&q, PER_QUERY).await {
            Ok(hits) => {
                for pr in select(upstream, family, hits) {
                    if !out.prs.iter().any(|p| p.number == pr.number) {
                        out.prs.push(pr);
                    }
                }
            }
            Err(e) => out
                .blockers
                .push(format!("GitHub search `{q}` failed: {e}")),
        }
        out.queries.push(q);
    }
    out
}

/// Reads a committed search result; `None` when absent or unreadable (then no search ran).
pub fn read_file(path: &std::path::Path) -> Option<UpstreamPrs> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Marks each PR against the checkout: present when a commit subject carries its number,
/// in flight when open, or merged but not in the checkout.
pub fn mark(prs: &mut [UpstreamPr], pr_commits: &HashMap<u64, git2::Oid>) {
    for p in prs.iter_mut() {
        p.in_checkout = pr_commits.get(&p.number).map(|o| o.to_string());
        p.in_flight = p.in_checkout.is_none();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::api::SearchedPullLinks;

    fn hit(n: u64, title: &str, repo: &str, state: &str, merged: Option<&str>) -> SearchedPull {
        SearchedPull {
            number: n,
            title: title.into(),
            html_url: format!("https://github.com/{repo}/pull/{n}"),
            state: state.into(),
            repository_url: format!("https://api.github.com/repos/{repo}"),
            pull_request: Some(SearchedPullLinks {
                merged_at: merged.map(String::from),
            }),
        }
    }

    #[test]
    fn selection_keeps_family_prs_of_the_upstream() {
        let up = RepoName::new("sgl-project", "sglang");
        let fam = Family::new("qwen3", "qwen3", &["Qwen3MoeForCausalLM".into()]);
        let prs = select(
            &up,
            &fam,
            vec![
                hit(
                    1,
                    "[Qwen3-MoE] faster topk",
                    "sgl-project/sglang",
                    "open",
                    None,
                ),
                hit(2, "Qwen3 docs", "other/sglang", "open", None),
                hit(3, "qwen30b table", "sgl-project/sglang", "open", None),
                hit(
                    4,
                    "Qwen3 rope fix",
                    "sgl-project/sglang",
                    "closed",
                    Some("2025-01-01T00:00:00Z"),
                ),
                hit(5, "Qwen3 abandoned", "sgl-project/sglang", "closed", None),
                hit(
                    1,
                    "[Qwen3-MoE] faster topk",
                    "sgl-project/sglang",
                    "open",
                    None,
                ),
            ],
        );
        let got: Vec<(u64, &str)> = prs.iter().map(|p| (p.number, p.state.as_str())).collect();
        assert_eq!(got, vec![(1, "open"), (4, "merged")]);
    }

    #[test]
    fn queries_name_the_repo_and_window() {
        let up = RepoName::new("o", "r");
        let fam = Family::new("deepseekv3", "deepseek-v3", &[]);
        let d = NaiveDate::from_ymd_opt(2025, 2, 1).unwrap_or_default();
        let [open, merged] = search_queries(&up, &fam, d);
        assert_eq!(open, "repo:o/r is:pr is:open deepseek in:title");
        assert_eq!(
            merged,
            "repo:o/r is:pr is:merged merged:>=2025-02-01 deepseek in:title"
        );
    }
}
