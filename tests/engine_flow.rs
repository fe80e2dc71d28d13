//! Engine flows over a real git checkout with real agent processes (shell scripts standing
//! in for a coding agent) and an in-process simulated bench lane whose SGLang speed is read
//! from `sim/engine.yaml` in the checkout, so an agent's patch genuinely moves the gap.

mod support_engine;

use sota_bot::campaign::state::Phase;
use sota_bot::engine::{Engine, RunOutcome, RunPaths};
use std::time::Duration;
use support_engine::{log, patch_agent, run_dir, run_file, toy_checkout, EngineRun, RUN_REL};

#[test]
fn sglang_ahead_stops_after_baseline() {
    let d = toy_checkout(1.2);
    let r = EngineRun::new(d.path()).run();
    match r.outcome.unwrap() {
        RunOutcome::Stopped {
            reason,
            reached_sota,
            ..
        } => {
            assert!(reached_sota);
            assert!(reason.contains("beats"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let l = log(d.path());
    assert!(l[0].starts_with("sota final:"), "{l:?}");
    assert!(l.iter().any(|m| m.starts_with("sota baseline:")));
    // 4 candidates, one launch each covering both scenarios.
    assert_eq!(r.launches, 4);
    let run = run_dir(d.path());
    let rows = run_file(d.path(), "benchmark/candidates.jsonl");
    assert_eq!(rows.lines().count(), 8);
    assert!(rows.contains("\"oom\""));
    let fr = run_file(d.path(), "final_report.md");
    assert!(fr.contains("reached SOTA in the target environment: yes"));
    assert!(run.join("history/model-pr-history-notes.md").is_file());
}

#[test]
fn behind_then_closing_the_gap() {
    let d = toy_checkout(0.8);
    let r = EngineRun::new(d.path()).agent(&patch_agent("1.15")).run();
    let outcome = r.outcome.unwrap();
    assert!(
        matches!(
            outcome,
            RunOutcome::Stopped {
                reached_sota: true,
                ..
            }
        ),
        "{outcome:?} {:?}",
        r.lines
    );
    let l = log(d.path());
    assert!(l.iter().any(|m| m == "sota round 1: speed x1.15"), "{l:?}");
    assert!(l.iter().any(|m| m.starts_with("sota plan:")));
    let run = run_dir(d.path());
    let report = run_file(d.path(), "rounds/round-1/report.md");
    assert!(
        report.contains("| `revalidation.rows` | pass |"),
        "{report}"
    );
    assert!(run.join("rounds/round-1/gap-chart.svg").is_file());
    let prompt2 = run_file(d.path(), "rounds/round-2/prompt.md");
    let review1 = run_file(d.path(), "rounds/round-1/review.md");
    assert!(
        prompt2.contains(review1.trim()),
        "the next prompt embeds the review verbatim"
    );
    // Phase 0.5's notes are quoted in every prompt, and the gate re-verifies them.
    assert!(
        prompt2.contains("## What SGLang already did for this model"),
        "{prompt2}"
    );
    assert!(run.join("history/model-pr-history.json").is_file());
    assert!(
        report.contains("| `evidence.history_notes` | pass |"),
        "{report}"
    );
    let opt = run_file(d.path(), "humanize/optimization-ledger.md");
    assert!(sota_bot::campaign::ledger::count_rows(&opt) >= 1);
    let fr = run_file(d.path(), "final_report.md");
    assert!(fr.contains("`sim/engine.yaml`"), "{fr}");
}

#[test]
fn stalling_replans_then_drift_stops() {
    let d = toy_checkout(0.8);
    // A real source change that does not make SGLang faster: measured, and STALLED.
    let agent = "echo '# tried a different tiling' >> python/sglang/model.py; \
                 printf 'TITLE: retile\\nPATCH: retile the forward pass\\n' > \"$SOTA_SUMMARY_FILE\"";
    let r = EngineRun::new(d.path()).agent(agent).run();
    match r.outcome.unwrap() {
        RunOutcome::Stopped {
            reason,
            reached_sota,
            ..
        } => {
            assert!(!reached_sota);
            assert!(reason.contains("drift"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let g2 = run_file(d.path(), "rounds/round-2/gate.json");
    assert!(g2.contains("\"decision\": \"replan\""), "{g2}");
    let p3 = run_file(d.path(), "rounds/round-3/prompt.md");
    assert!(p3.contains("Replan required"));
    assert!(p3.contains("expand code-first research"));
}

#[test]
fn a_workload_change_is_refused_before_any_measurement() {
    let d = toy_checkout(0.8);
    let agent = "f=$SOTA_RUN_DIR/benchmark/contract.json; sed -i 's/\"num_prompts\": 8/\"num_prompts\": 2/' $f; \
                 printf 'TITLE: easier workload\\nPATCH: none\\n' > \"$SOTA_SUMMARY_FILE\"";
    let r = EngineRun::new(d.path()).agent(agent).rounds(1).run();
    assert!(matches!(
        r.outcome.unwrap(),
        RunOutcome::Paused { after_round: 1 }
    ));
    let g = run_file(d.path(), "rounds/round-1/gate.json");
    let v: serde_json::Value = serde_json::from_str(&g).unwrap();
    assert_eq!(v["accepted"], false);
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["agent.completed", "agent.allowed_paths"], "{g}");
    let why = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "agent.allowed_paths")
        .unwrap()["reason"]
        .to_string();
    assert!(why.contains("benchmark/contract.json"), "{why}");
    let contract = run_file(d.path(), "benchmark/contract.json");
    assert!(
        contract.contains("\"num_prompts\": 8"),
        "the bot-owned file is put back"
    );
    assert_eq!(v["verdict_source"], "agent_failed");
    let rows = run_file(d.path(), "benchmark/candidates.jsonl");
    assert!(
        !rows.contains("\"round\":1"),
        "no revalidation was spent on a refused change"
    );
}

#[test]
fn agent_timeout_is_recorded_and_round_goes_on() {
    let d = toy_checkout(0.8);
    let started = std::time::Instant::now();
    let r = EngineRun::new(d.path())
        .agent("sleep 30")
        .agent_timeout(Duration::from_millis(500))
        .rounds(1)
        .run();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(matches!(
        r.outcome.unwrap(),
        RunOutcome::Paused { after_round: 1 }
    ));
    let ledger = run_file(d.path(), "humanize/attempt-ledger.md");
    assert!(ledger.contains("did not finish within"), "{ledger}");
    assert!(ledger.contains("AGENT FAILED"), "{ledger}");
    let g = run_file(d.path(), "rounds/round-1/gate.json");
    let v: serde_json::Value = serde_json::from_str(&g).unwrap();
    assert_eq!(v["decision"]["decision"], "continue", "{g}");
    assert_eq!(v["verdict_source"], "agent_failed", "{g}");
}

#[test]
fn crash_in_baseline_resumes_without_duplicates() {
    let d = toy_checkout(0.8);
    let r = EngineRun::new(d.path()).crash_after_rows(3).run();
    assert_eq!(r.outcome, Err("crashed".to_string()));
    let before = run_file(d.path(), "benchmark/candidates.jsonl");
    let n_before = before.lines().count();
    assert!((3..8).contains(&n_before), "{n_before}");
    let r2 = EngineRun::new(d.path()).rounds(0).resume().run();
    assert!(matches!(r2.outcome.unwrap(), RunOutcome::Paused { .. }));
    let after = run_file(d.path(), "benchmark/candidates.jsonl");
    assert!(after.starts_with(&before), "rows are only appended");
    let rows = sota_bot::bench::row::parse_jsonl(&after).unwrap();
    let mut keys: Vec<String> = rows
        .iter()
        .map(sota_bot::campaign::state::row_key)
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "no duplicated run");
    assert_eq!(total, 8);
}

#[test]
fn crash_mid_round_resumes_and_finishes_it() {
    let d = toy_checkout(0.8);
    // Round 1 runs the agent, then the lane dies during revalidation.
    let r = EngineRun::new(d.path())
        .agent(&patch_agent("1.3"))
        .rounds(1)
        .crash_after_rows(8 + 1)
        .run();
    assert_eq!(r.outcome, Err("crashed".to_string()));
    let run = RunPaths::from_rel(d.path(), RUN_REL);
    let state = Engine::load_state(&run).unwrap();
    assert_eq!(state.phase, Phase::PlanDone);
    let r2 = EngineRun::new(d.path())
        .agent("echo must-not-run > agent-ran-again")
        .rounds(1)
        .resume()
        .run();
    assert!(r2.outcome.is_ok(), "{:?}", r2.outcome);
    assert!(
        !d.path().join("agent-ran-again").exists(),
        "the finished agent step is not redone"
    );
    let l = log(d.path());
    assert_eq!(
        l.iter().filter(|m| m.starts_with("sota round 1:")).count(),
        1,
        "{l:?}"
    );
    let rows =
        sota_bot::bench::row::parse_jsonl(&std::fs::read_to_string(run.candidates()).unwrap())
            .unwrap();
    let r1: Vec<_> = rows
        .iter()
        .filter(|r| r.round == 1 && r.repeat == 0)
        .collect();
    assert_eq!(r1.len(), 2, "one revalidation row per scenario");
}

#[test]
fn a_command_agent_refused_by_the_model_api_is_told_to_check_its_key() {
    let d = toy_checkout(0.8);
    // A real process that fails the way an agent whose API key is wrong does.
    let agent = "echo 'connecting to the model API' >&2; \
                 echo 'Failed to authenticate. API Error: 401 invalid x-api-key' >&2; exit 1";
    let r = EngineRun::new(d.path()).agent(agent).rounds(1).run();
    assert!(matches!(
        r.outcome.unwrap(),
        RunOutcome::Paused { after_round: 1 }
    ));
    let ledger = run_file(d.path(), "humanize/attempt-ledger.md");
    assert!(
        ledger.contains(
            "the agent exited with code 1: Failed to authenticate. API Error: 401 invalid x-api-key"
        ),
        "{ledger}"
    );
    let report = run_file(d.path(), "rounds/round-1/report.md");
    assert!(
        report.contains("check the agent's API key secret"),
        "{report}"
    );
}

/// Gap per (scenario, round) as text (`+1.23`), `None` where the source shows no gap.
type Points = std::collections::BTreeMap<(String, u32), Option<String>>;

fn pct_text(v: f64) -> String {
    format!("{v:+.2}")
}

/// The points the SVG draws: each circle's tooltip is `<scenario> round <r>: <gap>%`.
fn svg_points(svg: &str) -> Points {
    svg.lines()
        .filter(|l| l.starts_with("<circle"))
        .map(|l| {
            let title = l.split("<title>").nth(1).unwrap().split("</title>").next();
            let (scenario, rest) = title.unwrap().rsplit_once(" round ").unwrap();
            let (round, gap) = rest.split_once(": ").unwrap();
            let gap = gap.trim_end_matches('%').to_string();
            ((scenario.to_string(), round.parse().unwrap()), Some(gap))
        })
        .collect()
}

/// The points the Mermaid charts draw: one chart per scenario, its axis naming the rounds.
fn mermaid_points(md: &str) -> Points {
    let mut points = Points::new();
    for chart in md.split("```mermaid").skip(1) {
        let field = |key: &str| {
            chart
                .lines()
                .find_map(|l| l.trim().strip_prefix(key).map(str::to_string))
                .unwrap()
        };
        let title = field("title \"");
        let scenario = title.split(": SGLang gap").next().unwrap().to_string();
        let axis = field("x-axis [");
        let line = field("line [");
        let rounds = axis.trim_end_matches(']').split(", ").map(|a| {
            let a = a.trim_matches('"');
            if a == "base" {
                0
            } else {
                a.trim_start_matches("round ").parse().unwrap()
            }
        });
        let values = line.trim_end_matches(']').split(", ");
        for (r, v) in rounds.zip(values) {
            let v: f64 = v.parse().unwrap();
            points.insert((scenario.clone(), r), Some(pct_text(v)));
        }
    }
    points
}

/// Cells of `scenario`'s row in a round report's gap table.
fn report_gap_cells(report: &str, scenario: &str) -> Vec<String> {
    let table = report
        .split("| Scenario | Leader | Before | After |")
        .nth(1);
    let row = table
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("| {scenario} |")))
        .unwrap_or_else(|| panic!("no {scenario} row in {report}"));
    row.split('|').map(|c| c.trim().to_string()).collect()
}

fn report_pct(cell: &str) -> Option<String> {
    (cell != "n/a").then(|| cell.trim_end_matches('%').to_string())
}

#[test]
fn the_svg_and_the_mermaid_chart_draw_the_gaps_the_round_reports_print() {
    use sota_bot::report::{gap_series, noise_band, render_gap_mermaid};
    let d = toy_checkout(0.8);
    let r = EngineRun::new(d.path())
        .agent(&patch_agent("1.1"))
        .competitor_fails_sla_in("summarization")
        .noise_threshold_pct(2.5)
        .rounds(2)
        .run();
    assert!(
        matches!(r.outcome, Ok(RunOutcome::Paused { after_round: 2 })),
        "{:?}",
        r.outcome
    );
    // What the reports print: round 1's "before" is the baseline, each round's "after" its gap.
    let mut printed = Points::new();
    for round in 1..=2u32 {
        let report = run_file(d.path(), &format!("rounds/round-{round}/report.md"));
        for scenario in ["chat", "summarization"] {
            let cells = report_gap_cells(&report, scenario);
            if round == 1 {
                printed.insert((scenario.into(), 0), report_pct(&cells[3]));
            }
            printed.insert((scenario.into(), round), report_pct(&cells[4]));
        }
    }
    let measured: Points = printed
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The simulated SGLang closes on vLLM round by round; the competitor never passes the SLA
    // in summarization, so it has no gap anywhere.
    assert_eq!(
        measured.keys().cloned().collect::<Vec<_>>(),
        [0, 1, 2].map(|r| ("chat".to_string(), r)).to_vec(),
        "{printed:?}"
    );
    assert!(printed.get(&("summarization".into(), 0)) == Some(&None));

    let svg = run_file(d.path(), "rounds/round-2/gap-chart.svg");
    assert_eq!(svg_points(&svg), measured, "{svg}");

    let state = Engine::load_state(&RunPaths::for_campaign(
        d.path(),
        chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
        "llama-3-1-8b-instruct",
    ))
    .unwrap();
    let mermaid = render_gap_mermaid(&gap_series(&state), noise_band(&state));
    assert_eq!(mermaid_points(&mermaid), measured, "{mermaid}");
    assert!(
        mermaid.contains("No gap measured yet for summarization"),
        "{mermaid}"
    );

    // The band is the campaign's noise threshold, not a fixed 1%.
    assert_eq!(noise_band(&state), 2.5);
    assert!(svg.contains("<title>noise band ±2.5%</title>"), "{svg}");
}

#[test]
fn a_resumed_older_checkpoint_gets_its_baseline_gaps_and_noise_threshold_back() {
    let d = toy_checkout(0.8);
    let first = EngineRun::new(d.path())
        .agent(&patch_agent("1.1"))
        .noise_threshold_pct(2.5)
        .rounds(1)
        .run();
    assert!(first.outcome.is_ok(), "{:?}", first.outcome);
    let paths = RunPaths::from_rel(d.path(), RUN_REL);
    let recorded = Engine::load_state(&paths).unwrap();
    assert_eq!(recorded.baseline_gaps.len(), 2);
    assert_eq!(recorded.noise_threshold_pct, Some(2.5));
    // The checkpoint as a version that kept neither would have left it.
    let mut older = recorded.clone();
    older.baseline_gaps.clear();
    older.noise_threshold_pct = None;
    let text = sota_bot::report::render_checkpoint(&older).unwrap();
    assert!(!text.contains("baseline_gaps") && !text.contains("noise_threshold_pct"));
    std::fs::write(paths.checkpoint(), text).unwrap();

    let resumed = EngineRun::new(d.path())
        .agent(&patch_agent("1.1"))
        .noise_threshold_pct(2.5)
        .rounds(1)
        .resume()
        .run();
    assert!(resumed.outcome.is_ok(), "{:?}", resumed.outcome);
    let state = Engine::load_state(&paths).unwrap();
    assert_eq!(state.baseline_gaps, recorded.baseline_gaps);
    assert_eq!(state.noise_threshold_pct, Some(2.5));
    let svg = svg_points(&run_file(d.path(), "rounds/round-2/gap-chart.svg"));
    let report = run_file(d.path(), "rounds/round-1/report.md");
    let before = report_pct(&report_gap_cells(&report, "chat")[3]);
    assert!(before.is_some(), "{report}");
    assert_eq!(svg.get(&("chat".to_string(), 0)), Some(&before), "{svg:?}");
}

#[test]
fn the_local_dashboard_reads_the_agent_s_whole_report_not_its_cut_log_tail() {
    // Claude Code's `--output-format json` report is one line of about 1.6 KB; the committed
    // log tail cuts long lines, so only the runner's reading of the whole output has it.
    let report = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/agent-output/claude-code-2.1.332-output-json.json"
    );
    let d = toy_checkout(0.8);
    let agent = format!("{}; cat '{report}'", patch_agent("1.15"));
    let r = EngineRun::new(d.path()).agent(&agent).rounds(1).run();
    assert!(r.outcome.is_ok(), "{:?}", r.lines);
    let tail = run_file(d.path(), "rounds/round-1/agent-log-tail.txt");
    assert!(
        sota_bot::dashboard::usage::agent_usage(&tail).is_none(),
        "the tail alone no longer holds the report: {tail}"
    );
    let snapshot = sota_bot::dashboard::local::snapshot(d.path()).unwrap();
    let agent = snapshot.usage[&1]
        .agent
        .clone()
        .expect("round 1's agent usage");
    assert_eq!(agent.cost_usd, Some(0.013));
    assert_eq!(agent.turns, Some(2));
}
