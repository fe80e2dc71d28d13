//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `tools/`) loads the pages of `sota-bot serve --dashboard` (the
//! real binary) over an App store holding campaigns in every status, each seeded from the
//! real local-demo campaign as it stood at one of its commits; and the file that
//! `sota-bot local report --html` writes for that campaign's checkout.
//!
//! The browser reports what it saw (tests/dashboard/browser.mjs); this test asserts: no
//! console errors and no request beyond the page itself, the plotted points equal the
//! stored gaps (and sit where their values say), every link resolves (GitHub links against
//! a stand-in that knows the real commits, branch and files of the cloned campaign), and a
//! private campaign is invisible without the dashboard token.
//!
//! Chromium, node and playwright-core are required when `SOTA_REQUIRE_TOOLS` is set (CI);
//! otherwise a missing one skips the test loudly. `SOTA_DASHBOARD_SCREENSHOTS=DIR` also
//! saves the README's screenshots to DIR.

mod support_dashboard;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sota_bot::app::CampaignStore;
use support_dashboard::*;

struct Browser {
    chromium: PathBuf,
    tools: PathBuf,
}

/// Chromium, node and playwright-core, or a loud skip (a failure under SOTA_REQUIRE_TOOLS).
fn browser(test: &str) -> Option<Browser> {
    let chromium = std::env::var_os("SOTA_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let tools = std::env::var_os("SOTA_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tools/node_modules"));
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<String> = [
        (!chromium.is_file()).then(|| format!("chromium ({})", chromium.display())),
        (!node).then(|| "node".to_string()),
        (!tools.join("playwright-core").is_dir())
            .then(|| format!("playwright-core under {}", tools.display())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Some(Browser { chromium, tools });
    }
    let what = missing.join(", ");
    if std::env::var_os("SOTA_REQUIRE_TOOLS").is_some() {
        panic!("{test}: {what} missing (apt-get install chromium; npm ci in tools/)");
    }
    eprintln!(
        "\n!!!!! SKIPPED {test}: {what} missing (apt-get install chromium; npm ci in tools/; \
         set SOTA_REQUIRE_TOOLS=1 to make this a failure) !!!!!\n"
    );
    None
}

/// Runs the browser script on a job; returns what it saw.
fn observe(b: &Browser, dir: &Path, visits: Vec<Value>) -> Value {
    let job = dir.join(format!("job-{}.json", visits.len()));
    std::fs::write(
        &job,
        serde_json::to_vec(&json!({
            "chromium": b.chromium, "tools": b.tools, "visits": visits,
        }))
        .unwrap(),
    )
    .unwrap();
    let out = Command::new("node")
        .arg(repo_root().join("tests/dashboard/browser.mjs"))
        .arg(&job)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "browser script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "browser output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn screenshot(name: &str) -> Option<String> {
    std::env::var_os("SOTA_DASHBOARD_SCREENSHOTS")
        .map(|d| PathBuf::from(d).join(name).to_string_lossy().into_owned())
}

/// `sota-bot serve --dashboard` on a free port; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server(dir: &Path, database: &Path, web_url: &str) -> Server {
    let key = dir.join("app-key.pem");
    let pem = Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .expect("openssl runs");
    std::fs::write(&key, pem.stdout).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args(["serve", "--app-id", "1", "--webhook-secrets", "secret"])
        .arg("--private-key-path")
        .arg(&key)
        .arg("--database")
        .arg(database)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        // Nothing answers there: reconciliation fails quietly and changes nothing.
        .args(["--github-api-url", "http://127.0.0.1:9"])
        .args(["--github-web-url", web_url])
        .args([
            "--dashboard",
            "--dashboard-token-env",
            "SOTA_TEST_DASHBOARD_TOKEN",
        ])
        .args(["--no-workers", "--reconcile-interval-secs", "3600"])
        .env("SOTA_TEST_DASHBOARD_TOKEN", TOKEN)
        .env("SOTA_BOT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sota-bot starts");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = reqwest::blocking::get(format!("{}/healthz", server.url))
            .is_ok_and(|r| r.status().is_success());
        if up {
            return server;
        }
        assert!(Instant::now() < deadline, "sota-bot serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn visit(name: &str, url: &str, token: bool, shot: Option<String>) -> Value {
    let headers = if token {
        json!({"Authorization": format!("Bearer {TOKEN}")})
    } else {
        json!({})
    };
    json!({"name": name, "url": url, "headers": headers, "screenshot": shot})
}

fn by_name<'a>(seen: &'a Value, name: &str) -> &'a Value {
    seen["visits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no visit {name}"))
}

/// No console error, no request beyond the page, no script, every link resolving.
fn assert_clean(v: &Value, expected_status: u64) {
    let name = &v["name"];
    assert_eq!(v["status"], expected_status, "{name}: status");
    // A page answered with an error status is the one console error the browser logs.
    let console = if expected_status == 200 {
        json!([])
    } else {
        json!([format!(
            "error: Failed to load resource: the server responded with a status of {expected_status} (Not Found)"
        )])
    };
    assert_eq!(v["console"], console, "{name}: console errors");
    assert_eq!(v["failed"], json!([]), "{name}: failed requests");
    let requests: Vec<&str> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        requests,
        [v["final_url"].as_str().unwrap()],
        "{name}: the page loads nothing else"
    );
    assert_eq!(v["scripts"], 0, "{name}: no scripts");
    for l in v["link_status"].as_array().unwrap() {
        assert_eq!(
            l["status"], 200,
            "{name}: link {} does not resolve",
            l["href"]
        );
    }
}

fn ids(v: &Value) -> Vec<String> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

/// The drawn coordinates follow the values: x grows with the round, y falls linearly as
/// the gap grows, and a gap of 0 would sit on the drawn zero line.
fn assert_geometry(what: &str, rounds: &[f64], gaps: &[f64], xs: &[f64], ys: &[f64], zero: f64) {
    assert!(xs.windows(2).all(|w| w[0] < w[1]), "{what}: x by round");
    assert!(rounds.windows(2).all(|w| w[0] < w[1]), "{what}: rounds");
    let (lo, hi) = gaps.iter().enumerate().fold((0, 0), |(lo, hi), (i, g)| {
        (
            if *g < gaps[lo] { i } else { lo },
            if *g > gaps[hi] { i } else { hi },
        )
    });
    if lo == hi {
        return;
    }
    let slope = (ys[hi] - ys[lo]) / (gaps[hi] - gaps[lo]);
    assert!(slope < 0.0, "{what}: a larger gap is drawn higher");
    let at_zero = ys[lo] - slope * gaps[lo];
    assert!(
        (at_zero - zero).abs() < 0.1,
        "{what}: 0% at y={at_zero}, zero line at {zero}"
    );
    for (g, y) in gaps.iter().zip(ys) {
        let expected = ys[lo] + slope * (g - gaps[lo]);
        assert!(
            (expected - y).abs() < 0.1,
            "{what}: point for {g} drawn at y={y}, expected {expected}"
        );
    }
}

/// The chart points of a page equal the stored series, and sit where they say.
fn assert_charts(name: &str, page: &Value, state: &sota_bot::campaign::state::CampaignState) {
    let expected = expected_series(state);
    let charts = page["charts"].as_array().unwrap();
    assert_eq!(
        charts.len(),
        expected.len(),
        "{name}: one chart per scenario"
    );
    for chart in charts {
        let scenario = chart["scenario"].as_str().unwrap();
        let want = &expected[scenario];
        let points = chart["points"].as_array().unwrap();
        let got: Vec<(u32, f64)> = points
            .iter()
            .map(|p| {
                (
                    p["round"].as_u64().unwrap() as u32,
                    p["gap"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{name}/{scenario}: points");
        for ((gr, gg), (wr, wg)) in got.iter().zip(want) {
            assert_eq!(gr, wr, "{name}/{scenario}: round");
            assert!(
                close(*gg, *wg),
                "{name}/{scenario} round {gr}: {gg} vs stored {wg}"
            );
        }
        assert!(points.iter().all(|p| p["visible"] == true));
        let col = |k: &str| -> Vec<f64> { points.iter().map(|p| p[k].as_f64().unwrap()).collect() };
        assert_geometry(
            &format!("{name}/{scenario}"),
            &col("round"),
            &col("gap"),
            &col("cx"),
            &col("cy"),
            chart["zero"].as_f64().unwrap(),
        );
    }
}

/// A JSON answer of the dashboard, with the token as a bearer when given.
async fn get_json(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_in_chromium_show_the_stored_campaigns_to_the_right_people() {
    let Some(b) = browser("dashboard_browser") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = clone_demo(tmp.path());
    let database = tmp.path().join("bot.sqlite");
    let seeded = {
        let store = CampaignStore::open(&database).unwrap();
        seed(&store, &repo)
    };
    let web = serve_github_web(GitHubWeb {
        repo: repo.clone(),
        forks: seeded.iter().map(|s| s.fork.clone()).collect(),
        issues: seeded.iter().map(|s| (s.fork.clone(), s.issue)).collect(),
        pulls: seeded
            .iter()
            .filter_map(|s| s.pr.map(|p| (s.fork.clone(), p)))
            .collect(),
    })
    .await;
    let server = tokio::task::spawn_blocking({
        let (dir, db, web) = (tmp.path().to_path_buf(), database.clone(), web.clone());
        move || start_server(&dir, &db, &web)
    })
    .await
    .unwrap();
    let base = server.url.clone();
    let private = seeded.iter().find(|s| s.private).unwrap();
    let finished = seeded.iter().find(|s| s.status == "finished").unwrap();
    let mut visits = vec![
        visit("list", &format!("{base}/campaigns"), false, None),
        visit(
            "list-operator",
            &format!("{base}/campaigns"),
            true,
            screenshot("dashboard-campaigns.png"),
        ),
        visit(
            "private-anonymous",
            &format!("{base}/campaigns/{}", private.id),
            false,
            None,
        ),
        json!({
            "name": "list-signed-in", "url": format!("{base}/campaigns"),
            "sign_in_url": format!("{base}/dashboard/sign-in"), "sign_in_token": TOKEN,
        }),
    ];
    for s in &seeded {
        let shot = (s.id == finished.id)
            .then(|| screenshot("dashboard-campaign.png"))
            .flatten();
        visits.push(visit(
            &format!("page {}", s.id),
            &format!("{base}/campaigns/{}", s.id),
            s.private,
            shot,
        ));
    }
    let seen = tokio::task::spawn_blocking({
        let dir = tmp.path().to_path_buf();
        move || observe(&b, &dir, visits)
    })
    .await
    .unwrap();

    // The list: public campaigns for anyone, every campaign for the token holder.
    let anon = by_name(&seen, "list");
    assert_clean(anon, 200);
    let public: Vec<&Seeded> = seeded.iter().filter(|s| !s.private).collect();
    let mut want: Vec<String> = public.iter().map(|s| s.id.clone()).collect();
    want.sort();
    let mut got = ids(anon);
    got.sort();
    assert_eq!(got, want, "anonymous list: public campaigns only");
    let text = anon["text"].as_str().unwrap();
    assert!(!text.contains(&private.fork) && !text.contains(&private.id));
    assert!(anon["content_security_policy"]
        .as_str()
        .unwrap()
        .contains("default-src 'none'"));
    let operator = by_name(&seen, "list-operator");
    assert_clean(operator, 200);
    assert_eq!(ids(operator).len(), seeded.len());
    assert!(ids(operator).contains(&private.id));
    for row in operator["rows"].as_array().unwrap() {
        let s = seeded.iter().find(|s| s.id == row["id"]).unwrap();
        assert_eq!(row["status"], s.status, "{}: status", s.id);
    }
    // Signing in through the form sets the cookie that shows private campaigns.
    let signed = by_name(&seen, "list-signed-in");
    assert_clean(signed, 200);
    assert_eq!(
        seen["sign_in_landed_on"].as_str(),
        Some(format!("{base}/campaigns").as_str())
    );
    assert!(ids(signed).contains(&private.id));
    // The private campaign's page is missing for anyone else.
    assert_clean(by_name(&seen, "private-anonymous"), 404);

    // Sparklines: one per campaign and scenario, carrying the stored gaps.
    let mut sparks = 0;
    for line in operator["sparklines"].as_array().unwrap() {
        let s = seeded.iter().find(|s| s.id == line["id"]).unwrap();
        let want = &expected_series(s.state.as_ref().unwrap())[line["scenario"].as_str().unwrap()];
        let nums = |k: &str| -> Vec<f64> {
            line[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (rounds, gaps) = (nums("rounds"), nums("gaps"));
        assert_eq!(rounds.len(), want.len(), "{}: sparkline points", s.id);
        for ((r, g), (wr, wg)) in rounds.iter().zip(&gaps).zip(want) {
            assert_eq!(*r as u32, *wr);
            assert!(close(*g, *wg), "{}: sparkline {g} vs stored {wg}", s.id);
        }
        assert_geometry(
            &format!("spark {}", s.id),
            &rounds,
            &gaps,
            &nums("xs"),
            &nums("ys"),
            line["zero"].as_f64().unwrap(),
        );
        sparks += 1;
    }
    let with_state = seeded.iter().filter(|s| s.state.is_some()).count();
    assert_eq!(
        sparks,
        with_state * 2,
        "two scenarios per campaign with a checkpoint"
    );

    // Each campaign's page: its charts, its rounds newest first, its state in words.
    for s in &seeded {
        let page = by_name(&seen, &format!("page {}", s.id));
        assert_clean(page, 200);
        let state_text = page["state"].as_str().unwrap();
        match s.state.as_ref() {
            Some(state) => {
                assert_charts(&s.id, page, state);
                let rounds: Vec<u64> = state
                    .rounds
                    .iter()
                    .rev()
                    .map(|r| u64::from(r.round))
                    .collect();
                assert_eq!(page["rounds"], json!(rounds), "{}: round rows", s.id);
            }
            None => assert_eq!(page["charts"], json!([])),
        }
        let words = match s.status {
            "finished" => "Finished on",
            "waiting" => "Waiting for /sota continue since",
            "held" => "On hold since",
            "failed" => "/sota retry runs it again",
            _ if s.state.is_none() => "The fixed baseline benchmark is running since",
            _ => "Round 3 of 8 is running since",
        };
        assert!(state_text.contains(words), "{}: {state_text}", s.id);
    }
    let fin = by_name(&seen, &format!("page {}", finished.id));
    assert!(fin["state"]
        .as_str()
        .unwrap()
        .contains("after round 3: drift stop"));
    // The agent's own report (real Claude Code output) is what the round rows show.
    let usage = claude_usage();
    assert!(fin["text"]
        .as_str()
        .unwrap()
        .contains(&format!("${:.3}", usage.cost_usd.unwrap())));

    // The JSON API applies the same access rule.
    let (status, list) = get_json(&format!("{base}/api/campaigns"), None).await;
    assert_eq!(status, 200);
    let api_ids: Vec<&str> = list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(api_ids.len(), public.len());
    assert!(!api_ids.contains(&private.id.as_str()));
    let private_api = format!("{base}/api/campaigns/{}", private.id);
    assert_eq!(get_json(&private_api, None).await.0, 404);
    let wrong = get_json(&private_api, Some("not-the-dashboard-token")).await;
    assert_eq!(wrong.0, 404);
    assert_eq!(wrong.1["error"], "no such campaign");
    let (status, page) = get_json(&private_api, Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(page["campaign"]["id"], private.id.as_str());
    assert_eq!(page["campaign"]["status"]["key"], "waiting");
    drop(server);
}

#[test]
fn the_local_report_is_one_self_contained_page_of_the_campaign() {
    let Some(b) = browser("dashboard_browser local report") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let repo = clone_demo(tmp.path());
    let out = tmp.path().join("report.html");
    let status = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args(["local", "report", "--html", "--out"])
        .arg(&out)
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    let url = url::Url::from_file_path(&out).unwrap().to_string();
    let seen = observe(&b, tmp.path(), vec![visit("local", &url, false, None)]);
    let v = by_name(&seen, "local");
    assert_clean(v, 200);
    let state = checkpoint_at(&repo, BRANCH);
    assert_charts("local report", v, &state);
    assert_eq!(v["rounds"], json!([3, 2, 1]));
    let links = v["link_status"].as_array().unwrap();
    assert_eq!(links.len(), 3, "one report link per round: {links:?}");
    assert!(v["state"]
        .as_str()
        .unwrap()
        .contains("after round 3: drift stop"));
}
